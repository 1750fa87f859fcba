"""A customer's journeys: those of every id linked to theirs, sent or derived."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from . import events
from .errors import NotFoundError
from .journeys import journey_out, names
from .sqlfiles import query

START = (datetime.fromisoformat("0001-01-01T00:00:00+00:00"), "")
"""A key before every journey's (first touch, id)."""


def customer_journeys(
    conn: psycopg.Connection,
    workspace_id: int,
    customer_id: str,
    limit: int,
    after: tuple[datetime, str] | None,
) -> tuple[list[str], list[tuple[dict[str, Any], datetime]]]:
    """The ids of the person holding ``customer_id`` (itself, and every anonymousId or
    userId linked to it) and up to ``limit`` of their journeys after the key ``after``,
    each with its first touch time. NotFoundError when no journey and no event carries
    any of those ids."""
    nodes = events.component(conn, workspace_id, [f"a:{customer_id}", f"u:{customer_id}"])
    ids = sorted({n[2:] for n in nodes})
    at, journey_id = after or START
    params = {
        "workspace_id": workspace_id,
        "customer_ids": ids,
        "after_at": at,
        "after_id": journey_id,
        "limit": limit,
    }
    rows = conn.execute(query("customer_journeys"), params).fetchall()
    if not rows and after is None and not events.person_event_counts(conn, workspace_id, nodes):
        raise NotFoundError(f"no journey and no event of customer {customer_id!r}")
    channels, stages = names(conn, workspace_id)
    return ids, [(journey_out(r, channels, stages), r[12]) for r in rows]
