-- Raw journeys, one row per journey, touchpoints as aligned integer-coded arrays.
-- One row per journey groups into unique paths several times faster than one row per
-- touchpoint, and keeps deletion and replacement a single-row operation. `day` is the
-- date the journey counts on in the rollups: its conversion date, or the date of its
-- last touch when it did not convert (both in UTC).
CREATE TABLE journeys (
    workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    journey_id text NOT NULL,
    customer_id text,
    channels smallint[] NOT NULL,
    stages smallint[] NOT NULL,
    touched_at timestamptz[] NOT NULL,
    campaigns text[],
    devices text[],
    converted boolean NOT NULL,
    value double precision NOT NULL DEFAULT 0,
    converted_at timestamptz,
    day date NOT NULL,
    attributes jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (workspace_id, journey_id),
    CHECK (cardinality(channels) > 0),
    CHECK (cardinality(stages) = cardinality(channels)),
    CHECK (cardinality(touched_at) = cardinality(channels))
);

-- Customer erasure deletes by customer.
CREATE INDEX journeys_customer_idx ON journeys (workspace_id, customer_id);
