-- Queries of the migration runner (api/store/migrations.py): its bookkeeping table,
-- the advisory lock it runs under, and the server version check.

-- name: create_schema_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: lock_migrations
-- Session lock: two `pathcredit migrate` runs (or two servers starting) wait in turn.
SELECT pg_advisory_lock(7300, 0)

-- name: unlock_migrations
SELECT pg_advisory_unlock(7300, 0)

-- name: list_applied_migrations
SELECT name, checksum FROM schema_migrations ORDER BY name

-- name: schema_migrations_exists
SELECT to_regclass('schema_migrations') IS NOT NULL AS present

-- name: record_migration
INSERT INTO schema_migrations (name, checksum) VALUES (%(name)s, %(checksum)s)

-- name: server_version
SELECT current_setting('server_version_num')::int AS version

-- name: queue_schema_exists
-- The job queue's tables, present without a record when its schema was applied by hand.
SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present
