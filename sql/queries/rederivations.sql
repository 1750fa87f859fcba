-- Re-derivations of a workspace's journeys after a change of event rules: the row a
-- client polls and the job that fills it in. Every query is scoped to one workspace.

-- name: supersede_rederivations
-- Rules changed again: a re-derivation still to finish is for rules no longer held.
UPDATE rederivations SET status = 'superseded', finished_at = clock_timestamp()
WHERE workspace_id = %(workspace_id)s AND status IN ('queued', 'running')

-- name: insert_rederivation
INSERT INTO rederivations (workspace_id, events)
VALUES (%(workspace_id)s, %(events)s)
RETURNING rederivation_id

-- name: set_rederivation_job
UPDATE rederivations SET job_id = %(job_id)s
WHERE workspace_id = %(workspace_id)s AND rederivation_id = %(rederivation_id)s

-- name: start_rederivation
-- A try begins (again, after a failed one: it goes on after `last_id`). Nothing when
-- the re-derivation was superseded or finished.
UPDATE rederivations SET status = 'running', ids_total = %(ids_total)s,
    started_at = coalesce(started_at, clock_timestamp())
WHERE workspace_id = %(workspace_id)s AND rederivation_id = %(rederivation_id)s
  AND status IN ('queued', 'running')
RETURNING last_id

-- name: lock_rederivation
-- Under the workspace's write lock, before a step: is it still to be done?
SELECT status FROM rederivations
WHERE workspace_id = %(workspace_id)s AND rederivation_id = %(rederivation_id)s
FOR UPDATE

-- name: advance_rederivation
-- One step done, in the transaction that wrote its journeys.
UPDATE rederivations SET last_id = %(last_id)s, ids_done = ids_done + %(ids)s,
    people = people + %(people)s, created = created + %(created)s,
    replaced = replaced + %(replaced)s, unchanged = unchanged + %(unchanged)s,
    deleted = deleted + %(deleted)s
WHERE workspace_id = %(workspace_id)s AND rederivation_id = %(rederivation_id)s

-- name: finish_rederivation
UPDATE rederivations SET status = %(status)s, error = %(error)s,
    finished_at = clock_timestamp()
WHERE workspace_id = %(workspace_id)s AND rederivation_id = %(rederivation_id)s
  AND status IN ('queued', 'running')

-- name: get_rederivation
SELECT rederivation_id, status, events, ids_total, ids_done, people, created, replaced,
    unchanged, deleted, error, created_at, started_at, finished_at
FROM rederivations
WHERE workspace_id = %(workspace_id)s AND rederivation_id = %(rederivation_id)s
