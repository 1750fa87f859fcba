-- Attribution runs and their tidy tables.
-- A run records what was asked (parameters, with workspace defaults applied), which
-- state of the data it read (data_version), its progress, totals and warnings; its
-- table is one row per model x dimension x key in attribution_rows, in the order the
-- API returns them. parameters_hash with data_version is the cache key of
-- GET /v1/attribution/table. date_from, date_to and filtered are copied out of the
-- parameters for the BI views.
CREATE TABLE attribution_runs (
    workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    run_id uuid NOT NULL DEFAULT gen_random_uuid(),
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    parameters jsonb NOT NULL,
    parameters_hash text NOT NULL,
    date_from date,
    date_to date,
    filtered boolean NOT NULL DEFAULT false,
    data_version bigint,
    models_done integer NOT NULL DEFAULT 0,
    models_total integer NOT NULL,
    totals jsonb,
    warnings jsonb NOT NULL DEFAULT '{}',
    error jsonb,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (workspace_id, run_id)
);

-- Listing, newest first.
CREATE INDEX attribution_runs_recent_idx ON attribution_runs (workspace_id, created_at DESC, run_id DESC);
-- Cache look-ups: the same parameters on the same data.
CREATE INDEX attribution_runs_cache_idx
    ON attribution_runs (workspace_id, parameters_hash, data_version)
    WHERE status = 'succeeded';

CREATE TABLE attribution_rows (
    workspace_id bigint NOT NULL,
    run_id uuid NOT NULL,
    row_number integer NOT NULL,
    model text NOT NULL,
    dimension text NOT NULL CHECK (dimension IN ('channel', 'stage', 'channel_stage')),
    channel text,
    stage text,
    conversions double precision NOT NULL,
    value double precision NOT NULL,
    share double precision NOT NULL,
    removal_effect double precision,
    ci_low double precision,
    ci_high double precision,
    PRIMARY KEY (workspace_id, run_id, row_number),
    FOREIGN KEY (workspace_id, run_id) REFERENCES attribution_runs ON DELETE CASCADE
);
