-- Named queries of attribution runs, selections, settings and the BI role, in the
-- format of queries.sql: `-- name: <name>`, one statement, %(param)s placeholders.
-- Every query is scoped to one workspace.

-- name: load_selected_paths
-- Unique (channel path, stage path) totals of the raw journeys that match a selection,
-- grouped in the server, returned like load_paths. With a lookback window, touches
-- more than %(lookback_days)s days before the journey's conversion (its last touch
-- when it did not convert) are dropped first, and journeys left without a touch are
-- left out. The scalar subqueries only run when a window is given.
WITH picked AS (
    SELECT j.channels, j.stages, j.touched_at, j.converted, j.value, j.converted_at
    FROM journeys j
    WHERE j.workspace_id = %(workspace_id)s
      AND j.day BETWEEN coalesce(%(date_from)s::date, '-infinity')
                    AND coalesce(%(date_to)s::date, 'infinity')
      AND (%(attributes)s::jsonb IS NULL OR j.attributes @> %(attributes)s::jsonb)
      AND (%(device)s::text IS NULL OR %(device)s::text = ANY(j.devices))
      AND (%(campaign)s::text IS NULL OR %(campaign)s::text = ANY(j.campaigns))
),
windowed AS (
    SELECT p.converted, p.value,
        CASE WHEN %(lookback_days)s::int IS NULL THEN p.channels ELSE (
            SELECT array_agg(u.channel ORDER BY u.ord)
            FROM unnest(p.channels, p.touched_at) WITH ORDINALITY AS u(channel, touched, ord)
            WHERE u.touched >= coalesce(p.converted_at, p.touched_at[cardinality(p.touched_at)])
                               - make_interval(days => %(lookback_days)s::int)
        ) END AS channels,
        CASE WHEN %(lookback_days)s::int IS NULL THEN p.stages ELSE (
            SELECT array_agg(u.stage ORDER BY u.ord)
            FROM unnest(p.stages, p.touched_at) WITH ORDINALITY AS u(stage, touched, ord)
            WHERE u.touched >= coalesce(p.converted_at, p.touched_at[cardinality(p.touched_at)])
                               - make_interval(days => %(lookback_days)s::int)
        ) END AS stages
    FROM picked p
),
grouped AS MATERIALIZED (
    SELECT channels, stages,
        (count(*) FILTER (WHERE converted))::float8 AS conversions,
        (count(*) FILTER (WHERE NOT converted))::float8 AS nulls,
        coalesce(sum(value) FILTER (WHERE converted), 0)::float8 AS value
    FROM windowed
    WHERE channels IS NOT NULL
    GROUP BY channels, stages
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
FROM grouped g
CROSS JOIN LATERAL unnest(g.channels, g.stages) WITH ORDINALITY AS u(channel, stage, ord)

-- name: count_aggregated_paths
-- Client-aggregated paths (POST /v1/paths) a rollup read of this range would include.
SELECT count(*) AS n FROM aggregated_paths
WHERE workspace_id = %(workspace_id)s
  AND (day BETWEEN coalesce(%(date_from)s::date, '-infinity')
               AND coalesce(%(date_to)s::date, 'infinity')
       OR (day IS NULL AND %(date_from)s::date IS NULL AND %(date_to)s::date IS NULL))
