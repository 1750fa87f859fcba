-- Channel and stage dictionaries, one per workspace.
-- Journeys and rollups store small integer codes instead of names, so paths stay
-- integer-coded from ingestion to the attribution engine. Channel codes are handed out
-- on first sight; stage codes come from the configured funnel, whose order (position)
-- can change without recoding stored journeys. Stage code 0 means "no stage".
CREATE TABLE channels (
    workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    channel_id smallint NOT NULL CHECK (channel_id > 0),
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, channel_id),
    UNIQUE (workspace_id, name)
);

CREATE TABLE stages (
    workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    stage_id smallint NOT NULL CHECK (stage_id > 0),
    name text NOT NULL,
    position smallint NOT NULL,
    PRIMARY KEY (workspace_id, stage_id),
    UNIQUE (workspace_id, name)
);
