-- Raw events, identity links and event rules: storing events, walking the
-- identity graph, reading a person's events, derived journeys and erasure.
-- Every query is scoped to one workspace.

-- name: stored_message_ids
-- Which of these messageIds the workspace already holds (earlier writes, and earlier
-- batches of this one): those events are skipped.
SELECT message_id FROM events
WHERE workspace_id = %(workspace_id)s AND message_id = ANY(%(message_ids)s)

-- name: copy_events
-- Only events whose messageId is new are sent (the writer holds the workspace's write
-- lock), so they go straight into the table.
COPY events (workspace_id, message_id, type, anonymous_id, user_id, previous_id, event,
    occurred_at, page_path, source, medium, campaign, referrer_host, click_id, device, body)
FROM STDIN

-- name: insert_identity_links
-- Edges in both directions; pairs already linked are skipped.
INSERT INTO identity_links (workspace_id, node, other)
SELECT %(workspace_id)s, node, other
FROM unnest(%(nodes)s::text[], %(others)s::text[]) AS e (node, other)
ON CONFLICT DO NOTHING

-- name: linked_ids
-- One step of the walk over the identity graph from a set of ids.
SELECT node, other FROM identity_links
WHERE workspace_id = %(workspace_id)s AND node = ANY(%(nodes)s)

-- name: all_identity_links
-- Every edge of a workspace, for re-deriving all of it.
SELECT node, other FROM identity_links WHERE workspace_id = %(workspace_id)s

-- name: person_events
-- The events of a set of ids, with the properties of conversion events only (the
-- rest is not read). One index probe per id, so the cost follows the ids asked for,
-- not the workspace: inside a large write the table's statistics are stale, and an
-- OR of the two id columns was planned as a scan of the workspace's every event. An
-- event holding ids of both arrays comes twice; the caller keeps one (by messageId).
SELECT e.* FROM unnest(%(anonymous_ids)s::text[]) AS a (id)
CROSS JOIN LATERAL (
    SELECT type, anonymous_id, user_id, event, occurred_at, message_id, page_path, source,
        medium, campaign, referrer_host, click_id, device,
        CASE WHEN event = ANY(%(conversions)s) THEN body -> 'properties' END AS properties
    FROM events
    WHERE workspace_id = %(workspace_id)s AND anonymous_id = a.id
    OFFSET 0
) AS e
UNION ALL
SELECT e.* FROM unnest(%(user_ids)s::text[]) AS u (id)
CROSS JOIN LATERAL (
    SELECT type, anonymous_id, user_id, event, occurred_at, message_id, page_path, source,
        medium, campaign, referrer_host, click_id, device,
        CASE WHEN event = ANY(%(conversions)s) THEN body -> 'properties' END AS properties
    FROM events
    WHERE workspace_id = %(workspace_id)s AND user_id = u.id
    OFFSET 0
) AS e

-- name: workspace_event_ids
-- The distinct ids of every event of a workspace, for re-deriving all of it.
SELECT DISTINCT anonymous_id, user_id FROM events WHERE workspace_id = %(workspace_id)s

-- name: derived_journey_ids
-- The journeys built from events for these customers (ids starting with "ev:"), one
-- index probe per customer (see person_events): with stale statistics the prefix was
-- planned as a range over every derived journey of the workspace, once per group of
-- people, which made a large write quadratic.
SELECT j.journey_id FROM unnest(%(customer_ids)s::text[]) AS c (id)
CROSS JOIN LATERAL (
    SELECT journey_id FROM journeys
    WHERE workspace_id = %(workspace_id)s AND customer_id = c.id
    OFFSET 0
) AS j
WHERE j.journey_id LIKE 'ev:%%'

-- name: all_derived_journey_ids
SELECT journey_id FROM journeys
WHERE workspace_id = %(workspace_id)s AND journey_id LIKE 'ev:%%'

-- name: delete_journeys_by_id
-- Derived journeys a rebuild no longer produces, gathered for the rollup move.
WITH gone AS (
    DELETE FROM journeys
    WHERE workspace_id = %(workspace_id)s AND journey_id = ANY(%(journey_ids)s)
    RETURNING *
)
INSERT INTO journeys_old SELECT * FROM gone

-- name: erase_events
-- Customer erasure: every event carrying one of the person's ids.
DELETE FROM events
WHERE workspace_id = %(workspace_id)s
  AND (anonymous_id = ANY(%(anonymous_ids)s) OR user_id = ANY(%(user_ids)s)
       OR previous_id = ANY(%(plain_ids)s))

-- name: erase_identity_links
-- Both directions of every edge of a person start at one of their ids.
DELETE FROM identity_links
WHERE workspace_id = %(workspace_id)s AND node = ANY(%(nodes)s)

-- name: any_events
-- Whether the workspace holds any event or identity link (a probe of each primary key).
SELECT EXISTS (SELECT 1 FROM events WHERE workspace_id = %(workspace_id)s)
    OR EXISTS (SELECT 1 FROM identity_links WHERE workspace_id = %(workspace_id)s)

-- name: count_events
SELECT count(*) FROM events WHERE workspace_id = %(workspace_id)s

-- name: get_event_rules
SELECT rules FROM event_rules WHERE workspace_id = %(workspace_id)s

-- name: put_event_rules
INSERT INTO event_rules (workspace_id, rules, updated_at)
VALUES (%(workspace_id)s, %(rules)s, now())
ON CONFLICT (workspace_id) DO UPDATE SET rules = excluded.rules, updated_at = now()

-- name: person_event_counts
-- How many events each of a set of ids owns (a userId owns its events; an anonymousId
-- those without a userId), to tell whether the events of a write are all a person
-- has. One index probe per id (see person_events).
SELECT 'u:' || u.id,
    (SELECT count(*) FROM events WHERE workspace_id = %(workspace_id)s AND user_id = u.id)
FROM unnest(%(user_ids)s::text[]) AS u (id)
UNION ALL
SELECT 'a:' || a.id,
    (SELECT count(*) FROM events
     WHERE workspace_id = %(workspace_id)s AND anonymous_id = a.id AND user_id IS NULL)
FROM unnest(%(anonymous_ids)s::text[]) AS a (id)
