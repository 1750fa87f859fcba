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
