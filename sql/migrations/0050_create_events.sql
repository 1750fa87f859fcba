-- Raw events (Segment-style track/page/screen/identify/alias/group), the identity
-- links they carry, and each workspace's rules for turning them into journeys.
--
-- An event is kept whole (`body`, unknown fields included) beside the few columns
-- derivation reads, which are extracted once at ingestion: the traffic source of the
-- event (UTM parameters, click id, or the referrer), its page path and device. Events
-- are identified by the sender's messageId: a re-sent event is skipped, not replaced,
-- so delivering a batch twice changes nothing.
CREATE TABLE events (
    workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    message_id text NOT NULL,
    type text NOT NULL,
    anonymous_id text,
    user_id text,
    previous_id text,
    event text,
    occurred_at timestamptz NOT NULL,
    page_path text,
    source text,
    medium text,
    campaign text,
    referrer_host text,
    click_id text,
    device text,
    received_at timestamptz NOT NULL DEFAULT now(),
    body jsonb NOT NULL,
    PRIMARY KEY (workspace_id, message_id),
    CHECK (anonymous_id IS NOT NULL OR user_id IS NOT NULL)
);

-- A person's events are read by every id linked to them.
CREATE INDEX events_anonymous_idx ON events (workspace_id, anonymous_id)
    WHERE anonymous_id IS NOT NULL;
CREATE INDEX events_user_idx ON events (workspace_id, user_id)
    WHERE user_id IS NOT NULL;

-- Identity graph: an undirected edge between two ids of one person, stored in both
-- directions so that the neighbours of a set of ids are one index range each. Ids are
-- typed ("a:" anonymousId, "u:" userId), since the two namespaces are the sender's.
CREATE TABLE identity_links (
    workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    node text NOT NULL,
    other text NOT NULL,
    PRIMARY KEY (workspace_id, node, other)
);

-- Rules for deriving journeys from events: one validated JSON document per workspace
-- (the API owns its shape; fields left out take the documented defaults).
CREATE TABLE event_rules (
    workspace_id bigint PRIMARY KEY REFERENCES workspaces ON DELETE CASCADE,
    rules jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);
