-- credit_latest_v1: for each saved report, the table rows of the run that answered it
-- last (its latest succeeded refresh), with the report's name. Ad-hoc runs never
-- move it: a report moves when its table URL is fetched on changed data or changed
-- parameters (see 0075_create_saved_reports). Every run stays in credit_v1.
CREATE OR REPLACE VIEW credit_latest_v1 WITH (security_invoker = true) AS
SELECT
    s.workspace_id,
    s.name AS saved_report,
    c.run_id,
    c.finished_at,
    c.date_from,
    c.date_to,
    c.day,
    c.filtered,
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
FROM saved_reports s
JOIN credit_v1 c ON c.workspace_id = s.workspace_id AND c.run_id = s.run_id;

GRANT SELECT ON credit_latest_v1 TO pathcredit_bi;
