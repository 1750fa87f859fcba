-- The workspace's time zone, re-bucketing its journeys' days in a new zone, and the
-- time zone changes that run as jobs (migrations 0065, 0066).
-- Every query is scoped to one workspace.

-- name: get_time_zone
SELECT time_zone FROM workspaces WHERE workspace_id = %(workspace_id)s

-- name: set_time_zone
UPDATE workspaces SET time_zone = %(time_zone)s WHERE workspace_id = %(workspace_id)s

-- name: zone_known
-- PostgreSQL computes the days when re-bucketing: the zone must be in its database too.
SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = %(time_zone)s)

-- name: rebucket_journeys
-- The next batch of journeys (in id order, after %(after)s) given the day they count
-- on in %(time_zone)s: their conversion date, or their last touch's date when they did
-- not convert (touches are stored in time order). Only journeys whose day moves are
-- written. Answers the batch's size and last id.
WITH batch AS MATERIALIZED (
    SELECT journey_id FROM journeys
    WHERE workspace_id = %(workspace_id)s AND journey_id > %(after)s
    ORDER BY journey_id
    LIMIT %(limit)s
),
moved AS (
    UPDATE journeys j
    SET day = (coalesce(j.converted_at, j.touched_at[cardinality(j.touched_at)])
               AT TIME ZONE %(time_zone)s)::date
    FROM batch b
    WHERE j.workspace_id = %(workspace_id)s AND j.journey_id = b.journey_id
      AND j.day <> (coalesce(j.converted_at, j.touched_at[cardinality(j.touched_at)])
                    AT TIME ZONE %(time_zone)s)::date
    RETURNING 1
)
SELECT (SELECT count(*) FROM batch), (SELECT max(journey_id) FROM batch),
    (SELECT count(*) FROM moved)

-- name: delete_workspace_rollups
DELETE FROM path_rollups WHERE workspace_id = %(workspace_id)s

-- name: rebuild_workspace_rollups
-- The per-day rollups as a fresh aggregation of the journeys (the all-day totals do
-- not change when days move, so they are left as they are), path ids joined on the
-- hash of the codes as a first load's are. A path left without conversions on a day
-- keeps no value there, as the maintained rollups.
INSERT INTO path_rollups (workspace_id, day, path_id, conversions, nulls, value)
SELECT %(workspace_id)s, r.day, p.path_id, r.conversions, r.nulls, r.value
FROM (
    SELECT day, channels, stages,
        count(*) FILTER (WHERE converted) AS conversions,
        count(*) FILTER (WHERE NOT converted) AS nulls,
        CASE WHEN bool_or(converted) THEN sum(value) ELSE 0 END AS value
    FROM journeys
    WHERE workspace_id = %(workspace_id)s
    GROUP BY day, channels, stages
) r
JOIN paths p
    ON p.workspace_id + 0 = %(workspace_id)s  -- see path_by_codes
   AND (hash_array_extended(p.channels, 0) # hash_array_extended(p.stages, 1)) = (hash_array_extended(r.channels, 0) # hash_array_extended(r.stages, 1))
   AND p.channels = r.channels AND p.stages = r.stages
ORDER BY r.day, p.path_id  -- the primary key's order: appends instead of random inserts

-- name: insert_time_zone_change
INSERT INTO time_zone_changes (workspace_id, time_zone, journeys_total)
VALUES (%(workspace_id)s, %(time_zone)s, %(total)s)
RETURNING change_id

-- name: link_time_zone_change
UPDATE time_zone_changes SET job_id = %(job_id)s
WHERE workspace_id = %(workspace_id)s AND change_id = %(change_id)s

-- fragment: change_columns
SELECT change_id, time_zone, status, journeys_done, journeys_total, error, created_at,
    finished_at
FROM time_zone_changes

-- name: get_time_zone_change
-- include: change_columns
WHERE workspace_id = %(workspace_id)s AND change_id = %(change_id)s

-- name: open_time_zone_change
-- include: change_columns
WHERE workspace_id = %(workspace_id)s AND status IN ('queued', 'running')

-- name: set_time_zone_change
UPDATE time_zone_changes
SET status = %(status)s, journeys_done = %(done)s, error = %(error)s,
    finished_at = CASE WHEN %(status)s IN ('succeeded', 'failed') THEN clock_timestamp() END
WHERE workspace_id = %(workspace_id)s AND change_id = %(change_id)s
