-- The channel and stage dictionaries of a workspace: names behind the smallint codes
-- that stored paths carry.
-- Every query is scoped to one workspace.

-- name: list_channels
SELECT channel_id AS code, name, created_at FROM channels
WHERE workspace_id = %(workspace_id)s ORDER BY channel_id

-- name: insert_channel
INSERT INTO channels (workspace_id, channel_id, name)
VALUES (%(workspace_id)s, %(code)s, %(name)s)

-- name: list_stages
SELECT position, stage_id AS code, name FROM stages
WHERE workspace_id = %(workspace_id)s ORDER BY position

-- name: delete_stages
DELETE FROM stages WHERE workspace_id = %(workspace_id)s

-- name: insert_stage
INSERT INTO stages (workspace_id, stage_id, name, position)
VALUES (%(workspace_id)s, %(code)s, %(name)s, %(position)s)

-- name: stages_in_use
-- Stage codes among %(codes)s that some stored path still carries.
SELECT DISTINCT s.code FROM (
    SELECT unnest(stages) AS code FROM path_rollups
    WHERE workspace_id = %(workspace_id)s AND stages && %(codes)s::smallint[]
    UNION ALL
    SELECT unnest(stages) FROM aggregated_paths
    WHERE workspace_id = %(workspace_id)s AND stages && %(codes)s::smallint[]
) s
WHERE s.code = ANY(%(codes)s::smallint[])
