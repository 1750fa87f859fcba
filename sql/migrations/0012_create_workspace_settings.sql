-- Per-workspace defaults for attribution runs (models and their options, lookback
-- window, channel grouping, repeat collapsing, confidence intervals), applied when a
-- request leaves them out. Stored as one validated JSON document: the API owns its
-- shape, and a run records the defaults it used in its own parameters.
CREATE TABLE workspace_settings (
    workspace_id bigint PRIMARY KEY REFERENCES workspaces ON DELETE CASCADE,
    settings jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);
