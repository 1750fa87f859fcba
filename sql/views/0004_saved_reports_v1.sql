-- saved_reports_v1: one row per saved report: its parameters as saved (workspace
-- defaults fill what they leave out when it refreshes), the run that answered it last
-- and the data version that run read.
CREATE OR REPLACE VIEW saved_reports_v1 WITH (security_invoker = true) AS
SELECT
    s.workspace_id,
    s.name AS saved_report,
    s.created_at,
    s.updated_at,
    s.refreshed_at,
    s.run_id,
    s.data_version,
    r.date_from,
    r.date_to,
    r.models,
    s.body AS parameters
FROM saved_reports s
LEFT JOIN runs_v1 r ON r.workspace_id = s.workspace_id AND r.run_id = s.run_id;

GRANT SELECT ON saved_reports_v1 TO pathcredit_bi;
