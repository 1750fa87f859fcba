-- Saved reports: a named set of run parameters a BI tool refreshes by URL, and the
-- read-only table links that let a connector without headers pull its table.
--
-- A saved report keeps the run body as given (workspace defaults are applied when it
-- refreshes, so a change of defaults shows), the run that answered it last and the
-- data version that run read. pending_run_id is the run of a refresh under way: a
-- refresh claims the report by setting it from the value it saw (compare and swap
-- under the row lock), so two refreshes at once start one run, and neither holds a
-- connection while the run executes.
--
-- credit_latest_v1 changes meaning: it showed the latest run of any kind per model
-- and day, so whatever anyone ran last; it now shows the latest answer of each saved
-- report. Its columns change, so it is dropped here and re-created from sql/views/.
CREATE TABLE saved_reports (
    workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    report_id bigint GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL,
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    run_id uuid,
    data_version bigint,
    refreshed_at timestamptz,
    pending_run_id uuid,
    PRIMARY KEY (workspace_id, report_id),
    UNIQUE (workspace_id, name),
    FOREIGN KEY (workspace_id, run_id) REFERENCES attribution_runs ON DELETE SET NULL (run_id),
    FOREIGN KEY (workspace_id, pending_run_id) REFERENCES attribution_runs
        ON DELETE SET NULL (pending_run_id)
);

-- A table link is a signed token naming its link row; the row says whether it still
-- works (revoked_at, expires_at). Deleting the report deletes its links.
CREATE TABLE table_links (
    workspace_id bigint NOT NULL,
    link_id uuid NOT NULL DEFAULT gen_random_uuid(),
    report_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz,
    revoked_at timestamptz,
    PRIMARY KEY (workspace_id, link_id),
    FOREIGN KEY (workspace_id, report_id) REFERENCES saved_reports ON DELETE CASCADE
);

CREATE INDEX table_links_report_idx ON table_links (workspace_id, report_id);

-- BI roles read the saved reports of their workspace (not the links: they are
-- credentials).
ALTER TABLE saved_reports ENABLE ROW LEVEL SECURITY;
CREATE POLICY saved_reports_bi ON saved_reports FOR SELECT
    USING (workspace_id IN (SELECT b.workspace_id FROM bi_roles b WHERE b.role_name = current_user));
GRANT SELECT ON saved_reports TO pathcredit_bi;

DROP VIEW IF EXISTS credit_latest_v1;
