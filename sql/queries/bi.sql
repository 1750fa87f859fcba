-- BI access (api/store/bi.py): creating and dropping the read-only login roles that
-- see one workspace through the views of sql/views.

-- name: create_bi_role
-- A read-only login role for one workspace (see 0013_create_bi_access).
SELECT create_bi_role(%(workspace_id)s, %(role_name)s, %(password)s)

-- name: drop_bi_role
SELECT drop_bi_role(%(role_name)s)
