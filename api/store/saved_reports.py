"""Saved reports and their table links (``sql/queries/saved_reports.sql``).

A saved report is a name, a run body, the run that answered it last and the data
version that run read; a refresh under way is recorded as the report's pending run,
claimed by compare and swap (:func:`claim`). Table links are rows a signed token
names, so they can be revoked. A report's last answered daily series is stored
whole for the BI view ``series_latest_v1`` (:func:`put_series`). Functions take
``conn`` first and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from .errors import NotFoundError, translated
from .sqlfiles import query

_REPORT_FIELDS = (
    "report_id",
    "name",
    "parameters",
    "created_at",
    "updated_at",
    "run_id",
    "data_version",
    "refreshed_at",
)
_LINK_FIELDS = ("link_id", "created_at", "expires_at", "revoked_at")


@dataclass(frozen=True)
class RefreshState:
    """What a refresh decides on (see the ``refresh_state`` query)."""

    report_id: int
    body: Mapping[str, Any]
    run_id: str | None
    parameters_hash: str | None
    run_version: int | None
    pending_run_id: str | None
    pending_status: str | None
    data_version: int


@dataclass(frozen=True)
class LinkTarget:
    """The report a table link reads, and whether the link still works."""

    name: str
    expires_at: datetime | None
    revoked_at: datetime | None
    expired: bool


def create(
    conn: psycopg.Connection, workspace_id: int, name: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    """A new saved report; ConflictError when the name is taken."""
    params = {"workspace_id": workspace_id, "name": name, "body": Jsonb(body)}
    with translated():
        return _report(conn.execute(query("insert_saved_report"), params).fetchone())


def replace(
    conn: psycopg.Connection, workspace_id: int, name: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    params = {"workspace_id": workspace_id, "name": name, "body": Jsonb(body)}
    return _found(conn.execute(query("update_saved_report"), params).fetchone(), name)


def delete(conn: psycopg.Connection, workspace_id: int, name: str) -> None:
    """Delete the report and its links (its runs stay, with every other run)."""
    row = conn.execute(query("delete_saved_report"), _named(workspace_id, name)).fetchone()
    if row is None:
        raise NotFoundError(f"no saved report {name!r} in this workspace")


def get(conn: psycopg.Connection, workspace_id: int, name: str) -> dict[str, Any]:
    return _found(
        conn.execute(query("get_saved_report"), _named(workspace_id, name)).fetchone(), name
    )


def list_all(conn: psycopg.Connection, workspace_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(query("list_saved_reports"), {"workspace_id": workspace_id}).fetchall()
    return [_report(r) for r in rows]


def refresh_state(conn: psycopg.Connection, workspace_id: int, name: str) -> RefreshState:
    row = conn.execute(query("refresh_state"), _named(workspace_id, name)).fetchone()
    if row is None:
        raise NotFoundError(f"no saved report {name!r} in this workspace")
    return RefreshState(
        report_id=row[0],
        body=row[1],
        run_id=_text(row[2]),
        parameters_hash=row[3],
        run_version=row[4],
        pending_run_id=_text(row[5]),
        pending_status=row[6],
        data_version=int(row[7]),
    )


def claim(
    conn: psycopg.Connection, workspace_id: int, report_id: int, run_id: str, seen: str | None
) -> bool:
    """Record ``run_id`` as the report's refresh under way, if the one recorded is still
    ``seen``; whether it was."""
    params = {"workspace_id": workspace_id, "report_id": report_id, "run_id": run_id, "seen": seen}
    return conn.execute(query("claim_saved_report"), params).fetchone() is not None


def settle(conn: psycopg.Connection, workspace_id: int, report_id: int, run_id: str) -> None:
    """Make the claimed run, once succeeded, the report's answer."""
    params = {"workspace_id": workspace_id, "report_id": report_id, "run_id": run_id}
    conn.execute(query("settle_saved_report"), params)


def release(conn: psycopg.Connection, workspace_id: int, report_id: int, run_id: str) -> None:
    """Drop the claim of a refresh that failed."""
    params = {"workspace_id": workspace_id, "report_id": report_id, "run_id": run_id}
    conn.execute(query("release_saved_report"), params)


def create_link(
    conn: psycopg.Connection, workspace_id: int, report_id: int, expires_at: datetime | None
) -> dict[str, Any]:
    params = {"workspace_id": workspace_id, "report_id": report_id, "expires_at": expires_at}
    return _link(conn.execute(query("insert_table_link"), params).fetchone())


def list_links(conn: psycopg.Connection, workspace_id: int, report_id: int) -> list[dict[str, Any]]:
    params = {"workspace_id": workspace_id, "report_id": report_id}
    return [_link(r) for r in conn.execute(query("list_table_links"), params).fetchall()]


def revoke_link(
    conn: psycopg.Connection, workspace_id: int, report_id: int, link_id: str
) -> dict[str, Any]:
    params = {"workspace_id": workspace_id, "report_id": report_id, "link_id": link_id}
    row = conn.execute(query("revoke_table_link"), params).fetchone()
    if row is None:
        raise NotFoundError(f"no table link {link_id} for this saved report")
    return _link(row)


def find_link(
    conn: psycopg.Connection, workspace_id: int, report_id: int, link_id: str
) -> LinkTarget | None:
    """The link's report and state; None when the link (or its report) is gone."""
    params = {"workspace_id": workspace_id, "report_id": report_id, "link_id": link_id}
    row = conn.execute(query("find_table_link"), params).fetchone()
    return None if row is None else LinkTarget(row[0], row[1], row[2], bool(row[3]))


def _named(workspace_id: int, name: str) -> dict[str, Any]:
    return {"workspace_id": workspace_id, "name": name}


def _found(row: Sequence[Any] | None, name: str) -> dict[str, Any]:
    if row is None:
        raise NotFoundError(f"no saved report {name!r} in this workspace")
    return _report(row)


def _report(row: Sequence[Any] | None) -> dict[str, Any]:
    assert row is not None
    out = dict(zip(_REPORT_FIELDS, row, strict=True))
    out["run_id"] = _text(out["run_id"])
    return out


def _link(row: Sequence[Any] | None) -> dict[str, Any]:
    assert row is not None
    out = dict(zip(_LINK_FIELDS, row, strict=True))
    out["link_id"] = str(out["link_id"])
    return out


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------------- series
@dataclass(frozen=True)
class SeriesAnswer:
    """What a saved report's series read: its data version, range and currency."""

    data_version: int
    date_from: date
    date_to: date
    currency: str


def put_series(
    conn: psycopg.Connection,
    workspace_id: int,
    report_id: int,
    body: Mapping[str, Any],
    answer: SeriesAnswer,
    rows: Iterable[Sequence[Any]],
) -> str | None:
    """Replace the report's stored series with this answer and its ``rows`` (each in
    the order of ``copy_saved_report_series_rows``: day, model, dimension, channel,
    campaign, conversions, value, spend, cost_per_conversion, roas); its id, or None
    when the report no longer has ``body`` (replaced or deleted since)."""
    params = {
        "workspace_id": workspace_id,
        "report_id": report_id,
        "body": Jsonb(body),
        "data_version": answer.data_version,
        "date_from": answer.date_from,
        "date_to": answer.date_to,
        "currency": answer.currency,
    }
    found = conn.execute(query("put_saved_report_series"), params).fetchone()
    if found is None:
        return None
    key = {"workspace_id": workspace_id, "report_id": report_id}
    conn.execute(query("delete_saved_report_series_rows"), key)
    with conn.cursor().copy(query("copy_saved_report_series_rows")) as copy:
        for i, row in enumerate(rows):
            copy.write_row((workspace_id, report_id, i, *row))
    return str(found[0])
