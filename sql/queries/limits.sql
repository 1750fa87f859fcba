-- Limits: the rate limits' fixed-window counters, and how many runs of a workspace are
-- unfinished before another starts.

-- name: count_requests
-- Counts one request against the workspace's and the key's counters of one budget, in
-- one statement; each row's window restarts when the current one has begun since. The
-- window is the database's clock, the same for every server. Rows are upserted in
-- the same order by every request (workspace first), so two never wait on each other
-- crosswise. Returns each counter's hits so far and the seconds until its window ends.
WITH now_ AS (
    SELECT to_timestamp(
        floor(extract(epoch FROM clock_timestamp()) / %(window)s) * %(window)s
    ) AS window_start
)
INSERT INTO rate_limit_counters AS c (workspace_id, subject, budget, window_start, hits)
SELECT %(workspace_id)s, s.subject, %(budget)s, now_.window_start, 1
FROM now_, unnest(%(subjects)s::text[]) WITH ORDINALITY AS s (subject, n)
ORDER BY s.n
ON CONFLICT (workspace_id, subject, budget) DO UPDATE
SET hits = CASE WHEN c.window_start = EXCLUDED.window_start THEN c.hits + 1 ELSE 1 END,
    window_start = EXCLUDED.window_start
RETURNING subject, hits,
    ceil(extract(epoch FROM window_start) + %(window)s - extract(epoch FROM clock_timestamp()))::int
        AS reset_seconds

-- name: lock_run_starts
-- Runs of one workspace start one at a time, so that two starting together cannot both
-- see room for one more.
SELECT pg_advisory_xact_lock(7302, %(workspace_id)s::int)

-- name: count_workspace_unfinished_runs
SELECT count(*) FROM attribution_runs
WHERE workspace_id = %(workspace_id)s AND status IN ('queued', 'running')
