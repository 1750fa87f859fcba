"""Raw events, the identity graph and event rules.

Events whose messageId the workspace does not hold yet are COPYed into the table; a
re-sent event is skipped. Identity links are edges between typed ids (``a:<anonymousId>``,
``u:<userId>``), stored in both directions. The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg.types.json import Jsonb

from . import copytext as ct
from .sqlfiles import query


class EventRow(NamedTuple):
    """One validated event with the columns derivation reads; its first fields are a
    StoredEvent's, in the same order (one is made from a slice of it)."""

    type: str
    anonymous_id: str | None
    user_id: str | None
    event: str | None
    occurred_at: datetime
    message_id: str
    page_path: str | None
    source: str | None
    medium: str | None
    campaign: str | None
    referrer_host: str | None
    click_id: str | None
    device: str | None
    previous_id: str | None
    stamp: str  # occurred_at as COPY text (the time as sent when that reads the same)
    body: str  # the event as JSON text


class StoredEvent(NamedTuple):
    """A touch-making event as derivation reads it back (a tuple: one is made per event
    of a write, and a frozen dataclass costs several times as much to build). An
    EventRow's first fields are these, in this order; ``properties`` is kept only for
    conversion events."""

    type: str
    anonymous_id: str | None
    user_id: str | None
    event: str | None
    occurred_at: datetime
    message_id: str
    page_path: str | None
    source: str | None
    medium: str | None
    campaign: str | None
    referrer_host: str | None
    click_id: str | None
    device: str | None
    properties: dict[str, Any] | None


# An event's name, page path, source columns and device, as COPY text: a site's events
# repeat these, so each combination is formatted once (a bounded cache).
_tails: dict[tuple[str | None, ...], str] = {}
TAIL_CHARS = 1024


def _tail(columns: tuple[str | None, ...]) -> str:
    text = "\t".join([ct.text(v) for v in columns])
    if len(text) <= TAIL_CHARS:  # a long page path is formatted each time, not kept
        if len(_tails) >= 1 << 17:
            _tails.clear()
        _tails[columns] = text
    return text


def copy_lines(workspace_id: int, rows: Iterable[EventRow]) -> str:
    """COPY text of events, columns in copy_events' order (each row unpacked at once,
    a fifth cheaper than reading its fields by name)."""
    text, plain, tail = ct.text, ct.plain, _tails.get
    return "".join([
        f"{workspace_id}\t{plain(m)}\t{t}\t{plain(a)}\t{plain(u)}\t{plain(pr)}\t{text(e)}\t{st}\t"
        f"{tail(k := (p, s, md, c, rh, ci, d)) or _tail(k)}\t{text(b)}\n"
        for t, a, u, e, _, m, p, s, md, c, rh, ci, d, pr, st, b in rows
    ])  # fmt: skip


def store_new(
    conn: psycopg.Connection,
    workspace_id: int,
    rows: Sequence[EventRow],
    prepared: str | None = None,
    probe: bool = True,
) -> list[EventRow]:
    """Store the events whose messageId is new to the workspace (the first of several
    alike in ``rows``) and return them. The caller holds the workspace's write lock.

    ``prepared``: the COPY text of all ``rows`` (from copy_lines), made by the caller
    when their messageIds are distinct; sent as it is when none is stored yet.
    ``probe=False``: expect none to be stored and COPY them without asking first (the
    probe costs PostgreSQL about a third of the COPY); if one is, the COPY fails on the
    primary key, its savepoint is rolled back, and the rows are probed after all."""
    if not probe and prepared is not None:
        try:
            with conn.transaction():
                _copy(conn, prepared)
            return list(rows)
        except psycopg.errors.UniqueViolation as e:
            if e.diag.constraint_name != "events_pkey":
                raise
    first: dict[str, EventRow] = {}
    for r in rows:
        first.setdefault(r.message_id, r)
    params = {"workspace_id": workspace_id, "message_ids": list(first)}
    for (seen,) in conn.execute(query("stored_message_ids"), params):
        del first[seen]
    new = list(first.values())
    if new:
        if prepared is None or len(new) != len(rows):
            prepared = copy_lines(workspace_id, new)
        _copy(conn, prepared)
    return new


def _copy(conn: psycopg.Connection, text: str) -> None:
    with conn.cursor().copy(query("copy_events")) as copy:
        copy.write(text)


def add_links(conn: psycopg.Connection, workspace_id: int, edges: set[tuple[str, str]]) -> None:
    """Link pairs of typed ids (both directions are stored)."""
    pairs = sorted({p for x, y in edges for p in ((x, y), (y, x))})
    if pairs:
        params = {
            "workspace_id": workspace_id,
            "nodes": [a for a, _ in pairs],
            "others": [b for _, b in pairs],
        }
        conn.execute(query("insert_identity_links"), params)


def neighbours(
    conn: psycopg.Connection, workspace_id: int, nodes: list[str]
) -> list[tuple[str, str]]:
    """Edges leaving these typed ids."""
    params = {"workspace_id": workspace_id, "nodes": nodes}
    return conn.execute(query("linked_ids"), params).fetchall()


def all_links(conn: psycopg.Connection, workspace_id: int) -> list[tuple[str, str]]:
    params = {"workspace_id": workspace_id}
    return conn.execute(query("all_identity_links"), params).fetchall()


def all_event_ids(
    conn: psycopg.Connection, workspace_id: int
) -> list[tuple[str | None, str | None]]:
    params = {"workspace_id": workspace_id}
    return conn.execute(query("workspace_event_ids"), params).fetchall()


def split_nodes(nodes: Iterable[str]) -> tuple[list[str], list[str]]:
    """Typed ids -> (anonymousIds, userIds)."""
    anonymous: list[str] = []
    users: list[str] = []
    for n in nodes:
        (anonymous if n.startswith("a:") else users).append(n[2:])
    return anonymous, users


def person_events(
    conn: psycopg.Connection, workspace_id: int, nodes: Iterable[str], conversions: list[str]
) -> list[StoredEvent]:
    """The events of every one of these typed ids."""
    anonymous, users = split_nodes(nodes)
    params = {
        "workspace_id": workspace_id,
        "anonymous_ids": anonymous,
        "user_ids": users,
        "conversions": conversions,
    }
    # fetched at once: a cursor's rows one by one cost more than the query
    rows = conn.execute(query("person_events"), params).fetchall()
    # an event holding an id of each array comes once per array
    unique = {row[5]: row for row in rows}
    return list(map(StoredEvent._make, unique.values()))


def person_event_counts(
    conn: psycopg.Connection, workspace_id: int, nodes: Iterable[str]
) -> dict[str, int]:
    """Typed id -> the number of events it owns (userId, else anonymousId)."""
    anonymous, users = split_nodes(nodes)
    params = {"workspace_id": workspace_id, "anonymous_ids": anonymous, "user_ids": users}
    rows = conn.execute(query("person_event_counts"), params).fetchall()
    return {node: n for node, n in rows if n}


def derived_journey_ids(
    conn: psycopg.Connection, workspace_id: int, customer_ids: list[str] | None
) -> set[str]:
    """Ids of the journeys built from events for these customers (all when None)."""
    if customer_ids is None:
        rows = conn.execute(query("all_derived_journey_ids"), {"workspace_id": workspace_id})
    else:
        params = {"workspace_id": workspace_id, "customer_ids": customer_ids}
        rows = conn.execute(query("derived_journey_ids"), params)
    return {r[0] for r in rows.fetchall()}


def delete_journeys_by_id(conn: psycopg.Connection, workspace_id: int, ids: list[str]) -> int:
    """Gather these journeys in ``journeys_old`` (deleted); the caller moves rollups."""
    params = {"workspace_id": workspace_id, "journey_ids": ids}
    return conn.execute(query("delete_journeys_by_id"), params).rowcount


def component(conn: psycopg.Connection, workspace_id: int, start: Iterable[str]) -> set[str]:
    """Every typed id linked, directly or not, to these."""
    seen = set(start)
    frontier = list(seen)
    while frontier:
        found = {other for _, other in neighbours(conn, workspace_id, frontier)}
        frontier = sorted(found - seen)
        seen |= found
    return seen


def erase_person(conn: psycopg.Connection, workspace_id: int, customer_id: str) -> list[str]:
    """Customer erasure: delete the events and links of every id linked to this one
    (as anonymousId or userId); returns the person's ids (untyped)."""
    nodes = component(conn, workspace_id, [f"a:{customer_id}", f"u:{customer_id}"])
    anonymous, users = split_nodes(nodes)
    plain = sorted({*anonymous, *users})
    params: dict[str, Any] = {
        "workspace_id": workspace_id,
        "anonymous_ids": anonymous,
        "user_ids": users,
        "plain_ids": plain,
        "nodes": sorted(nodes),
    }
    conn.execute(query("erase_events"), params)
    conn.execute(query("erase_identity_links"), params)
    return plain


def get_rules(conn: psycopg.Connection, workspace_id: int) -> dict[str, Any]:
    row = conn.execute(query("get_event_rules"), {"workspace_id": workspace_id}).fetchone()
    return dict(row[0]) if row else {}


def put_rules(conn: psycopg.Connection, workspace_id: int, rules: dict[str, Any]) -> None:
    conn.execute(query("put_event_rules"), {"workspace_id": workspace_id, "rules": Jsonb(rules)})


def any_events(conn: psycopg.Connection, workspace_id: int) -> bool:
    """Whether the workspace holds any event or identity link."""
    row = conn.execute(query("any_events"), {"workspace_id": workspace_id}).fetchone()
    return bool(row and row[0])


def count_events(conn: psycopg.Connection, workspace_id: int) -> int:
    row = conn.execute(query("count_events"), {"workspace_id": workspace_id}).fetchone()
    return int(row[0]) if row else 0
