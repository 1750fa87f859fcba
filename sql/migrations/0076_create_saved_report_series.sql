-- The last answered daily series of each saved report, for the BI view
-- series_latest_v1 (sql/views/).
--
-- A series is not a run: it is computed at each request of
-- GET /v1/saved-reports/{name}/series. Each such answer replaces the report's stored
-- series (its id, the data version and range it read, the reporting currency of its
-- spend) and rows, in one transaction, so the view shows one whole answer per report.
-- Ad-hoc series (GET /v1/attribution/series) are never stored. Deleting a report
-- deletes its series.
CREATE TABLE saved_report_series (
    workspace_id bigint NOT NULL,
    report_id bigint NOT NULL,
    series_id uuid NOT NULL DEFAULT gen_random_uuid(),
    answered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    data_version bigint NOT NULL,
    date_from date NOT NULL,
    date_to date NOT NULL,
    currency text NOT NULL,
    PRIMARY KEY (workspace_id, report_id),
    FOREIGN KEY (workspace_id, report_id) REFERENCES saved_reports ON DELETE CASCADE
);

CREATE TABLE saved_report_series_rows (
    workspace_id bigint NOT NULL,
    report_id bigint NOT NULL,
    row_number integer NOT NULL,
    day date NOT NULL,
    model text NOT NULL,
    dimension text NOT NULL,
    channel text NOT NULL,
    campaign text,
    conversions float8 NOT NULL,
    value float8 NOT NULL,
    spend float8,
    cost_per_conversion float8,
    roas float8,
    PRIMARY KEY (workspace_id, report_id, row_number),
    FOREIGN KEY (workspace_id, report_id) REFERENCES saved_report_series ON DELETE CASCADE
);

-- BI roles read their own workspace's series (row-level security keyed by
-- current_user, as in 0013), through the view series_latest_v1.
ALTER TABLE saved_report_series ENABLE ROW LEVEL SECURITY;
CREATE POLICY saved_report_series_bi ON saved_report_series FOR SELECT
    USING (workspace_id IN (SELECT b.workspace_id FROM bi_roles b WHERE b.role_name = current_user));

ALTER TABLE saved_report_series_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY saved_report_series_rows_bi ON saved_report_series_rows FOR SELECT
    USING (workspace_id IN (SELECT b.workspace_id FROM bi_roles b WHERE b.role_name = current_user));

GRANT SELECT ON saved_report_series, saved_report_series_rows TO pathcredit_bi;
