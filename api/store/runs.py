"""Attribution runs, their tables, the data version they read, and workspace settings.

A run row moves queued -> running -> succeeded | failed (a background run's job that is
retried moves it back to queued); its table rows are written with COPY when it
succeeds, in the same transaction as its status. Queries live in
``sql/queries/`` (``runs.sql``, ``settings.sql``, ``selections.sql``). Functions take
``conn`` first and never commit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from attribution import ROW_COLUMNS

from .errors import NotFoundError
from .filters import JourneyFilter
from .sqlfiles import query

_RUN_FIELDS = (
    "run_id",
    "status",
    "parameters",
    "data_version",
    "models_done",
    "models_total",
    "totals",
    "warnings",
    "error",
    "created_at",
    "started_at",
    "finished_at",
)


@dataclass(frozen=True)
class NewRun:
    """What a run records when it is created."""

    parameters: Mapping[str, Any]
    parameters_hash: str
    date_from: date | None
    date_to: date | None
    filtered: bool
    models_total: int


def begin_snapshot(conn: psycopg.Connection) -> None:
    """Make the current transaction read one snapshot (must come first in it)."""
    conn.execute(query("begin_snapshot"))


def data_version(conn: psycopg.Connection, workspace_id: int) -> int:
    """The workspace's data version: it changes with every write to its paths."""
    row = conn.execute(query("data_version"), {"workspace_id": workspace_id}).fetchone()
    return int(row[0]) if row else 0


def create_run(conn: psycopg.Connection, workspace_id: int, run: NewRun, status: str) -> str:
    """Record a new run (``queued`` or ``running``); returns its id."""
    params = {
        "workspace_id": workspace_id,
        "status": status,
        "parameters": Jsonb(run.parameters),
        "parameters_hash": run.parameters_hash,
        "date_from": run.date_from,
        "date_to": run.date_to,
        "filtered": run.filtered,
        "models_total": run.models_total,
    }
    row = conn.execute(query("insert_run"), params).fetchone()
    assert row is not None
    return str(row[0])


def set_job(conn: psycopg.Connection, workspace_id: int, run_id: str, job_id: int) -> None:
    """Record the queue's job that executes the run."""
    conn.execute(query("set_run_job"), {**_key(workspace_id, run_id), "job_id": job_id})


def mark_running(conn: psycopg.Connection, workspace_id: int, run_id: str) -> None:
    """Start (or start over) an unfinished run, its progress back to zero."""
    conn.execute(query("mark_run_running"), _key(workspace_id, run_id))


def requeue(conn: psycopg.Connection, workspace_id: int, run_id: str) -> None:
    """Put an unfinished run back in the queued state: its job will be tried again."""
    conn.execute(query("requeue_run"), _key(workspace_id, run_id))


def set_progress(conn: psycopg.Connection, workspace_id: int, run_id: str, done: int) -> None:
    conn.execute(query("set_run_progress"), {**_key(workspace_id, run_id), "models_done": done})


def finish_run(
    conn: psycopg.Connection,
    workspace_id: int,
    run_id: str,
    *,
    version: int,
    totals: Mapping[str, Any],
    warnings: Mapping[str, Sequence[str]],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Store the run's table and mark it succeeded."""
    with conn.cursor().copy(query("copy_run_rows")) as copy:
        for i, row in enumerate(rows):
            copy.write_row((workspace_id, run_id, i, *(_finite(row[c]) for c in ROW_COLUMNS)))
    params = {
        **_key(workspace_id, run_id),
        "data_version": version,
        "totals": Jsonb(totals),
        "warnings": Jsonb(warnings),
    }
    conn.execute(query("finish_run"), params)


def fail_run(
    conn: psycopg.Connection,
    workspace_id: int,
    run_id: str,
    error: Mapping[str, Any],
    *,
    version: int | None = None,
) -> None:
    """Mark a run failed with a problem body describing why."""
    params = {**_key(workspace_id, run_id), "error": Jsonb(error), "data_version": version}
    conn.execute(query("fail_run"), params)


def touch_runs(conn: psycopg.Connection, workspace_id: int, run_ids: Sequence[str]) -> None:
    """Record that the runs ``run_ids`` are still held by a live process."""
    params = {"workspace_id": workspace_id, "run_ids": list(run_ids)}
    conn.execute(query("touch_runs"), params)


def fail_stale_runs(
    conn: psycopg.Connection, workspace_id: int, stale_seconds: float, error: Mapping[str, Any]
) -> list[str]:
    """Mark failed the unfinished synchronous runs untouched for ``stale_seconds``; their
    ids."""
    params = {"workspace_id": workspace_id, "stale_seconds": stale_seconds, "error": Jsonb(error)}
    return [str(r[0]) for r in conn.execute(query("fail_stale_runs"), params).fetchall()]


def get_run(conn: psycopg.Connection, workspace_id: int, run_id: str) -> dict[str, Any]:
    row = conn.execute(query("get_run"), _key(workspace_id, run_id)).fetchone()
    if row is None:
        raise NotFoundError(f"no attribution run {run_id} in this workspace")
    return _run(row)


def list_runs(
    conn: psycopg.Connection,
    workspace_id: int,
    *,
    limit: int,
    after: tuple[datetime, str] | None = None,
) -> list[dict[str, Any]]:
    """Runs newest first, ``limit`` at most, continuing after ``(created_at, run_id)``."""
    params = {
        "workspace_id": workspace_id,
        "limit": limit,
        "after_created": after[0] if after else None,
        "after_run": after[1] if after else None,
    }
    return [_run(r) for r in conn.execute(query("list_runs"), params).fetchall()]


def run_rows(conn: psycopg.Connection, workspace_id: int, run_id: str) -> list[dict[str, Any]]:
    """The run's table rows in their stored order."""
    cur = conn.execute(query("run_rows"), _key(workspace_id, run_id))
    return [dict(zip(ROW_COLUMNS, r, strict=True)) for r in cur.fetchall()]


def find_cached_run(
    conn: psycopg.Connection, workspace_id: int, parameters_hash: str
) -> str | None:
    """The latest succeeded run with these parameters on the current data, if any."""
    params = {"workspace_id": workspace_id, "parameters_hash": parameters_hash}
    row = conn.execute(query("find_cached_run"), params).fetchone()
    return None if row is None else str(row[0])


def cached_table(
    conn: psycopg.Connection, workspace_id: int, parameters_hash: str
) -> tuple[str, list[dict[str, Any]]] | None:
    """:func:`find_cached_run` and its table rows in one round trip."""
    params = {"workspace_id": workspace_id, "parameters_hash": parameters_hash}
    found = conn.execute(query("cached_table"), params).fetchall()
    if not found:
        return None
    rows = [dict(zip(ROW_COLUMNS, r[1:], strict=True)) for r in found if r[1] is not None]
    return str(found[0][0]), rows


def get_settings(conn: psycopg.Connection, workspace_id: int) -> dict[str, Any]:
    """The workspace's run defaults (empty when never set)."""
    row = conn.execute(query("get_settings"), {"workspace_id": workspace_id}).fetchone()
    return {} if row is None else dict(row[0])


def put_settings(
    conn: psycopg.Connection, workspace_id: int, settings: Mapping[str, Any]
) -> dict[str, Any]:
    params = {"workspace_id": workspace_id, "settings": Jsonb(settings)}
    row = conn.execute(query("put_settings"), params).fetchone()
    assert row is not None
    return dict(row[0])


def converted_journeys(
    conn: psycopg.Connection,
    workspace_id: int,
    *,
    filter: JourneyFilter,
    lookback_days: int | None,
    batch: int = 5000,
) -> Iterator[tuple[str, float, list[int], list[int]]]:
    """Converted journeys matching ``filter``: (journey_id, value, channel codes, stage
    codes), by journey id, through a server-side cursor so memory stays flat."""
    params = filter.params(workspace_id, lookback_days=lookback_days)
    with conn.cursor(name="converted_journeys") as cur:
        cur.itersize = batch
        cur.execute(query("selected_converted_journeys"), params)
        for journey_id, value, channels, stages in cur:
            if channels:  # a lookback window can leave a journey without touches
                yield journey_id, float(value), channels, stages


def _key(workspace_id: int, run_id: str) -> dict[str, Any]:
    return {"workspace_id": workspace_id, "run_id": run_id}


def _run(row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(_RUN_FIELDS, row, strict=True))
    out["run_id"] = str(out["run_id"]) if isinstance(out["run_id"], UUID) else out["run_id"]
    return out


def _finite(value: Any) -> Any:
    """NaN and infinities are stored as NULL: JSON and CSV clients cannot read them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def any_journeys(
    conn: psycopg.Connection, workspace_id: int, *, date_from: date | None, date_to: date | None
) -> bool:
    """Whether any raw journey converts (or ends) in the date range."""
    params = {"workspace_id": workspace_id, "date_from": date_from, "date_to": date_to}
    row = conn.execute(query("any_journeys"), params).fetchone()
    return bool(row and row[0])
