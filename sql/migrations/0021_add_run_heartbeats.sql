-- Liveness of queued and running attribution runs.
-- Runs execute in threads of a server process; when that process dies, its runs would
-- stay queued or running forever. The process touches heartbeat_at of each run it
-- holds every few seconds, and readers mark a run whose heartbeat has gone stale
-- failed. Rows from before this migration have no heartbeat; their started_at or
-- created_at stands in for it. The default is set after the column is added so that
-- existing rows keep a null heartbeat instead of all getting the migration's time.
ALTER TABLE attribution_runs ADD COLUMN heartbeat_at timestamptz;
ALTER TABLE attribution_runs ALTER COLUMN heartbeat_at SET DEFAULT clock_timestamp();

-- The sweep looks only at unfinished runs, a handful per workspace.
CREATE INDEX attribution_runs_live_idx ON attribution_runs (workspace_id)
    WHERE status IN ('queued', 'running');
