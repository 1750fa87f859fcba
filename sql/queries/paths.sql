-- Paths for the engine: client-aggregated paths (POST /v1/paths), and the reads that
-- return unique paths from the rollups or one path per raw journey as binary arrays.
-- Every query is scoped to one workspace.

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

-- name: intern_paths_in
INSERT INTO paths (workspace_id, channels, stages)
SELECT %(workspace_id)s, r.channels, r.stages
FROM (SELECT DISTINCT channels, stages FROM paths_in) r
WHERE (
    -- include: path_by_codes
) IS NULL  -- a subquery per path, not an anti join over every stored path

-- name: count_path_changes
-- Each incoming path's stored totals found by one probe of its path id (however many
-- client paths the workspace holds).
SELECT
    count(*) FILTER (WHERE a.conversions IS NULL) AS created,
    count(*) FILTER (WHERE a.conversions IS NOT NULL
        AND (a.conversions, a.nulls, a.value) IS DISTINCT FROM
            (i.conversions, i.nulls, i.value)) AS replaced,
    count(*) FILTER (WHERE a.conversions IS NOT NULL
        AND (a.conversions, a.nulls, a.value) IS NOT DISTINCT FROM
            (i.conversions, i.nulls, i.value)) AS unchanged
FROM (
    SELECT r.day,
        (
            -- include: path_by_codes
        ) AS path_id, r.conversions, r.nulls, r.value
    FROM paths_in r
) i
LEFT JOIN LATERAL (
    SELECT s.conversions, s.nulls, s.value FROM aggregated_paths s
    WHERE s.path_id = i.path_id AND s.workspace_id + 0 = %(workspace_id)s  -- by path id
      AND s.day IS NOT DISTINCT FROM i.day
) a ON true

-- name: upsert_aggregated_paths
INSERT INTO aggregated_paths AS a (workspace_id, day, path_id, conversions, nulls, value,
    changed)
SELECT %(workspace_id)s, i.day, i.path_id, i.conversions, i.nulls, i.value,
    (SELECT nextval('totals_changes'))  -- one number per write (migration 0027)
FROM (
    SELECT r.day,
        (
            -- include: path_by_codes
        ) AS path_id, r.conversions, r.nulls, r.value
    FROM paths_in r
) i
ON CONFLICT ON CONSTRAINT aggregated_paths_key DO UPDATE SET
    conversions = excluded.conversions, nulls = excluded.nulls, value = excluded.value,
    changed = excluded.changed

-- name: raise_work_mem
-- Grouping and ordering hundreds of thousands of paths spills to disk at the default
-- 4 MB; for this transaction only.
SET LOCAL work_mem = '256MB'

-- fragment: path_total_arrays
-- Per-path totals as binary arrays (array_send) that numpy reads directly. The
-- aggregates take the rows in one sequence, so the arrays align; the rows come in
-- path id order from an ordered subquery (one sort, or none over the key, instead of
-- one per array), and the reader checks the order.
SELECT
    array_send(coalesce(array_agg(path_id), '{}')) AS path_ids,
    array_send(coalesce(array_agg(conversions), '{}')) AS conversions,
    array_send(coalesce(array_agg(nulls), '{}')) AS nulls,
    array_send(coalesce(array_agg(value), '{}')) AS value

-- name: load_changed_path_totals
-- The journeys' all-day totals of the paths changed after change number %(after)s
-- (0: every path), zero rows included (they tell a holder that a path emptied), with
-- the highest change number read (migration 0027).
-- include: path_total_arrays
    , max(changed) AS mark
FROM (
    SELECT path_id, conversions::float8 AS conversions, nulls::float8 AS nulls, value,
        changed
    FROM path_totals
    WHERE workspace_id = %(workspace_id)s AND changed > %(after)s
    ORDER BY path_id
) t

-- name: load_client_totals
-- Every client-aggregated path's totals over all its rows (dated or not), with the
-- highest change number read.
-- include: path_total_arrays
    , max(changed) AS mark
FROM (
    SELECT path_id, sum(conversions) AS conversions, sum(nulls) AS nulls,
        sum(value) AS value, max(changed) AS changed
    FROM aggregated_paths
    WHERE workspace_id = %(workspace_id)s
    GROUP BY path_id
    ORDER BY path_id
) t

-- name: load_changed_client_totals
-- The same for the client paths with a row changed after change number %(after)s.
-- include: path_total_arrays
    , max(changed) AS mark
FROM (
    SELECT a.path_id, sum(a.conversions) AS conversions, sum(a.nulls) AS nulls,
        sum(a.value) AS value, max(a.changed) AS changed
    FROM (
        SELECT DISTINCT path_id FROM aggregated_paths
        WHERE workspace_id = %(workspace_id)s AND changed > %(after)s
    ) c
    JOIN aggregated_paths a
        ON a.workspace_id + 0 = %(workspace_id)s AND a.path_id = c.path_id  -- by path id
    GROUP BY a.path_id
    ORDER BY a.path_id
) t

-- name: load_path_sums
-- Per-path totals over a date range (all data reads the all-day totals instead): the
-- per-day rollups and the client-aggregated paths dated in the range, grouped by path
-- id.
-- include: path_total_arrays
FROM (
    SELECT path_id, sum(conversions)::float8 AS conversions, sum(nulls)::float8 AS nulls,
        CASE WHEN sum(conversions) = 0 THEN 0 ELSE sum(value) END AS value
    FROM (
        SELECT path_id, conversions::float8, nulls::float8, value
        FROM path_rollups
        WHERE workspace_id = %(workspace_id)s
          AND day BETWEEN coalesce(%(date_from)s::date, '-infinity')
                      AND coalesce(%(date_to)s::date, 'infinity')
        UNION ALL
        SELECT path_id, conversions, nulls, value
        FROM aggregated_paths
        WHERE workspace_id = %(workspace_id)s
          AND day BETWEEN coalesce(%(date_from)s::date, '-infinity')
                      AND coalesce(%(date_to)s::date, 'infinity')
    ) AS r
    GROUP BY path_id
    HAVING sum(conversions) + sum(nulls) > 0
    ORDER BY path_id
) t

-- name: load_path_codes
-- The channel and stage codes of paths not yet read by this process: ids above
-- %(after)s, and the listed %(ids)s (ids a concurrent write took before committing
-- later), the first %(limit)s by path id. Ids and lengths come as binary arrays; each
-- path's codes as its own array_send blob, the blobs concatenated (no unnesting of
-- every touch): numpy finds each path's codes from the lengths. The aggregates take
-- the rows in one sequence, so the four align (in path id order, from the key).
SELECT
    array_send(coalesce(array_agg(path_id), '{}')) AS path_ids,
    array_send(coalesce(array_agg(cardinality(channels)), '{}')) AS lengths,
    coalesce(string_agg(array_send(channels), ''::bytea), '') AS channels,
    coalesce(string_agg(array_send(stages), ''::bytea), '') AS stages
FROM (
    SELECT path_id, channels, stages FROM paths
    WHERE workspace_id = %(workspace_id)s
      AND (path_id > %(after)s OR path_id = ANY(%(ids)s::bigint[]))
    ORDER BY path_id
    LIMIT %(limit)s
) p

-- name: database_oid
-- Which database a connection reads: path ids are only unique within one.
SELECT oid FROM pg_database WHERE datname = current_database()

-- name: load_journeys
-- One path per journey, with per-touch times, for time-based models and segments.
-- Filters are optional: NULL leaves a filter off.
WITH picked AS MATERIALIZED (
    SELECT j.journey_id, j.channels, j.stages, j.touched_at, j.converted, j.value,
        j.converted_at
    FROM journeys j
    WHERE j.workspace_id = %(workspace_id)s
      -- include: journey_filter
      AND (%(customer_id)s::text IS NULL OR j.customer_id = %(customer_id)s::text)
    ORDER BY j.journey_id
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

-- name: load_path_days
-- Per day and path over a date range: the per-day rollups and the client-aggregated
-- paths dated in the range, as binary arrays in (path id, day) order, days counted
-- from 2000-01-01 (for landing each path's credit on its days: daily series).
-- include: path_total_arrays
    , array_send(coalesce(array_agg(day - DATE '2000-01-01'), '{}')) AS days
FROM (
    SELECT day, path_id, sum(conversions)::float8 AS conversions,
        sum(nulls)::float8 AS nulls, sum(value) AS value
    FROM (
        SELECT day, path_id, conversions::float8 AS conversions, nulls::float8 AS nulls, value
        FROM path_rollups
        WHERE workspace_id = %(workspace_id)s AND day BETWEEN %(date_from)s AND %(date_to)s
        UNION ALL
        SELECT day, path_id, conversions, nulls, value
        FROM aggregated_paths
        WHERE workspace_id = %(workspace_id)s AND day BETWEEN %(date_from)s AND %(date_to)s
    ) AS r
    GROUP BY day, path_id
    ORDER BY path_id, day
) t
