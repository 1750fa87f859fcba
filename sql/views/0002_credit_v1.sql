-- credit_v1: every stored table row of every succeeded run, with the run's date range.
-- Columns after the run's are those of the API's tidy table, in its order, except
-- campaign: added to the table later, it comes last here so that the view keeps the
-- columns it had (a view can only gain columns at its end).
CREATE OR REPLACE VIEW credit_v1 WITH (security_invoker = true) AS
SELECT
    r.workspace_id,
    r.run_id,
    r.finished_at,
    r.date_from,
    r.date_to,
    r.day,
    r.filtered,
    c.model,
    c.dimension,
    c.channel,
    c.stage,
    c.conversions,
    c.value,
    c.share,
    c.removal_effect,
    c.ci_low,
    c.ci_high,
    c.campaign
FROM runs_v1 r
JOIN attribution_rows c ON c.workspace_id = r.workspace_id AND c.run_id = r.run_id
WHERE r.status = 'succeeded';

GRANT SELECT ON credit_v1 TO pathcredit_bi;
