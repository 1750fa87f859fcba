-- Per-day totals of unique (channel path, stage path), maintained in the same
-- transaction as every journey write, so attribution reads aggregated paths and its
-- cost grows with unique paths rather than journeys.
-- path_rollups is derived from journeys only (and must always equal a fresh GROUP BY
-- of them); aggregated_paths holds totals that clients aggregated themselves
-- (POST /v1/paths), where the date is optional.
CREATE TABLE path_rollups (
    workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    day date NOT NULL,
    channels smallint[] NOT NULL,
    stages smallint[] NOT NULL,
    conversions bigint NOT NULL,
    nulls bigint NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (workspace_id, day, channels, stages)
);

CREATE TABLE aggregated_paths (
    workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    day date,
    channels smallint[] NOT NULL,
    stages smallint[] NOT NULL,
    conversions double precision NOT NULL CHECK (conversions >= 0),
    nulls double precision NOT NULL CHECK (nulls >= 0),
    value double precision NOT NULL CHECK (value >= 0),
    CONSTRAINT aggregated_paths_key UNIQUE NULLS NOT DISTINCT (workspace_id, day, channels, stages),
    CHECK (cardinality(channels) > 0),
    CHECK (cardinality(stages) = cardinality(channels))
);
