-- credit_latest_v1: for each model, the rows of its most recent succeeded run over the
-- whole workspace (no segment filter): one such run per conversion day for daily
-- runs (date_from = date_to), and one for every other date range (day is null).
CREATE OR REPLACE VIEW credit_latest_v1 WITH (security_invoker = true) AS
WITH latest AS (
    SELECT DISTINCT ON (r.workspace_id, m.model, r.day)
        r.workspace_id, r.run_id, m.model
    FROM runs_v1 r
    CROSS JOIN LATERAL unnest(r.models) AS m(model)
    WHERE r.status = 'succeeded' AND NOT r.filtered
    ORDER BY r.workspace_id, m.model, r.day, r.finished_at DESC, r.run_id
)
SELECT c.*
FROM credit_v1 c
JOIN latest l ON l.workspace_id = c.workspace_id AND l.run_id = c.run_id AND l.model = c.model;

GRANT SELECT ON credit_latest_v1 TO pathcredit_bi;
