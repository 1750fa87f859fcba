"""Re-derivations of a workspace's journeys after its event rules change: the row a
client polls, written by the request that changes the rules and by the job that
re-derives. The caller owns the transaction."""

from __future__ import annotations

from typing import Any

import psycopg

from .errors import NotFoundError
from .sqlfiles import query


def supersede(conn: psycopg.Connection, workspace_id: int) -> None:
    """The rules changed again: re-derivations still to finish are for old rules."""
    conn.execute(query("supersede_rederivations"), {"workspace_id": workspace_id})


def create(conn: psycopg.Connection, workspace_id: int, events: int) -> str:
    params = {"workspace_id": workspace_id, "events": events}
    row = conn.execute(query("insert_rederivation"), params).fetchone()
    assert row is not None
    return str(row[0])


def set_job(conn: psycopg.Connection, workspace_id: int, rederivation_id: str, job: int) -> None:
    params = {**_key(workspace_id, rederivation_id), "job_id": job}
    conn.execute(query("set_rederivation_job"), params)


def start(
    conn: psycopg.Connection, workspace_id: int, rederivation_id: str, ids_total: int
) -> tuple[bool, str | None]:
    """Mark it running: whether it is still to be done (not superseded nor finished),
    and the last id a try before this one finished (None: from the start)."""
    params = {**_key(workspace_id, rederivation_id), "ids_total": ids_total}
    row = conn.execute(query("start_rederivation"), params).fetchone()
    return (False, None) if row is None else (True, row[0])


def still_running(conn: psycopg.Connection, workspace_id: int, rederivation_id: str) -> bool:
    """Whether it is still to be done (row locked until the caller's commit)."""
    row = conn.execute(query("lock_rederivation"), _key(workspace_id, rederivation_id)).fetchone()
    return row is not None and row[0] == "running"


def advance(
    conn: psycopg.Connection,
    workspace_id: int,
    rederivation_id: str,
    last_id: str,
    ids: int,
    counts: dict[str, int],
) -> None:
    params = {**_key(workspace_id, rederivation_id), "last_id": last_id, "ids": ids, **counts}
    conn.execute(query("advance_rederivation"), params)


def finish(
    conn: psycopg.Connection,
    workspace_id: int,
    rederivation_id: str,
    status: str,
    error: str | None = None,
) -> None:
    params = {**_key(workspace_id, rederivation_id), "status": status, "error": error}
    conn.execute(query("finish_rederivation"), params)


def get(conn: psycopg.Connection, workspace_id: int, rederivation_id: str) -> dict[str, Any]:
    with conn.cursor() as cur:
        cur.execute(query("get_rederivation"), _key(workspace_id, rederivation_id))
        row = cur.fetchone()
        if row is None:
            raise NotFoundError(f"no re-derivation {rederivation_id} in this workspace")
        names = [d.name for d in cur.description or ()]
    found = dict(zip(names, row, strict=True))
    found["rederivation_id"] = str(found["rederivation_id"])
    return found


def _key(workspace_id: int, rederivation_id: str) -> dict[str, Any]:
    return {"workspace_id": workspace_id, "rederivation_id": rederivation_id}
