-- Request counters of the rate limits, shared by every server process on every machine.
-- One row per workspace, subject (the workspace as a whole, or one API key by its
-- prefix) and budget (reads, writes): a fixed window, its start and the requests counted
-- in it. A request's upsert restarts the count when its window has moved on, so the
-- table holds one row per key and budget, never one per window. Unlogged: counters are
-- not worth a WAL record per request, and losing them in a crash only resets the
-- windows under way.
CREATE UNLOGGED TABLE rate_limit_counters (
    workspace_id bigint NOT NULL,
    subject text NOT NULL,
    budget text NOT NULL CHECK (budget IN ('reads', 'writes')),
    window_start timestamptz NOT NULL,
    hits integer NOT NULL,
    PRIMARY KEY (workspace_id, subject, budget)
);
