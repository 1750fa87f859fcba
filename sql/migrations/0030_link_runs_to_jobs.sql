-- Background runs become jobs of the PostgreSQL job queue (procrastinate, whose own
-- schema the migration runner applies after these files). A run started in the
-- background records the id of its job, written in the same transaction as the run and
-- the job, so the worker that recovers a stalled job finds its run and the liveness
-- sweep of the web process leaves job-held runs alone (it looks only at synchronous
-- runs, which still live in a thread of the server process). No foreign key: the queue
-- deletes finished jobs, the run stays.
ALTER TABLE attribution_runs ADD COLUMN job_id bigint;
