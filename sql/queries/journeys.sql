-- Raw journeys: the staging tables a write copies into, storing, replacing and
-- deleting journeys, and reading one back.
-- Every query is scoped to one workspace.

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
    converted, value, converted_at, attributes, day
FROM journeys
WHERE workspace_id = %(workspace_id)s AND journey_id = %(journey_id)s

-- name: count_journeys
SELECT count(*) AS n FROM journeys WHERE workspace_id = %(workspace_id)s

-- name: customer_journeys
-- The journeys of a person (every id linked to theirs, sent or derived), by their
-- first touch (every journey has one; touches are stored in time order) then id: a
-- page after the (first touch, id) key of the last one seen.
SELECT journey_id, customer_id, channels, stages, touched_at, campaigns, devices,
    converted, value, converted_at, attributes, day,
    touched_at[1] AS first_at
FROM journeys
WHERE workspace_id = %(workspace_id)s AND customer_id = ANY(%(customer_ids)s)
  AND (touched_at[1], journey_id) > (%(after_at)s::timestamptz, %(after_id)s::text)
ORDER BY touched_at[1], journey_id
LIMIT %(limit)s
