-- A change of a large workspace's time zone re-buckets its journeys in a job of the
-- queue. The row is what clients poll: the zone asked for, queued, running, succeeded
-- or failed, and how many journeys are done. The job writes progress on a connection
-- of its own while its one transaction (holding the workspace's write lock) re-buckets;
-- that transaction sets the zone and marks the row succeeded when it commits.
CREATE TABLE time_zone_changes (
    workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    change_id uuid NOT NULL DEFAULT gen_random_uuid(),
    time_zone text NOT NULL,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    journeys_done bigint NOT NULL DEFAULT 0,
    journeys_total bigint NOT NULL,
    error text,
    job_id bigint,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    PRIMARY KEY (workspace_id, change_id)
);

-- At most one change of a workspace waits or runs at a time.
CREATE UNIQUE INDEX time_zone_changes_open_idx ON time_zone_changes (workspace_id)
    WHERE status IN ('queued', 'running');
