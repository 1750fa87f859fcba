-- Named queries of attribution runs, selections, settings and the BI role, in the
-- format of queries.sql: `-- name: <name>`, one statement, %(param)s placeholders.
-- Every query is scoped to one workspace.

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
      AND j.day BETWEEN coalesce(%(date_from)s::date, '-infinity')
                    AND coalesce(%(date_to)s::date, 'infinity')
      AND (%(attributes)s::jsonb IS NULL OR j.attributes @> %(attributes)s::jsonb)
      AND (%(device)s::text IS NULL OR %(device)s::text = ANY(j.devices))
      AND (%(campaign)s::text IS NULL OR %(campaign)s::text = ANY(j.campaigns))
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

-- name: count_aggregated_paths
-- Client-aggregated paths (POST /v1/paths) a rollup read of this range would include.
SELECT count(*) AS n FROM aggregated_paths
WHERE workspace_id = %(workspace_id)s
  AND (day BETWEEN coalesce(%(date_from)s::date, '-infinity')
               AND coalesce(%(date_to)s::date, 'infinity')
       OR (day IS NULL AND %(date_from)s::date IS NULL AND %(date_to)s::date IS NULL))

-- name: begin_snapshot
-- One snapshot for the whole read of a run: the data version and the paths it reads
-- describe the same state of the data.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ

-- name: data_version
SELECT coalesce(max(version), 0) AS version FROM workspace_data_versions
WHERE workspace_id = %(workspace_id)s

-- name: insert_run
INSERT INTO attribution_runs (workspace_id, status, parameters, parameters_hash,
    date_from, date_to, filtered, models_total)
VALUES (%(workspace_id)s, %(status)s, %(parameters)s, %(parameters_hash)s,
    %(date_from)s, %(date_to)s, %(filtered)s, %(models_total)s)
RETURNING run_id

-- name: mark_run_running
UPDATE attribution_runs SET status = 'running', started_at = clock_timestamp()
WHERE workspace_id = %(workspace_id)s AND run_id = %(run_id)s AND status = 'queued'

-- name: set_run_progress
UPDATE attribution_runs SET models_done = %(models_done)s
WHERE workspace_id = %(workspace_id)s AND run_id = %(run_id)s

-- name: copy_run_rows
COPY attribution_rows (workspace_id, run_id, row_number, model, dimension, channel, stage,
    conversions, value, share, removal_effect, ci_low, ci_high) FROM STDIN

-- name: finish_run
UPDATE attribution_runs SET status = 'succeeded', data_version = %(data_version)s,
    totals = %(totals)s, warnings = %(warnings)s, models_done = models_total,
    finished_at = clock_timestamp()
WHERE workspace_id = %(workspace_id)s AND run_id = %(run_id)s

-- name: fail_run
UPDATE attribution_runs SET status = 'failed', error = %(error)s,
    data_version = coalesce(%(data_version)s, data_version), finished_at = clock_timestamp()
WHERE workspace_id = %(workspace_id)s AND run_id = %(run_id)s AND status <> 'succeeded'

-- name: get_run
SELECT run_id, status, parameters, data_version, models_done, models_total, totals,
    warnings, error, created_at, started_at, finished_at
FROM attribution_runs
WHERE workspace_id = %(workspace_id)s AND run_id = %(run_id)s

-- name: list_runs
-- Newest first; keyset pagination continues after (created_at, run_id).
SELECT run_id, status, parameters, data_version, models_done, models_total, totals,
    warnings, error, created_at, started_at, finished_at
FROM attribution_runs
WHERE workspace_id = %(workspace_id)s
  AND (%(after_created)s::timestamptz IS NULL
       OR (created_at, run_id) < (%(after_created)s::timestamptz, %(after_run)s::uuid))
ORDER BY created_at DESC, run_id DESC
LIMIT %(limit)s

-- name: run_rows
SELECT model, dimension, channel, stage, conversions, value, share, removal_effect,
    ci_low, ci_high
FROM attribution_rows
WHERE workspace_id = %(workspace_id)s AND run_id = %(run_id)s
ORDER BY row_number

-- name: find_cached_run
-- The latest succeeded run with these parameters on the current data.
SELECT r.run_id FROM attribution_runs r
WHERE r.workspace_id = %(workspace_id)s AND r.parameters_hash = %(parameters_hash)s
  AND r.status = 'succeeded'
  AND r.data_version = (
      SELECT coalesce(max(v.version), 0) FROM workspace_data_versions v
      WHERE v.workspace_id = %(workspace_id)s)
ORDER BY r.finished_at DESC
LIMIT 1

-- name: get_settings
SELECT settings, updated_at FROM workspace_settings WHERE workspace_id = %(workspace_id)s

-- name: put_settings
INSERT INTO workspace_settings AS s (workspace_id, settings)
VALUES (%(workspace_id)s, %(settings)s)
ON CONFLICT (workspace_id) DO UPDATE SET settings = excluded.settings, updated_at = now()
RETURNING settings, updated_at

-- name: selected_converted_journeys
-- The converted journeys of a selection with their (lookback-trimmed) paths, for the
-- per-journey credit export; same filters and window as load_selected_paths.
WITH picked AS (
    SELECT j.journey_id, j.channels, j.stages, j.touched_at, j.value,
        coalesce(j.converted_at, j.touched_at[cardinality(j.touched_at)])
            - make_interval(days => %(lookback_days)s::int) AS window_start
    FROM journeys j
    WHERE j.workspace_id = %(workspace_id)s AND j.converted
      AND j.day BETWEEN coalesce(%(date_from)s::date, '-infinity')
                    AND coalesce(%(date_to)s::date, 'infinity')
      AND (%(attributes)s::jsonb IS NULL OR j.attributes @> %(attributes)s::jsonb)
      AND (%(device)s::text IS NULL OR %(device)s::text = ANY(j.devices))
      AND (%(campaign)s::text IS NULL OR %(campaign)s::text = ANY(j.campaigns))
)
SELECT p.journey_id, p.value,
    touches_since(p.channels, p.touched_at, p.window_start) AS channels,
    touches_since(p.stages, p.touched_at, p.window_start) AS stages
FROM picked p
ORDER BY p.journey_id

-- name: any_journeys
-- Whether any raw journey falls in a date range (a run over client-aggregated paths
-- alone has no journeys to credit).
SELECT EXISTS (
    SELECT 1 FROM journeys
    WHERE workspace_id = %(workspace_id)s
      AND day BETWEEN coalesce(%(date_from)s::date, '-infinity')
                  AND coalesce(%(date_to)s::date, 'infinity')
) AS found

-- name: cached_table
-- The table of the latest succeeded run with these parameters on the current data, in
-- one round trip: no row when there is none, one row with null columns when its table
-- is empty.
WITH hit AS (
    SELECT r.run_id FROM attribution_runs r
    WHERE r.workspace_id = %(workspace_id)s AND r.parameters_hash = %(parameters_hash)s
      AND r.status = 'succeeded'
      AND r.data_version = (
          SELECT coalesce(max(v.version), 0) FROM workspace_data_versions v
          WHERE v.workspace_id = %(workspace_id)s)
    ORDER BY r.finished_at DESC
    LIMIT 1
)
SELECT h.run_id, a.model, a.dimension, a.channel, a.stage, a.conversions, a.value, a.share,
    a.removal_effect, a.ci_low, a.ci_high
FROM hit h
LEFT JOIN attribution_rows a ON a.workspace_id = %(workspace_id)s AND a.run_id = h.run_id
ORDER BY a.row_number

-- name: touch_runs
-- Heartbeat of the runs a live process holds.
UPDATE attribution_runs SET heartbeat_at = clock_timestamp()
WHERE workspace_id = %(workspace_id)s AND run_id = ANY(%(run_ids)s::uuid[])
  AND status IN ('queued', 'running')

-- name: fail_stale_runs
-- Unfinished runs whose process stopped touching them (see 0021_add_run_heartbeats).
UPDATE attribution_runs SET status = 'failed', error = %(error)s,
    finished_at = clock_timestamp()
WHERE workspace_id = %(workspace_id)s AND status IN ('queued', 'running')
  AND coalesce(heartbeat_at, started_at, created_at)
      < clock_timestamp() - make_interval(secs => %(stale_seconds)s)
RETURNING run_id

-- name: create_bi_role
-- A read-only login role for one workspace (see 0013_create_bi_access).
SELECT create_bi_role(%(workspace_id)s, %(role_name)s, %(password)s)

-- name: drop_bi_role
SELECT drop_bi_role(%(role_name)s)
