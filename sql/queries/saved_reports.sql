-- Saved reports and their table links (api/store/saved_reports.py): the parameters a
-- BI tool refreshes by name, the run that answered them, the claim of a refresh under
-- way, and the links that read a report's table without an API key.
-- Every query is scoped to one workspace.

-- fragment: saved_report_fields
s.report_id, s.name, s.body, s.created_at, s.updated_at, s.run_id, s.data_version,
s.refreshed_at

-- name: insert_saved_report
INSERT INTO saved_reports AS s (workspace_id, name, body)
VALUES (%(workspace_id)s, %(name)s, %(body)s)
RETURNING
    -- include: saved_report_fields

-- name: update_saved_report
UPDATE saved_reports AS s SET body = %(body)s, updated_at = clock_timestamp()
WHERE s.workspace_id = %(workspace_id)s AND s.name = %(name)s
RETURNING
    -- include: saved_report_fields

-- name: delete_saved_report
DELETE FROM saved_reports WHERE workspace_id = %(workspace_id)s AND name = %(name)s
RETURNING report_id

-- name: get_saved_report
SELECT
    -- include: saved_report_fields
FROM saved_reports s
WHERE s.workspace_id = %(workspace_id)s AND s.name = %(name)s

-- name: list_saved_reports
SELECT
    -- include: saved_report_fields
FROM saved_reports s
WHERE s.workspace_id = %(workspace_id)s
ORDER BY s.name

-- name: refresh_state
-- What a refresh decides on, in one round trip: the report, the parameters and data
-- version of the run that answered it, the status of a refresh under way, and the
-- workspace's data version now.
SELECT s.report_id, s.body, s.run_id, a.parameters_hash, a.data_version,
    s.pending_run_id, p.status,
    (SELECT coalesce(max(v.version), 0) FROM workspace_data_versions v
     WHERE v.workspace_id = s.workspace_id)
FROM saved_reports s
LEFT JOIN attribution_runs a ON a.workspace_id = s.workspace_id AND a.run_id = s.run_id
LEFT JOIN attribution_runs p ON p.workspace_id = s.workspace_id AND p.run_id = s.pending_run_id
WHERE s.workspace_id = %(workspace_id)s AND s.name = %(name)s

-- name: claim_saved_report
-- Compare and swap: the refresh claims the report only if the refresh it saw under
-- way (none, or one that failed) is still the one recorded. A concurrent claim waits
-- for the row lock, then finds the value changed and updates nothing.
UPDATE saved_reports SET pending_run_id = %(run_id)s
WHERE workspace_id = %(workspace_id)s AND report_id = %(report_id)s
  AND pending_run_id IS NOT DISTINCT FROM %(seen)s::uuid
RETURNING report_id

-- name: settle_saved_report
-- A claimed refresh that succeeded becomes the report's answer.
UPDATE saved_reports s SET run_id = r.run_id, data_version = r.data_version,
    refreshed_at = r.finished_at, pending_run_id = NULL
FROM attribution_runs r
WHERE s.workspace_id = %(workspace_id)s AND s.report_id = %(report_id)s
  AND s.pending_run_id = %(run_id)s
  AND r.workspace_id = s.workspace_id AND r.run_id = s.pending_run_id
  AND r.status = 'succeeded'

-- name: release_saved_report
-- A claimed refresh that failed leaves the report's answer as it was.
UPDATE saved_reports SET pending_run_id = NULL
WHERE workspace_id = %(workspace_id)s AND report_id = %(report_id)s
  AND pending_run_id = %(run_id)s

-- fragment: table_link_fields
l.link_id, l.created_at, l.expires_at, l.revoked_at

-- name: insert_table_link
INSERT INTO table_links AS l (workspace_id, report_id, expires_at)
VALUES (%(workspace_id)s, %(report_id)s, %(expires_at)s)
RETURNING
    -- include: table_link_fields

-- name: list_table_links
SELECT
    -- include: table_link_fields
FROM table_links l
WHERE l.workspace_id = %(workspace_id)s AND l.report_id = %(report_id)s
ORDER BY l.created_at, l.link_id

-- name: revoke_table_link
UPDATE table_links AS l SET revoked_at = coalesce(l.revoked_at, clock_timestamp())
WHERE l.workspace_id = %(workspace_id)s AND l.report_id = %(report_id)s
  AND l.link_id = %(link_id)s
RETURNING
    -- include: table_link_fields

-- name: find_table_link
-- The link of a verified token, with the name of its report; whether it still works
-- is the caller's to judge from revoked_at and expires_at.
SELECT s.name, l.expires_at, l.revoked_at, l.expires_at <= clock_timestamp()
FROM table_links l
JOIN saved_reports s ON s.workspace_id = l.workspace_id AND s.report_id = l.report_id
WHERE l.workspace_id = %(workspace_id)s AND l.link_id = %(link_id)s
  AND l.report_id = %(report_id)s

-- name: put_saved_report_series
-- A saved report's series answer replaces the last one, if the report still has the
-- body it was computed from (not replaced or deleted meanwhile). Two answers at once
-- take turns on the row; the rows are replaced after it (delete_saved_report_series_rows).
INSERT INTO saved_report_series AS x (workspace_id, report_id, data_version, date_from,
    date_to, currency)
SELECT s.workspace_id, s.report_id, %(data_version)s, %(date_from)s, %(date_to)s, %(currency)s
FROM saved_reports s
WHERE s.workspace_id = %(workspace_id)s AND s.report_id = %(report_id)s
  AND s.body = %(body)s
ON CONFLICT (workspace_id, report_id) DO UPDATE
SET series_id = gen_random_uuid(), answered_at = clock_timestamp(),
    data_version = excluded.data_version, date_from = excluded.date_from,
    date_to = excluded.date_to, currency = excluded.currency
RETURNING x.series_id

-- name: delete_saved_report_series_rows
DELETE FROM saved_report_series_rows
WHERE workspace_id = %(workspace_id)s AND report_id = %(report_id)s

-- name: copy_saved_report_series_rows
COPY saved_report_series_rows (workspace_id, report_id, row_number, day, model, dimension,
    channel, campaign, conversions, value, spend, cost_per_conversion, roas) FROM STDIN
