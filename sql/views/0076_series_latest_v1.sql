-- series_latest_v1: for each saved report, the rows of its last answered daily series
-- (GET /v1/saved-reports/{name}/series), with the report's name, the answer's id and
-- time, and the range and data version it read, so a BI join needs no headers. Ad-hoc
-- series (GET /v1/attribution/series) never move it (see 0076_create_saved_report_series).
-- Spend, cost_per_conversion and roas are as answered, in `currency`.
CREATE OR REPLACE VIEW series_latest_v1 WITH (security_invoker = true) AS
SELECT
    s.workspace_id,
    r.name AS saved_report,
    s.series_id,
    s.answered_at,
    s.data_version,
    s.date_from,
    s.date_to,
    x.day,
    x.model,
    x.dimension,
    x.channel,
    x.campaign,
    x.conversions,
    x.value,
    x.spend,
    x.cost_per_conversion,
    x.roas,
    s.currency
FROM saved_report_series s
JOIN saved_reports r ON r.workspace_id = s.workspace_id AND r.report_id = s.report_id
JOIN saved_report_series_rows x ON x.workspace_id = s.workspace_id AND x.report_id = s.report_id;

GRANT SELECT ON series_latest_v1 TO pathcredit_bi;
