"""A workspace's time zone: reading and setting it, re-bucketing its journeys' days in
a new zone, and the time zone changes that run as jobs (``sql/queries/zones.sql``).

Re-bucketing moves each journey's ``day`` and rebuilds the per-day rollups from the
journeys; the all-day totals hold no day and stay as they are. The data version moves
with the rollups (their triggers), so cached runs and selections are not reused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from .errors import NotFoundError
from .sqlfiles import query

REBUCKET_BATCH = 50_000
"""Journeys one statement re-buckets (progress is reported after each)."""


@dataclass(frozen=True)
class ZoneChange:
    """A time zone change that runs (or ran) as a job."""

    change_id: UUID
    time_zone: str
    status: str
    journeys_done: int
    journeys_total: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None


def get_time_zone(conn: psycopg.Connection, workspace_id: int) -> str:
    row = conn.execute(query("get_time_zone"), {"workspace_id": workspace_id}).fetchone()
    if row is None:
        raise NotFoundError(f"no workspace {workspace_id}")
    return str(row[0])


def set_time_zone(conn: psycopg.Connection, workspace_id: int, time_zone: str) -> None:
    conn.execute(query("set_time_zone"), {"workspace_id": workspace_id, "time_zone": time_zone})


def zone_known(conn: psycopg.Connection, time_zone: str) -> bool:
    """Whether the database knows the zone (it computes the days when re-bucketing)."""
    row = conn.execute(query("zone_known"), {"time_zone": time_zone}).fetchone()
    return bool(row and row[0])


def count_journeys(conn: psycopg.Connection, workspace_id: int) -> int:
    row = conn.execute(query("count_journeys"), {"workspace_id": workspace_id}).fetchone()
    return int(row[0]) if row else 0


def rebucket(
    conn: psycopg.Connection,
    workspace_id: int,
    time_zone: str,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Count every journey of the workspace on its day in ``time_zone`` and rebuild the
    per-day rollups; the number of journeys whose day moved. The caller holds the
    workspace's write lock. ``progress`` hears the journeys done after each batch."""
    params: dict[str, Any] = {"workspace_id": workspace_id, "time_zone": time_zone,
                              "after": "", "limit": REBUCKET_BATCH}  # fmt: skip
    done = moved = 0
    while True:
        row = conn.execute(query("rebucket_journeys"), params).fetchone()
        assert row is not None
        n, last, changed = int(row[0]), row[1], int(row[2])
        done, moved = done + n, moved + changed
        if progress is not None:
            progress(done)
        if n < REBUCKET_BATCH:
            break
        params["after"] = last
    conn.execute(query("raise_work_mem"))
    conn.execute(query("delete_workspace_rollups"), {"workspace_id": workspace_id})
    conn.execute(query("rebuild_workspace_rollups"), {"workspace_id": workspace_id})
    return moved


def insert_change(conn: psycopg.Connection, workspace_id: int, time_zone: str, total: int) -> UUID:
    params = {"workspace_id": workspace_id, "time_zone": time_zone, "total": total}
    row = conn.execute(query("insert_time_zone_change"), params).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def link_change(conn: psycopg.Connection, workspace_id: int, change_id: UUID, job_id: int) -> None:
    params = {"workspace_id": workspace_id, "change_id": change_id, "job_id": job_id}
    conn.execute(query("link_time_zone_change"), params)


def get_change(conn: psycopg.Connection, workspace_id: int, change_id: UUID) -> ZoneChange:
    params = {"workspace_id": workspace_id, "change_id": change_id}
    row = conn.execute(query("get_time_zone_change"), params).fetchone()
    if row is None:
        raise NotFoundError(f"no time zone change {change_id}")
    return ZoneChange(*row)


def open_change(conn: psycopg.Connection, workspace_id: int) -> ZoneChange | None:
    """The change that waits or runs, if any (at most one does)."""
    row = conn.execute(query("open_time_zone_change"), {"workspace_id": workspace_id}).fetchone()
    return None if row is None else ZoneChange(*row)


def set_change(
    conn: psycopg.Connection,
    workspace_id: int,
    change_id: UUID,
    status: str,
    done: int,
    error: str | None = None,
) -> None:
    params = {"workspace_id": workspace_id, "change_id": change_id, "status": status,
              "done": done, "error": error}  # fmt: skip
    conn.execute(query("set_time_zone_change"), params)
