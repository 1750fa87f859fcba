"""Per-workspace channel and stage dictionaries (names <-> small integer codes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import psycopg

from .errors import ConflictError, InvalidDataError, NotFoundError
from .sqlfiles import query

DEFAULT_STAGES = ("awareness", "consideration", "decision", "retention", "advocacy")
MAX_CODE = 32767  # smallint


@dataclass(frozen=True)
class Channel:
    code: int
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Stage:
    position: int
    code: int
    name: str


def list_channels(conn: psycopg.Connection, workspace_id: int) -> list[Channel]:
    rows = conn.execute(query("list_channels"), {"workspace_id": workspace_id}).fetchall()
    return [Channel(*row) for row in rows]


def insert_channels(conn: psycopg.Connection, workspace_id: int, new: dict[str, int]) -> None:
    """Record channel codes handed out during a write (name -> code)."""
    if not new:
        return
    with conn.cursor() as cur:
        cur.executemany(
            query("insert_channel"),
            [{"workspace_id": workspace_id, "code": c, "name": n} for n, c in new.items()],
        )


def list_stages(conn: psycopg.Connection, workspace_id: int) -> list[Stage]:
    rows = conn.execute(query("list_stages"), {"workspace_id": workspace_id}).fetchall()
    return [Stage(*row) for row in rows]


def insert_default_stages(conn: psycopg.Connection, workspace_id: int) -> None:
    _insert_stages(conn, workspace_id, [(i + 1, name) for i, name in enumerate(DEFAULT_STAGES)])


def lock_workspace(conn: psycopg.Connection, workspace_id: int) -> str:
    """Start a write of one workspace: wait for its other writes, and lock its row as a
    foreign key would (journeys and rollups check their workspace here, once per write,
    not once per row). Returns the workspace's time zone, which no write can change
    before this one ends."""
    params = {"workspace_id": workspace_id}
    conn.execute(query("lock_workspace_writes"), params)
    row = conn.execute(query("lock_workspace_row"), params).fetchone()
    if row is None:
        raise NotFoundError(f"no workspace {workspace_id}")
    return str(row[1])


def replace_stages(
    conn: psycopg.Connection, workspace_id: int, wanted: list[tuple[str, int | None]]
) -> list[Stage]:
    """Set the funnel: (name, code or None) in order. A code renames that stage; a name
    without a code keeps the stage of that name or creates one. Stages left out must not
    be carried by any stored path."""
    lock_workspace(conn, workspace_id)
    current = {s.code: s.name for s in list_stages(conn, workspace_id)}
    by_name = {name: code for code, name in current.items()}
    next_code = max(current, default=0) + 1
    plan: list[tuple[int, str]] = []
    for name, code in wanted:
        if code is None:
            code = by_name.get(name)
        if code is None:
            code, next_code = next_code, next_code + 1
        elif code not in current:
            raise ConflictError(f"no stage has code {code}")
        plan.append((code, name))
    dropped = sorted(set(current) - {code for code, _ in plan})
    _refuse_dropping_used(conn, workspace_id, dropped, current)
    conn.execute(query("delete_stages"), {"workspace_id": workspace_id})
    _insert_stages(conn, workspace_id, plan)
    return list_stages(conn, workspace_id)


def _refuse_dropping_used(
    conn: psycopg.Connection, workspace_id: int, dropped: list[int], names: dict[int, str]
) -> None:
    if not dropped:
        return
    rows = conn.execute(
        query("stages_in_use"), {"workspace_id": workspace_id, "codes": dropped}
    ).fetchall()
    if rows:
        used = ", ".join(sorted(names[r[0]] for r in rows))
        raise ConflictError(f"stages still used by stored journeys or paths: {used}")


def _insert_stages(
    conn: psycopg.Connection, workspace_id: int, plan: list[tuple[int, str]]
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            query("insert_stage"),
            [
                {"workspace_id": workspace_id, "code": code, "name": name, "position": i + 1}
                for i, (code, name) in enumerate(plan)
            ],
        )


class Coder:
    """Channel and stage codes for one write transaction.

    Takes the workspace write lock, so codes handed out here are not handed out by a
    concurrent write; new channels are recorded by :meth:`save`. :attr:`zone` is the
    workspace's time zone, which journeys' days are counted in: a zone change waits for
    this write's lock, and re-buckets after it.
    """

    def __init__(self, conn: psycopg.Connection, workspace_id: int) -> None:
        self.zone = ZoneInfo(lock_workspace(conn, workspace_id))
        self.conn = conn
        self.workspace_id = workspace_id
        self.channels = {c.name: c.code for c in list_channels(conn, workspace_id)}
        self.stages = {s.name: s.code for s in list_stages(conn, workspace_id)}
        self.new_channels: dict[str, int] = {}
        self._next_code = max(self.channels.values(), default=0) + 1

    def channel_code(self, name: str) -> int:
        """The code of a channel, handing out the next one for a name not seen before."""
        code = self.channels.get(name)
        if code is None:
            if self._next_code > MAX_CODE:
                raise InvalidDataError(f"a workspace holds at most {MAX_CODE} channels")
            code = self.channels[name] = self.new_channels[name] = self._next_code
            self._next_code += 1
        return code

    def save(self) -> None:
        insert_channels(self.conn, self.workspace_id, self.new_channels)
        self.new_channels = {}
