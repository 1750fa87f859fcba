-- Reads of a data selection that need the raw journeys (segment filters, lookback
-- windows), and the journey_filter fragment that every filtered journey read includes.
-- Every query is scoped to one workspace.

-- fragment: journey_filter
-- The journey filter of a selection (api/store/filters.py, JourneyFilter.params):
-- conjuncts over journeys aliased j, each opening with AND, to follow the WHERE that
-- scopes the workspace. A NULL parameter leaves its filter off; day is the conversion
-- date (last touch date when the journey did not convert).
AND j.day BETWEEN coalesce(%(date_from)s::date, '-infinity')
              AND coalesce(%(date_to)s::date, 'infinity')
AND (%(attributes)s::jsonb IS NULL OR j.attributes @> %(attributes)s::jsonb)
AND (%(device)s::text IS NULL OR %(device)s::text = ANY(j.devices))
AND (%(campaign)s::text IS NULL OR %(campaign)s::text = ANY(j.campaigns))

-- name: load_selected_paths
-- Unique (channel path, stage path) totals of the raw journeys that match a selection,
-- grouped in the server, returned like load_paths. With a lookback window, touches
-- more than %(lookback_days)s days before the journey's conversion (its last touch
-- when it did not convert) are dropped first, and journeys left without a touch are
-- left out. Touches are stored in time order, so touches_since only unnests
-- journeys whose first touch lies outside the window (window_start is null, and every
-- touch kept, without a window).
WITH picked AS (
    SELECT j.channels, j.stages, j.touched_at, j.converted, j.value,
        coalesce(j.converted_at, j.touched_at[cardinality(j.touched_at)])
            - make_interval(days => %(lookback_days)s::int) AS window_start
    FROM journeys j
    WHERE j.workspace_id = %(workspace_id)s
      -- include: journey_filter
),
windowed AS (
    SELECT p.converted, p.value,
        touches_since(p.channels, p.touched_at, p.window_start) AS channels,
        touches_since(p.stages, p.touched_at, p.window_start) AS stages
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

-- name: selected_converted_journeys
-- The converted journeys of a selection with their (lookback-trimmed) paths, for the
-- per-journey credit export; same filters and window as load_selected_paths.
WITH picked AS (
    SELECT j.journey_id, j.channels, j.stages, j.touched_at, j.value,
        coalesce(j.converted_at, j.touched_at[cardinality(j.touched_at)])
            - make_interval(days => %(lookback_days)s::int) AS window_start
    FROM journeys j
    WHERE j.workspace_id = %(workspace_id)s AND j.converted
      -- include: journey_filter
)
SELECT p.journey_id, p.value,
    touches_since(p.channels, p.touched_at, p.window_start) AS channels,
    touches_since(p.stages, p.touched_at, p.window_start) AS stages
FROM picked p
ORDER BY p.journey_id

-- name: count_aggregated_paths
-- Client-aggregated paths (POST /v1/paths) a rollup read of this range would include.
SELECT count(*) AS n FROM aggregated_paths
WHERE workspace_id = %(workspace_id)s
  AND (day BETWEEN coalesce(%(date_from)s::date, '-infinity')
               AND coalesce(%(date_to)s::date, 'infinity')
       OR (day IS NULL AND %(date_from)s::date IS NULL AND %(date_to)s::date IS NULL))

-- name: any_journeys
-- Whether any raw journey falls in a date range (a run over client-aggregated paths
-- alone has no journeys to credit).
SELECT EXISTS (
    SELECT 1 FROM journeys
    WHERE workspace_id = %(workspace_id)s
      AND day BETWEEN coalesce(%(date_from)s::date, '-infinity')
                  AND coalesce(%(date_to)s::date, 'infinity')
) AS found

-- name: load_campaign_journeys
-- One path per journey of a selection with each touch's campaign, for a campaign run
-- (the rollups keep no campaigns). Touches outside the lookback window are dropped
-- as in load_selected_paths. Campaigns come as 64-bit hashes per touch (0: none), so
-- the service reads them with numpy, not as one string per touch; the selection's
-- distinct names and their hashes come once, in name order, to decode them. Touch
-- and conversion times only %(with_times)s (time-based models need them). Each
-- journey's day (conversion date, else last touch date) as days since 2000-01-01,
-- for landing its credit on its day in a daily series.
WITH picked AS MATERIALIZED (
    SELECT t.* FROM (
        SELECT j.converted, j.value, j.converted_at, j.day,
            touches_since(j.channels, j.touched_at, w.window_start) AS channels,
            touches_since(j.campaigns, j.touched_at, w.window_start) AS campaigns,
            CASE WHEN %(with_times)s
                THEN touches_since(j.touched_at, j.touched_at, w.window_start) END AS touched_at
        FROM journeys j
        CROSS JOIN LATERAL (
            SELECT coalesce(j.converted_at, j.touched_at[cardinality(j.touched_at)])
                - make_interval(days => %(lookback_days)s::int) AS window_start
        ) w
        WHERE j.workspace_id = %(workspace_id)s
          -- include: journey_filter
    ) t
    WHERE t.channels IS NOT NULL
),
names AS (
    SELECT coalesce(array_agg(d.name ORDER BY d.name), '{}') AS names,
        coalesce(array_agg(hashtextextended(d.name, 0) ORDER BY d.name), '{}') AS hashes
    FROM (
        SELECT DISTINCT c.name FROM picked p CROSS JOIN LATERAL unnest(p.campaigns) AS c(name)
        WHERE c.name IS NOT NULL
    ) d
)
SELECT
    count(*) FILTER (WHERE u.ord = 1) AS n_paths,
    array_send(array_agg(u.channel)) AS tokens,
    array_send(array_agg(coalesce(hashtextextended(u.campaign, 0), 0))) AS campaign_hashes,
    array_send(array_agg(extract(epoch FROM u.touched)::float8)
        FILTER (WHERE %(with_times)s)) AS times,
    array_send(array_agg(cardinality(p.channels)) FILTER (WHERE u.ord = 1)) AS lengths,
    array_send(array_agg(p.converted::int::float8) FILTER (WHERE u.ord = 1)) AS conversions,
    array_send(array_agg((NOT p.converted)::int::float8) FILTER (WHERE u.ord = 1)) AS nulls,
    array_send(array_agg(p.value) FILTER (WHERE u.ord = 1)) AS value,
    array_send(array_agg(coalesce(extract(epoch FROM p.converted_at)::float8, 'NaN'))
        FILTER (WHERE u.ord = 1 AND %(with_times)s)) AS conversion_times,
    (SELECT n.names FROM names n) AS campaign_names,
    (SELECT n.hashes FROM names n) AS campaign_name_hashes,
    array_send(array_agg(p.day - DATE '2000-01-01') FILTER (WHERE u.ord = 1)) AS days
FROM picked p
CROSS JOIN LATERAL unnest(p.channels, p.campaigns, p.touched_at) WITH ORDINALITY
    AS u(channel, campaign, touched, ord)

-- name: count_lookback_trim
-- What a lookback window leaves out of a selection's journeys: touches older than
-- %(lookback_days)s days before the journey's conversion (its last touch when it did
-- not convert), and journeys left with none. Touches are stored in time order, so a
-- journey loses touches only when its first touch is outside the window, and loses
-- them all when its last one is.
WITH picked AS (
    SELECT j.touched_at,
        coalesce(j.converted_at, j.touched_at[cardinality(j.touched_at)])
            - make_interval(days => %(lookback_days)s::int) AS window_start
    FROM journeys j
    WHERE j.workspace_id = %(workspace_id)s
      -- include: journey_filter
)
SELECT
    count(*) AS journeys,
    coalesce(sum(cardinality(p.touched_at)), 0) AS touches,
    coalesce(sum((SELECT count(*) FROM unnest(p.touched_at) AS t(at) WHERE t.at < p.window_start))
        FILTER (WHERE p.touched_at[1] < p.window_start), 0) AS touches_out,
    count(*) FILTER (WHERE p.touched_at[cardinality(p.touched_at)] < p.window_start)
        AS journeys_out
FROM picked p

-- name: workspace_extent
-- How many journeys and client-aggregated paths a workspace holds, and their days.
SELECT
    (SELECT count(*) FROM journeys WHERE workspace_id = %(workspace_id)s) AS journeys,
    (SELECT count(*) FROM aggregated_paths WHERE workspace_id = %(workspace_id)s) AS paths,
    (SELECT min(day) FROM (
        SELECT min(day) AS day FROM journeys WHERE workspace_id = %(workspace_id)s
        UNION ALL
        SELECT min(day) FROM aggregated_paths WHERE workspace_id = %(workspace_id)s) d)
        AS first_day,
    (SELECT max(day) FROM (
        SELECT max(day) AS day FROM journeys WHERE workspace_id = %(workspace_id)s
        UNION ALL
        SELECT max(day) FROM aggregated_paths WHERE workspace_id = %(workspace_id)s) d)
        AS last_day
