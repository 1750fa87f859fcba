-- runs_v1: one row per attribution run, its parameters flattened for BI tools.
-- `day` is the run's single conversion date when it covers exactly one day (a daily
-- run), else null. security_invoker makes the row-level security of the run tables
-- apply to whoever queries the view (a BI role sees its own workspace only).
CREATE OR REPLACE VIEW runs_v1 WITH (security_invoker = true) AS
SELECT
    r.workspace_id,
    r.run_id,
    r.status,
    r.created_at,
    r.finished_at,
    r.date_from,
    r.date_to,
    CASE WHEN r.date_from = r.date_to THEN r.date_from END AS day,
    r.filtered,
    ARRAY(SELECT jsonb_array_elements_text(r.parameters -> 'models')) AS models,
    (r.totals ->> 'journeys')::float8 AS journeys,
    (r.totals ->> 'conversions')::float8 AS conversions,
    (r.totals ->> 'value')::float8 AS value,
    (r.totals ->> 'conversion_rate')::float8 AS conversion_rate,
    r.parameters
FROM attribution_runs r;

GRANT SELECT ON runs_v1 TO pathcredit_bi;
