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
