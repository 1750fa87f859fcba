-- Named queries of the store. Each block starts with `-- name: <name>`, holds one
-- statement and takes %(param)s placeholders. Every query is scoped to one workspace.

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
SELECT workspace_id FROM workspaces WHERE workspace_id = %(workspace_id)s FOR KEY SHARE

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

-- name: create_journeys_in
-- Per-connection staging tables, emptied at every commit: writes COPY the incoming
-- journeys into journeys_in and gather the rows they replace or delete in
-- journeys_old, then move rollups by the difference.
CREATE TEMP TABLE IF NOT EXISTS journeys_in (
    workspace_id bigint NOT NULL,
    journey_id text NOT NULL,
    customer_id text,
    channels smallint[] NOT NULL,
    stages smallint[] NOT NULL,
    touched_at timestamptz[] NOT NULL,
    campaigns text[],
    devices text[],
    converted boolean NOT NULL,
    value double precision NOT NULL,
    converted_at timestamptz,
    day date NOT NULL,
    attributes jsonb NOT NULL
) ON COMMIT DELETE ROWS

-- name: create_journeys_old
CREATE TEMP TABLE IF NOT EXISTS journeys_old (LIKE journeys) ON COMMIT DELETE ROWS

-- name: clear_journeys_in
-- Between chunks of one write; cheaper than deleting tens of thousands of rows.
TRUNCATE journeys_in

-- name: clear_journeys_old
DELETE FROM journeys_old

-- name: copy_journeys_in
COPY journeys_in (workspace_id, journey_id, customer_id, channels, stages, touched_at,
    campaigns, devices, converted, value, converted_at, day, attributes) FROM STDIN

-- name: copy_journeys
-- Straight into the table when none of the rows exists yet (a first load): the same
-- rows as copy_journeys_in, parsed once instead of staged and copied again.
COPY journeys (workspace_id, journey_id, customer_id, channels, stages, touched_at,
    campaigns, devices, converted, value, converted_at, day, attributes) FROM STDIN

-- name: create_rollups_in
-- Rollup totals of a write, totalled by the writer: added to path_rollups by upserts.
CREATE TEMP TABLE IF NOT EXISTS rollups_in (
    day date NOT NULL,
    channels smallint[] NOT NULL,
    stages smallint[] NOT NULL,
    conversions bigint NOT NULL,
    nulls bigint NOT NULL,
    value double precision NOT NULL
) ON COMMIT DELETE ROWS

-- name: clear_rollups_in
TRUNCATE rollups_in

-- name: copy_rollups_in
COPY rollups_in (day, channels, stages, conversions, nulls, value) FROM STDIN

-- name: workspace_has_rollups
SELECT EXISTS (SELECT 1 FROM path_rollups WHERE workspace_id = %(workspace_id)s)

-- name: copy_path_rollups
-- Straight into the table when the workspace has no rollups yet (a first load).
COPY path_rollups (workspace_id, day, channels, stages, conversions, nulls, value) FROM STDIN

-- name: add_rollups_in
-- The rollups of journeys that copy_journeys stored (one row per day and path).
INSERT INTO path_rollups AS r (workspace_id, day, channels, stages, conversions, nulls, value)
SELECT %(workspace_id)s, day, channels, stages, conversions, nulls, value FROM rollups_in
ON CONFLICT (workspace_id, day, channels, stages) DO UPDATE SET
    conversions = r.conversions + excluded.conversions,
    nulls = r.nulls + excluded.nulls,
    value = CASE WHEN r.conversions + excluded.conversions = 0 THEN 0
                 ELSE r.value + excluded.value END

-- name: snapshot_replaced_journeys
-- One index probe per incoming journey: a hash join would scan every stored journey
-- of the workspace for each chunk of a large upload. LIMIT 1 (the key is unique) keeps
-- the planner from flattening the lateral subquery back into such a join.
INSERT INTO journeys_old
SELECT j.* FROM journeys_in i
CROSS JOIN LATERAL (
    SELECT * FROM journeys
    WHERE workspace_id = %(workspace_id)s AND journey_id = i.journey_id
    LIMIT 1
) AS j

-- name: drop_unchanged_journeys
-- Re-sent journeys identical to the stored ones change nothing; the row count is the
-- number of unchanged journeys.
WITH same AS (
    DELETE FROM journeys_old o USING journeys_in i
    WHERE o.journey_id = i.journey_id
      AND (o.customer_id, o.channels, o.stages, o.touched_at, o.campaigns, o.devices,
           o.converted, o.value, o.converted_at, o.day, o.attributes)
          IS NOT DISTINCT FROM
          (i.customer_id, i.channels, i.stages, i.touched_at, i.campaigns, i.devices,
           i.converted, i.value, i.converted_at, i.day, i.attributes)
    RETURNING o.journey_id
)
DELETE FROM journeys_in i USING same WHERE i.journey_id = same.journey_id

-- name: insert_journeys
-- Used when no incoming journey replaces a stored one: a plain insert avoids the
-- per-row speculative insertion of ON CONFLICT.
INSERT INTO journeys (workspace_id, journey_id, customer_id, channels, stages, touched_at,
    campaigns, devices, converted, value, converted_at, day, attributes)
SELECT %(workspace_id)s, journey_id, customer_id, channels, stages, touched_at,
    campaigns, devices, converted, value, converted_at, day, attributes
FROM journeys_in

-- name: upsert_journeys
INSERT INTO journeys AS j (workspace_id, journey_id, customer_id, channels, stages,
    touched_at, campaigns, devices, converted, value, converted_at, day, attributes)
SELECT %(workspace_id)s, journey_id, customer_id, channels, stages, touched_at,
    campaigns, devices, converted, value, converted_at, day, attributes
FROM journeys_in
ON CONFLICT (workspace_id, journey_id) DO UPDATE SET
    customer_id = excluded.customer_id, channels = excluded.channels,
    stages = excluded.stages, touched_at = excluded.touched_at,
    campaigns = excluded.campaigns, devices = excluded.devices,
    converted = excluded.converted, value = excluded.value,
    converted_at = excluded.converted_at, day = excluded.day,
    attributes = excluded.attributes

-- name: move_rollups
-- Add the incoming journeys and subtract the replaced or deleted ones, per day and
-- unique (channel path, stage path). A path left without conversions keeps no value,
-- so float residue never leaves value on a path that did not convert.
INSERT INTO path_rollups AS r (workspace_id, day, channels, stages, conversions, nulls, value)
SELECT %(workspace_id)s, day, channels, stages,
    sum(sign * converted::int), sum(sign * (NOT converted)::int), sum(sign * value)
FROM (
    SELECT 1 AS sign, day, channels, stages, converted, value FROM journeys_in
    UNION ALL
    SELECT -1, day, channels, stages, converted, value FROM journeys_old
) AS delta
GROUP BY day, channels, stages
ON CONFLICT (workspace_id, day, channels, stages) DO UPDATE SET
    conversions = r.conversions + excluded.conversions,
    nulls = r.nulls + excluded.nulls,
    value = CASE WHEN r.conversions + excluded.conversions = 0 THEN 0
                 ELSE r.value + excluded.value END

-- name: analyze_journeys_old
-- Temporary tables get no statistics otherwise; with them, the rollup queries below
-- probe the primary key per removed path instead of scanning the workspace's rollups.
ANALYZE journeys_old

-- name: drop_empty_rollups
-- Only paths that lost journeys can have emptied.
DELETE FROM path_rollups r
USING (SELECT DISTINCT day, channels, stages FROM journeys_old) o
WHERE r.workspace_id = %(workspace_id)s
  AND r.day = o.day AND r.channels = o.channels AND r.stages = o.stages
  AND r.conversions = 0 AND r.nulls = 0

-- name: delete_journey
WITH gone AS (
    DELETE FROM journeys
    WHERE workspace_id = %(workspace_id)s AND journey_id = %(journey_id)s
    RETURNING *
)
INSERT INTO journeys_old SELECT * FROM gone

-- name: delete_customer_journeys
WITH gone AS (
    DELETE FROM journeys
    WHERE workspace_id = %(workspace_id)s AND customer_id = %(customer_id)s
    RETURNING *
)
INSERT INTO journeys_old SELECT * FROM gone

-- name: get_journey
SELECT journey_id, customer_id, channels, stages, touched_at, campaigns, devices,
    converted, value, converted_at, attributes
FROM journeys
WHERE workspace_id = %(workspace_id)s AND journey_id = %(journey_id)s

-- name: create_paths_in
CREATE TEMP TABLE IF NOT EXISTS paths_in (
    n integer NOT NULL,
    day date,
    channels smallint[] NOT NULL,
    stages smallint[] NOT NULL,
    conversions double precision NOT NULL,
    nulls double precision NOT NULL,
    value double precision NOT NULL
) ON COMMIT DELETE ROWS

-- name: clear_paths_in
DELETE FROM paths_in

-- name: copy_paths_in
COPY paths_in (n, day, channels, stages, conversions, nulls, value) FROM STDIN

-- name: count_path_changes
SELECT
    count(*) FILTER (WHERE a.workspace_id IS NULL) AS created,
    count(*) FILTER (WHERE a.workspace_id IS NOT NULL
        AND (a.conversions, a.nulls, a.value) IS DISTINCT FROM
            (i.conversions, i.nulls, i.value)) AS replaced,
    count(*) FILTER (WHERE a.workspace_id IS NOT NULL
        AND (a.conversions, a.nulls, a.value) IS NOT DISTINCT FROM
            (i.conversions, i.nulls, i.value)) AS unchanged
FROM paths_in i
LEFT JOIN aggregated_paths a
    ON a.workspace_id = %(workspace_id)s AND a.day IS NOT DISTINCT FROM i.day
   AND a.channels = i.channels AND a.stages = i.stages

-- name: upsert_aggregated_paths
INSERT INTO aggregated_paths AS a (workspace_id, day, channels, stages, conversions, nulls, value)
SELECT %(workspace_id)s, day, channels, stages, conversions, nulls, value FROM paths_in
ON CONFLICT ON CONSTRAINT aggregated_paths_key DO UPDATE SET
    conversions = excluded.conversions, nulls = excluded.nulls, value = excluded.value

-- name: raise_work_mem
-- Grouping and ordering hundreds of thousands of paths spills to disk at the default
-- 4 MB; for this transaction only.
SET LOCAL work_mem = '256MB'

-- name: load_paths
-- Aggregated paths over a date range, read from the rollups (never raw journeys),
-- returned as a handful of binary arrays (array_send) that numpy reads directly.
-- All aggregates run over the same row stream, so the per-touch arrays and the
-- per-path arrays (taken at each path's first touch) line up.
WITH grouped AS MATERIALIZED (
    SELECT channels, stages,
        sum(conversions)::float8 AS conversions,
        sum(nulls)::float8 AS nulls,
        CASE WHEN sum(conversions) = 0 THEN 0 ELSE sum(value) END AS value
    FROM (
        SELECT channels, stages, conversions::float8, nulls::float8, value
        FROM path_rollups
        WHERE workspace_id = %(workspace_id)s
          AND day BETWEEN coalesce(%(date_from)s::date, '-infinity')
                      AND coalesce(%(date_to)s::date, 'infinity')
        UNION ALL
        SELECT channels, stages, conversions, nulls, value
        FROM aggregated_paths
        WHERE workspace_id = %(workspace_id)s
          AND (day BETWEEN coalesce(%(date_from)s::date, '-infinity')
                       AND coalesce(%(date_to)s::date, 'infinity')
               OR (day IS NULL AND %(date_from)s::date IS NULL AND %(date_to)s::date IS NULL))
    ) AS r
    GROUP BY channels, stages
    HAVING sum(conversions) + sum(nulls) > 0
    ORDER BY channels, stages
)
SELECT
    count(*) FILTER (WHERE u.ord = 1) AS n_paths,
    array_send(array_agg(u.channel)) AS tokens,
    array_send(array_agg(u.stage)) AS stage_tokens,
    array_send(array_agg(cardinality(g.channels)) FILTER (WHERE u.ord = 1)) AS lengths,
    array_send(array_agg(g.conversions) FILTER (WHERE u.ord = 1)) AS conversions,
    array_send(array_agg(g.nulls) FILTER (WHERE u.ord = 1)) AS nulls,
    array_send(array_agg(g.value) FILTER (WHERE u.ord = 1)) AS value
FROM grouped g CROSS JOIN LATERAL unnest(g.channels, g.stages) WITH ORDINALITY AS u(channel, stage, ord)

-- name: load_journeys
-- One path per journey, with per-touch times, for time-based models and segments.
-- Filters are optional: NULL leaves a filter off.
WITH picked AS MATERIALIZED (
    SELECT journey_id, channels, stages, touched_at, converted, value, converted_at
    FROM journeys
    WHERE workspace_id = %(workspace_id)s
      AND day BETWEEN coalesce(%(date_from)s::date, '-infinity')
                  AND coalesce(%(date_to)s::date, 'infinity')
      AND (%(attributes)s::jsonb IS NULL OR attributes @> %(attributes)s::jsonb)
      AND (%(device)s::text IS NULL OR %(device)s::text = ANY(devices))
      AND (%(campaign)s::text IS NULL OR %(campaign)s::text = ANY(campaigns))
      AND (%(customer_id)s::text IS NULL OR customer_id = %(customer_id)s::text)
    ORDER BY journey_id
)
SELECT
    count(*) FILTER (WHERE u.ord = 1) AS n_paths,
    array_send(array_agg(u.channel)) AS tokens,
    array_send(array_agg(u.stage)) AS stage_tokens,
    array_send(array_agg(extract(epoch FROM u.touched)::float8)) AS times,
    array_send(array_agg(cardinality(p.channels)) FILTER (WHERE u.ord = 1)) AS lengths,
    array_send(array_agg(p.converted::int::float8) FILTER (WHERE u.ord = 1)) AS conversions,
    array_send(array_agg((NOT p.converted)::int::float8) FILTER (WHERE u.ord = 1)) AS nulls,
    array_send(array_agg(p.value) FILTER (WHERE u.ord = 1)) AS value,
    array_send(array_agg(coalesce(extract(epoch FROM p.converted_at)::float8, 'NaN'))
        FILTER (WHERE u.ord = 1)) AS conversion_times,
    string_agg(p.journey_id, E'\n') FILTER (WHERE u.ord = 1) AS journey_ids
FROM picked p
CROSS JOIN LATERAL unnest(p.channels, p.stages, p.touched_at) WITH ORDINALITY
    AS u(channel, stage, touched, ord)

-- name: fresh_rollups
-- A fresh aggregation of raw journeys, for checking the maintained rollups.
SELECT day, channels, stages,
    count(*) FILTER (WHERE converted) AS conversions,
    count(*) FILTER (WHERE NOT converted) AS nulls,
    coalesce(sum(value), 0) AS value
FROM journeys WHERE workspace_id = %(workspace_id)s
GROUP BY day, channels, stages
ORDER BY day, channels, stages

-- name: stored_rollups
SELECT day, channels, stages, conversions, nulls, value
FROM path_rollups WHERE workspace_id = %(workspace_id)s
ORDER BY day, channels, stages

-- name: count_journeys
SELECT count(*) AS n FROM journeys WHERE workspace_id = %(workspace_id)s

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
