-- Attribution runs: their status, table rows, jobs, heartbeats, the data version they
-- read and the cache of finished runs.
-- Every query is scoped to one workspace.

-- name: begin_snapshot
-- One snapshot for the whole read of a run: the data version and the paths it reads
-- describe the same state of the data.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ

-- name: data_version
SELECT coalesce(max(version), 0) AS version FROM workspace_data_versions
WHERE workspace_id = %(workspace_id)s

-- name: insert_run
INSERT INTO attribution_runs (workspace_id, status, parameters, parameters_hash,
    date_from, date_to, filtered, models_total)
VALUES (%(workspace_id)s, %(status)s, %(parameters)s, %(parameters_hash)s,
    %(date_from)s, %(date_to)s, %(filtered)s, %(models_total)s)
RETURNING run_id

-- name: set_run_job
-- The queue's job that executes a background run (same transaction as both).
UPDATE attribution_runs SET job_id = %(job_id)s
WHERE workspace_id = %(workspace_id)s AND run_id = %(run_id)s

-- name: mark_run_running
-- A retried job finds its run queued again, or still running when its last try could
-- not say otherwise (the database was down): either way it starts over.
UPDATE attribution_runs SET status = 'running', started_at = clock_timestamp(),
    models_done = 0
WHERE workspace_id = %(workspace_id)s AND run_id = %(run_id)s
  AND status IN ('queued', 'running')

-- name: requeue_run
-- The run's job will be tried again.
UPDATE attribution_runs SET status = 'queued', models_done = 0
WHERE workspace_id = %(workspace_id)s AND run_id = %(run_id)s
  AND status IN ('queued', 'running')

-- name: set_run_progress
UPDATE attribution_runs SET models_done = %(models_done)s
WHERE workspace_id = %(workspace_id)s AND run_id = %(run_id)s

-- name: copy_run_rows
COPY attribution_rows (workspace_id, run_id, row_number, model, dimension, channel, campaign,
    stage, conversions, value, share, removal_effect, ci_low, ci_high) FROM STDIN

-- name: finish_run
UPDATE attribution_runs SET status = 'succeeded', data_version = %(data_version)s,
    totals = %(totals)s, warnings = %(warnings)s, models_done = models_total,
    finished_at = clock_timestamp()
WHERE workspace_id = %(workspace_id)s AND run_id = %(run_id)s

-- name: fail_run
UPDATE attribution_runs SET status = 'failed', error = %(error)s,
    data_version = coalesce(%(data_version)s, data_version), finished_at = clock_timestamp()
WHERE workspace_id = %(workspace_id)s AND run_id = %(run_id)s AND status <> 'succeeded'

-- name: get_run
SELECT run_id, status, parameters, data_version, models_done, models_total, totals,
    warnings, error, created_at, started_at, finished_at
FROM attribution_runs
WHERE workspace_id = %(workspace_id)s AND run_id = %(run_id)s

-- name: list_runs
-- Newest first; keyset pagination continues after (created_at, run_id).
SELECT run_id, status, parameters, data_version, models_done, models_total, totals,
    warnings, error, created_at, started_at, finished_at
FROM attribution_runs
WHERE workspace_id = %(workspace_id)s
  AND (%(after_created)s::timestamptz IS NULL
       OR (created_at, run_id) < (%(after_created)s::timestamptz, %(after_run)s::uuid))
ORDER BY created_at DESC, run_id DESC
LIMIT %(limit)s

-- name: run_rows
SELECT model, dimension, channel, campaign, stage, conversions, value, share,
    removal_effect, ci_low, ci_high
FROM attribution_rows
WHERE workspace_id = %(workspace_id)s AND run_id = %(run_id)s
ORDER BY row_number

-- fragment: cached_run
-- The latest succeeded run with these parameters on the current data.
SELECT r.run_id FROM attribution_runs r
WHERE r.workspace_id = %(workspace_id)s AND r.parameters_hash = %(parameters_hash)s
  AND r.status = 'succeeded'
  AND r.data_version = (
      SELECT coalesce(max(v.version), 0) FROM workspace_data_versions v
      WHERE v.workspace_id = %(workspace_id)s)
ORDER BY r.finished_at DESC
LIMIT 1

-- name: find_cached_run
-- include: cached_run

-- name: cached_table
-- The table of the latest succeeded run with these parameters on the current data, in
-- one round trip: no row when there is none, one row with null columns when its table
-- is empty.
WITH hit AS (
    -- include: cached_run
)
SELECT h.run_id, a.model, a.dimension, a.channel, a.campaign, a.stage, a.conversions,
    a.value, a.share, a.removal_effect, a.ci_low, a.ci_high
FROM hit h
LEFT JOIN attribution_rows a ON a.workspace_id = %(workspace_id)s AND a.run_id = h.run_id
ORDER BY a.row_number

-- name: touch_runs
-- Heartbeat of the synchronous runs a live server process holds.
UPDATE attribution_runs SET heartbeat_at = clock_timestamp()
WHERE workspace_id = %(workspace_id)s AND run_id = ANY(%(run_ids)s::uuid[])
  AND status IN ('queued', 'running')

-- name: fail_stale_runs
-- Unfinished synchronous runs whose process stopped touching them (see
-- 0021_add_run_heartbeats); runs held by a job are the queue's to recover.
UPDATE attribution_runs SET status = 'failed', error = %(error)s,
    finished_at = clock_timestamp()
WHERE workspace_id = %(workspace_id)s AND status IN ('queued', 'running')
  AND job_id IS NULL
  AND coalesce(heartbeat_at, started_at, created_at)
      < clock_timestamp() - make_interval(secs => %(stale_seconds)s)
RETURNING run_id
