-- Workspaces and their API keys (found by name or key prefix, before a workspace is
-- known), and the per-workspace locks every write takes.

-- name: insert_workspace
INSERT INTO workspaces (name) VALUES (%(name)s) RETURNING workspace_id

-- name: find_workspace
SELECT workspace_id, name FROM workspaces WHERE name = %(name)s

-- name: insert_api_key
INSERT INTO api_keys (workspace_id, prefix, key_hash)
VALUES (%(workspace_id)s, %(prefix)s, %(key_hash)s)

-- name: find_api_key
SELECT k.workspace_id, k.key_hash, w.name AS workspace_name
FROM api_keys k JOIN workspaces w USING (workspace_id)
WHERE k.prefix = %(prefix)s AND k.revoked_at IS NULL

-- name: revoke_api_key
UPDATE api_keys SET revoked_at = now()
WHERE prefix = %(prefix)s AND revoked_at IS NULL
RETURNING workspace_id

-- name: lock_workspace_writes
-- Writes of one workspace run one at a time: rollup moves subtract the rows they
-- replace, and channel codes are handed out in order.
SELECT pg_advisory_xact_lock(7301, %(workspace_id)s::int)

-- name: lock_workspace_row
-- journeys and path_rollups check their workspace once per write, not per row: the
-- row is locked as a foreign key check would lock it (no row: the write must fail).
-- The write counts its journeys' days in the time zone it reads here (migration 0065).
SELECT workspace_id, time_zone FROM workspaces WHERE workspace_id = %(workspace_id)s FOR KEY SHARE
