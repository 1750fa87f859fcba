-- Paths interned per workspace. A path's channel and stage codes are stored once, in
-- `paths`, under an integer id; rollups, totals and client-aggregated paths refer to
-- the id. Reading a selection then groups on an integer key instead of two arrays, and
-- a process that has read a path's codes once keeps them (a path never changes), so a
-- run reads only totals. `path_totals` holds each path's journey totals over all days,
-- maintained with the per-day rollups, for the common selection of all data.
-- Ids come from one sequence; existing paths get them in path order.

CREATE SEQUENCE path_ids AS bigint;

CREATE TABLE paths (
    workspace_id bigint NOT NULL,
    path_id bigint NOT NULL DEFAULT nextval('path_ids'),
    channels smallint[] NOT NULL,
    stages smallint[] NOT NULL,
    PRIMARY KEY (workspace_id, path_id),
    CHECK (cardinality(channels) > 0),
    CHECK (cardinality(stages) = cardinality(channels))
);

-- A path is found by its codes through a hash of them: an index over the arrays
-- themselves costs about twice as much to fill. A path is stored once because every
-- write that adds paths holds its workspace's write lock (lock_workspace_writes) and
-- adds only the paths it does not find. The hash leads, so that a lookup cannot take
-- the primary key instead (which it did where the planner had no statistics for a new
-- workspace yet, scanning all its paths once per path looked up).
CREATE INDEX paths_codes_idx
    ON paths ((hash_array_extended(channels, 0) # hash_array_extended(stages, 1)), workspace_id);

INSERT INTO paths (workspace_id, channels, stages)
SELECT workspace_id, channels, stages FROM path_rollups
UNION
SELECT workspace_id, channels, stages FROM aggregated_paths
ORDER BY 1, 2, 3;

-- Rollups by day and path id.
ALTER TABLE path_rollups ADD COLUMN path_id bigint;
UPDATE path_rollups r SET path_id = p.path_id
FROM paths p
WHERE p.workspace_id = r.workspace_id
  AND (hash_array_extended(p.channels, 0) # hash_array_extended(p.stages, 1)) = (hash_array_extended(r.channels, 0) # hash_array_extended(r.stages, 1))
  AND p.channels = r.channels AND p.stages = r.stages;
ALTER TABLE path_rollups
    ALTER COLUMN path_id SET NOT NULL,
    DROP CONSTRAINT path_rollups_pkey,
    ADD PRIMARY KEY (workspace_id, day, path_id),
    DROP COLUMN channels,
    DROP COLUMN stages;

-- Journey totals of every path over all days.
CREATE TABLE path_totals (
    workspace_id bigint NOT NULL,
    path_id bigint NOT NULL,
    conversions bigint NOT NULL,
    nulls bigint NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (workspace_id, path_id)
);

INSERT INTO path_totals (workspace_id, path_id, conversions, nulls, value)
SELECT workspace_id, path_id, sum(conversions), sum(nulls),
    CASE WHEN sum(conversions) = 0 THEN 0 ELSE sum(value) END
FROM path_rollups
GROUP BY workspace_id, path_id;

-- Client-aggregated paths by date and path id.
ALTER TABLE aggregated_paths ADD COLUMN path_id bigint;
UPDATE aggregated_paths a SET path_id = p.path_id
FROM paths p
WHERE p.workspace_id = a.workspace_id
  AND (hash_array_extended(p.channels, 0) # hash_array_extended(p.stages, 1)) = (hash_array_extended(a.channels, 0) # hash_array_extended(a.stages, 1))
  AND p.channels = a.channels AND p.stages = a.stages;
ALTER TABLE aggregated_paths
    ALTER COLUMN path_id SET NOT NULL,
    DROP CONSTRAINT aggregated_paths_key,
    ADD CONSTRAINT aggregated_paths_key UNIQUE NULLS NOT DISTINCT (workspace_id, day, path_id),
    DROP COLUMN channels,
    DROP COLUMN stages;
-- A write of client paths finds each one's stored rows by path id (ids are unique
-- across workspaces), whatever its date; the id leads for the same reason as above.
CREATE INDEX aggregated_paths_path_idx ON aggregated_paths (path_id, workspace_id);

-- A deleted workspace takes its paths and totals with it, as its journeys and rollups.
CREATE OR REPLACE FUNCTION delete_workspace_journeys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM path_rollups WHERE workspace_id = OLD.workspace_id;
    DELETE FROM path_totals WHERE workspace_id = OLD.workspace_id;
    DELETE FROM journeys WHERE workspace_id = OLD.workspace_id;
    DELETE FROM paths WHERE workspace_id = OLD.workspace_id;
    RETURN OLD;
END
$$;
