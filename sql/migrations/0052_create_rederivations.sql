-- Re-deriving a workspace's journeys after its event rules change, as a job of the
-- queue when the workspace is large. The row is what a client polls: its status, how
-- many of the workspace's ids (typed anonymousIds and userIds, in byte order) are
-- done, and what happened to the journeys. `last_id` is the last id done, so a job
-- tried again goes on from there: ids that arrive meanwhile come with events whose
-- write derived their people under the new rules already. A newer change of rules
-- supersedes a re-derivation still queued or running. No foreign key to the queue's
-- jobs: the queue deletes finished jobs, the row stays.
CREATE TABLE rederivations (
    workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    rederivation_id uuid NOT NULL DEFAULT gen_random_uuid(),
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'superseded')),
    events bigint NOT NULL,
    ids_total integer,
    ids_done integer NOT NULL DEFAULT 0,
    last_id text COLLATE "C",
    people integer NOT NULL DEFAULT 0,
    created integer NOT NULL DEFAULT 0,
    replaced integer NOT NULL DEFAULT 0,
    unchanged integer NOT NULL DEFAULT 0,
    deleted integer NOT NULL DEFAULT 0,
    error text,
    job_id bigint,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (workspace_id, rederivation_id)
);
