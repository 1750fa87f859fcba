-- The per-day path rollups that journey writes move in the same transaction, and the
-- fresh aggregation tests compare them with.
-- Every query is scoped to one workspace.

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
