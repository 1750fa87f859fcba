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
-- Stage codes among %(codes)s that some stored path with journeys or client totals
-- still carries.
SELECT DISTINCT s.code
FROM paths p
CROSS JOIN LATERAL unnest(p.stages) AS s(code)
WHERE p.workspace_id = %(workspace_id)s AND p.stages && %(codes)s::smallint[]
  AND s.code = ANY(%(codes)s::smallint[])
  AND (EXISTS (SELECT 1 FROM path_totals t
               WHERE t.workspace_id = p.workspace_id AND t.path_id = p.path_id
                 AND t.conversions + t.nulls > 0)
       OR EXISTS (SELECT 1 FROM aggregated_paths a
                  WHERE a.workspace_id = p.workspace_id AND a.path_id = p.path_id))
