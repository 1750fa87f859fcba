-- Workspace settings: the run defaults a workspace keeps.
-- Every query is scoped to one workspace.

-- name: get_settings
SELECT settings, updated_at FROM workspace_settings WHERE workspace_id = %(workspace_id)s

-- name: put_settings
INSERT INTO workspace_settings AS s (workspace_id, settings)
VALUES (%(workspace_id)s, %(settings)s)
ON CONFLICT (workspace_id) DO UPDATE SET settings = excluded.settings, updated_at = now()
RETURNING settings, updated_at
