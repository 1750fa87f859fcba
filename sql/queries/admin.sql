-- Whole databases (api/store/admin.py), run on the server's admin connection: the only
-- queries not scoped to a workspace. {name} and {template} are identifiers filled in
-- with psycopg.sql.Identifier.

-- name: database_exists
SELECT 1 FROM pg_database WHERE datname = %(name)s

-- name: create_database
CREATE DATABASE {name}

-- name: create_database_from_template
CREATE DATABASE {name} TEMPLATE {template}

-- name: drop_database
DROP DATABASE IF EXISTS {name} WITH (FORCE)

-- name: list_databases
SELECT datname FROM pg_database WHERE datname LIKE %(pattern)s ORDER BY datname
