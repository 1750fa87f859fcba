-- What GET /metrics reads at scrape time (api/store/probes.py): counts over every
-- workspace, for operators. Like the admin queries, these are not scoped to a
-- workspace; each is a small read (an index of unfinished runs, the job queue's table).

-- name: count_unfinished_runs
SELECT status, count(*) AS runs
FROM attribution_runs
WHERE status IN ('queued', 'running')
GROUP BY status

-- name: job_table_exists
SELECT to_regclass('procrastinate_jobs') IS NOT NULL

-- name: count_jobs_by_status
SELECT status::text, count(*) AS jobs
FROM procrastinate_jobs
GROUP BY status

-- name: count_runs_by_state
-- Every run by state, with the summed seconds of those that started and finished:
-- runs of the web processes and of every job worker alike.
SELECT status, count(*) AS runs,
    count(*) FILTER (WHERE started_at IS NOT NULL AND finished_at IS NOT NULL) AS timed,
    coalesce(sum(extract(epoch FROM finished_at - started_at))
        FILTER (WHERE started_at IS NOT NULL AND finished_at IS NOT NULL), 0)::float8
        AS seconds
FROM attribution_runs
GROUP BY status
