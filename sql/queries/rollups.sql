-- The interned paths, and the per-day rollups and all-day totals that journey writes
-- move in the same transaction (by path id), and the fresh aggregations tests compare
-- them with.
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
-- Whether journeys were ever stored: the all-day totals keep a row (at zero once
-- emptied) for every path that had journeys, so plain inserts could collide with it.
SELECT EXISTS (SELECT 1 FROM path_totals WHERE workspace_id = %(workspace_id)s)

-- name: workspace_has_paths
SELECT EXISTS (SELECT 1 FROM paths WHERE workspace_id = %(workspace_id)s)

-- name: next_totals_change
-- The number a write gives the totals rows it changes (see migration 0027).
SELECT nextval('totals_changes')

-- name: reserve_path_ids
-- A block of path ids for a workspace's first paths.
SELECT array_send(array_agg(nextval('path_ids'))) FROM generate_series(1, %(n)s::int)

-- name: copy_paths
COPY paths (workspace_id, path_id, channels, stages) FROM STDIN

-- name: copy_path_rollups_binary
COPY path_rollups (workspace_id, day, path_id, conversions, nulls, value)
FROM STDIN (FORMAT binary)

-- name: copy_path_totals_binary
COPY path_totals (workspace_id, path_id, conversions, nulls, value, changed)
FROM STDIN (FORMAT binary)

-- name: intern_rollups_in
-- Give the paths of a write's rollups their ids; known paths keep theirs (a path and
-- its id never change). The write holds its workspace's write lock, so no other write
-- adds the same path meanwhile.
INSERT INTO paths (workspace_id, channels, stages)
SELECT %(workspace_id)s, r.channels, r.stages
FROM (SELECT DISTINCT channels, stages FROM rollups_in) r
WHERE (
    -- include: path_by_codes
) IS NULL  -- a subquery per path, not an anti join over every stored path

-- name: intern_journeys_in
INSERT INTO paths (workspace_id, channels, stages)
SELECT %(workspace_id)s, r.channels, r.stages
FROM (SELECT DISTINCT channels, stages FROM journeys_in) r
WHERE (
    -- include: path_by_codes
) IS NULL  -- a subquery per path, not an anti join over every stored path

-- fragment: rollups_in_by_id
-- The write's rollups (day, path id, totals), its paths interned first, joined with
-- the workspace's paths: for writes of many paths (a first load).
SELECT r.day, p.path_id, r.conversions, r.nulls, r.value
FROM rollups_in r
JOIN paths p
    ON p.workspace_id + 0 = %(workspace_id)s  -- see path_by_codes
   AND (hash_array_extended(p.channels, 0) # hash_array_extended(p.stages, 1)) = (hash_array_extended(r.channels, 0) # hash_array_extended(r.stages, 1))
   AND p.channels = r.channels AND p.stages = r.stages

-- fragment: path_by_codes
-- The stored path with the codes `r` holds: one probe of the index on the hash of
-- the codes, so a small write costs what it writes, however many paths the
-- workspace has. The workspace is compared as `workspace_id + 0` so that no index
-- on it competes with the hash's (with no statistics for a new workspace yet, the
-- planner took the primary key and scanned the workspace's paths per lookup).
SELECT p.path_id FROM paths p
WHERE p.workspace_id + 0 = %(workspace_id)s
  AND (hash_array_extended(p.channels, 0) # hash_array_extended(p.stages, 1)) = (hash_array_extended(r.channels, 0) # hash_array_extended(r.stages, 1))
  AND p.channels = r.channels AND p.stages = r.stages

-- name: insert_rollups_in
-- A workspace's first rollups (it has none yet): plain inserts, in key order.
WITH delta AS MATERIALIZED (
    -- include: rollups_in_by_id
),
days AS (
    INSERT INTO path_rollups (workspace_id, day, path_id, conversions, nulls, value)
    SELECT %(workspace_id)s, day, path_id, conversions, nulls, value FROM delta
    ORDER BY day, path_id
)
INSERT INTO path_totals (workspace_id, path_id, conversions, nulls, value, changed)
SELECT %(workspace_id)s, path_id, sum(conversions), sum(nulls),
    CASE WHEN sum(conversions) = 0 THEN 0 ELSE sum(value) END,
    (SELECT nextval('totals_changes'))  -- one number per write
FROM delta
GROUP BY path_id
ORDER BY path_id

-- fragment: add_delta
-- The rows of `delta` (day, path id, totals) added to the per-day rollups and to the
-- all-day totals. A path left without conversions keeps no value, so float residue
-- never leaves value on a path that did not convert.
days AS (
    INSERT INTO path_rollups AS t (workspace_id, day, path_id, conversions, nulls, value)
    SELECT %(workspace_id)s, day, path_id, conversions, nulls, value FROM delta
    ON CONFLICT (workspace_id, day, path_id) DO UPDATE SET
        conversions = t.conversions + excluded.conversions,
        nulls = t.nulls + excluded.nulls,
        value = CASE WHEN t.conversions + excluded.conversions = 0 THEN 0
                     ELSE t.value + excluded.value END
)
INSERT INTO path_totals AS t (workspace_id, path_id, conversions, nulls, value, changed)
SELECT %(workspace_id)s, path_id, sum(conversions), sum(nulls), sum(value),
    (SELECT nextval('totals_changes'))  -- one number per write
FROM delta
GROUP BY path_id
ON CONFLICT (workspace_id, path_id) DO UPDATE SET
    conversions = t.conversions + excluded.conversions,
    nulls = t.nulls + excluded.nulls,
    value = CASE WHEN t.conversions + excluded.conversions = 0 THEN 0
                 ELSE t.value + excluded.value END,
    changed = excluded.changed

-- name: add_rollups_in
-- The rollups of journeys that copy_journeys stored (one row per day and path), added
-- to the per-day rollups and the all-day totals; ids looked up path by path.
WITH delta AS MATERIALIZED (
    SELECT r.day,
        (
            -- include: path_by_codes
        ) AS path_id, r.conversions, r.nulls, r.value
    FROM rollups_in r
),
-- include: add_delta

-- name: add_many_rollups_in
-- The same for many rows, ids joined.
WITH delta AS MATERIALIZED (
    -- include: rollups_in_by_id
),
-- include: add_delta

-- name: move_rollups
-- Add the incoming journeys and subtract the replaced or deleted ones, per day and
-- path, in the rollups and the totals (the incoming paths interned first; each
-- distinct path's id looked up once). A path left without conversions keeps no value,
-- so float residue never leaves value on a path that did not convert.
WITH moved AS MATERIALIZED (
    SELECT d.day, d.channels, d.stages,
        sum(d.sign * d.converted::int) AS conversions,
        sum(d.sign * (NOT d.converted)::int) AS nulls,
        sum(d.sign * d.value) AS value
    FROM (
        SELECT 1 AS sign, day, channels, stages, converted, value FROM journeys_in
        UNION ALL
        SELECT -1, day, channels, stages, converted, value FROM journeys_old
    ) AS d
    GROUP BY d.day, d.channels, d.stages
),
ids AS MATERIALIZED (
    SELECT r.channels, r.stages,
        (
            -- include: path_by_codes
        ) AS path_id
    FROM (SELECT DISTINCT channels, stages FROM moved) r
),
delta AS MATERIALIZED (
    SELECT m.day, i.path_id, m.conversions, m.nulls, m.value
    FROM moved m JOIN ids i ON i.channels = m.channels AND i.stages = m.stages
),
-- include: add_delta

-- name: analyze_journeys_old
-- Temporary tables get no statistics otherwise; with them, the rollup queries below
-- probe the primary key per removed path instead of scanning the workspace's rollups.
ANALYZE journeys_old

-- name: drop_empty_rollups
-- Only paths that lost journeys can have emptied. Emptied per-day rollups go; an
-- emptied all-day total stays at zero, so that processes holding the totals see it
-- change (migration 0027). One index probe per (day, path) lost, then the rows found
-- by their ctid: right after a large load the statistics do not know the workspace's
-- rollups yet, and a join was planned as a scan of all of them for the rare empty
-- ones (594 ms at 10^7 events for one late event; the probes take well under 1 ms).
WITH lost AS MATERIALIZED (
    SELECT r.day,
        (
            -- include: path_by_codes
        ) AS path_id
    FROM (SELECT DISTINCT day, channels, stages FROM journeys_old) r
)
DELETE FROM path_rollups
WHERE ctid = ANY (ARRAY(
    SELECT e.ctid FROM lost l
    CROSS JOIN LATERAL (
        SELECT r.ctid FROM path_rollups r
        WHERE r.workspace_id = %(workspace_id)s AND r.day = l.day AND r.path_id = l.path_id
          AND r.conversions = 0 AND r.nulls = 0
        OFFSET 0
    ) AS e
))

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
SELECT r.day, p.channels, p.stages, r.conversions, r.nulls, r.value
FROM path_rollups r
JOIN paths p ON p.workspace_id = r.workspace_id AND p.path_id = r.path_id
WHERE r.workspace_id = %(workspace_id)s
ORDER BY r.day, p.channels, p.stages

-- name: fresh_path_totals
-- The all-day totals as a fresh sum of the stored rollups, for checking path_totals.
SELECT p.channels, p.stages, sum(r.conversions) AS conversions, sum(r.nulls) AS nulls,
    sum(r.value) AS value
FROM path_rollups r
JOIN paths p ON p.workspace_id = r.workspace_id AND p.path_id = r.path_id
WHERE r.workspace_id = %(workspace_id)s
GROUP BY p.channels, p.stages
ORDER BY p.channels, p.stages

-- name: stored_path_totals
SELECT p.channels, p.stages, t.conversions, t.nulls, t.value
FROM path_totals t
JOIN paths p ON p.workspace_id = t.workspace_id AND p.path_id = t.path_id
WHERE t.workspace_id = %(workspace_id)s
  AND t.conversions + t.nulls > 0  -- zero rows mark emptied paths (migration 0027)
ORDER BY p.channels, p.stages
