"""Journey writes, reads and deletes, with the rollups moved in the same transaction.

Every write goes the same way, whatever its size: COPY the coded journeys into the
per-connection staging table ``journeys_in``, gather the stored rows they replace in
``journeys_old``, drop the unchanged ones, upsert, and move the rollups by
(+ incoming, - replaced). Deletes fill ``journeys_old`` only. The caller owns the
transaction; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

import psycopg
from psycopg.copy import Copy, QueuedLibpqWriter

from . import copytext as ct
from .dictionaries import Coder, list_channels, list_stages
from .errors import NotFoundError
from .sqlfiles import query


class JourneyRow(NamedTuple):
    """One validated journey with channel and stage codes (stage 0: no stage)."""

    journey_id: str
    customer_id: str | None
    channels: list[int]
    stages: list[int]
    touched_at: list[datetime]
    campaigns: list[str | None] | None
    devices: list[str | None] | None
    converted: bool
    value: float
    converted_at: datetime | None
    day: date
    attributes: str


@dataclass(frozen=True)
class WriteCounts:
    created: int
    replaced: int
    unchanged: int

    @property
    def received(self) -> int:
        return self.created + self.replaced + self.unchanged


class JourneyWrite:
    """One transaction's journey write: the caller codes records with :attr:`coder`,
    stages them with :meth:`copy` (any number of times) and merges with :meth:`finish`,
    or gives up with :meth:`abort`.

    One COPY stays open from the first :meth:`copy` to :meth:`finish`, fed by a writer
    thread, so the server parses rows while the caller decodes and formats the next ones.
    """

    def __init__(self, conn: psycopg.Connection, workspace_id: int) -> None:
        self.conn = conn
        self.workspace_id = workspace_id
        self.coder = Coder(conn, workspace_id)
        _prepare(conn)
        self.staged = 0
        self._copy_context: Any = None
        self._copy: Copy | None = None

    def copy(self, rows: Sequence[JourneyRow]) -> None:
        """Stage coded journeys (several calls append)."""
        if self._copy is None:
            cursor = self.conn.cursor()
            self._copy_context = cursor.copy(
                query("copy_journeys_in"), writer=QueuedLibpqWriter(cursor)
            )
            self._copy = self._copy_context.__enter__()
        start = self.staged
        self._copy.write("".join([_line(start + i, r) for i, r in enumerate(rows)]))
        self.staged += len(rows)

    def _end_copy(self, error: BaseException | None) -> None:
        context, self._copy_context, self._copy = self._copy_context, None, None
        if context is not None:
            if error is None:
                context.__exit__(None, None, None)
            else:
                context.__exit__(type(error), error, error.__traceback__)

    def abort(self, error: BaseException) -> None:
        """End an open COPY with an error, leaving the transaction to be rolled back."""
        self._end_copy(error)

    def finish(self) -> WriteCounts:
        """Record new channels, merge staged journeys and move the rollups."""
        self._end_copy(None)
        self.coder.save()
        return _merge(self.conn, self.workspace_id)


def _prepare(conn: psycopg.Connection) -> None:
    for name in ("create_journeys_in", "create_journeys_old"):
        conn.execute(query(name))
    for name in ("clear_journeys_in", "clear_journeys_old"):
        conn.execute(query(name))


def _line(n: int, r: JourneyRow) -> str:
    return (
        "\t".join(
            (
                str(n),
                ct.text(r.journey_id),
                ct.text(r.customer_id),
                ct.int_array(r.channels),
                ct.int_array(r.stages),
                ct.timestamp_array(r.touched_at),
                ct.text_array(r.campaigns),
                ct.text_array(r.devices),
                "t" if r.converted else "f",
                ct.number(r.value),
                ct.timestamp(r.converted_at),
                ct.day(r.day),
                ct.text(r.attributes),
            )
        )
        + "\n"
    )


def _merge(conn: psycopg.Connection, workspace_id: int) -> WriteCounts:
    params = {"workspace_id": workspace_id}
    conn.execute(query("snapshot_replaced_journeys"), params)
    unchanged = conn.execute(query("drop_unchanged_journeys"), params).rowcount
    replaced = conn.execute(query("count_journeys_old")).fetchone()
    n_replaced = int(replaced[0]) if replaced else 0
    upsert = "upsert_journeys" if n_replaced else "insert_journeys"
    written = conn.execute(query(upsert), params).rowcount
    _move_rollups(conn, workspace_id)
    return WriteCounts(written - n_replaced, n_replaced, unchanged)


def _move_rollups(conn: psycopg.Connection, workspace_id: int) -> None:
    params = {"workspace_id": workspace_id}
    conn.execute(query("move_rollups"), params)
    conn.execute(query("drop_empty_rollups"), params)


def delete_journey(conn: psycopg.Connection, workspace_id: int, journey_id: str) -> None:
    """Delete one journey and its share of the rollups."""
    conn.execute(query("lock_workspace_writes"), {"workspace_id": workspace_id})
    _prepare(conn)
    params = {"workspace_id": workspace_id, "journey_id": journey_id}
    if conn.execute(query("delete_journey"), params).rowcount == 0:
        raise NotFoundError(f"no journey {journey_id!r} in this workspace")
    _move_rollups(conn, workspace_id)


def delete_customer(conn: psycopg.Connection, workspace_id: int, customer_id: str) -> int:
    """Erase every journey of a customer and their share of the rollups; returns the count."""
    conn.execute(query("lock_workspace_writes"), {"workspace_id": workspace_id})
    _prepare(conn)
    params = {"workspace_id": workspace_id, "customer_id": customer_id}
    deleted = conn.execute(query("delete_customer_journeys"), params).rowcount
    if deleted:
        _move_rollups(conn, workspace_id)
    return deleted


def get_journey(conn: psycopg.Connection, workspace_id: int, journey_id: str) -> dict[str, Any]:
    """A stored journey in the API's shape, codes turned back into names."""
    params = {"workspace_id": workspace_id, "journey_id": journey_id}
    row = conn.execute(query("get_journey"), params).fetchone()
    if row is None:
        raise NotFoundError(f"no journey {journey_id!r} in this workspace")
    channels = {c.code: c.name for c in list_channels(conn, workspace_id)}
    stages = {s.code: s.name for s in list_stages(conn, workspace_id)}
    (jid, customer, ch, st, times, campaigns, devices, converted, value, conv_at, attrs) = row
    touches = [
        {
            "channel": channels[c],
            "stage": stages.get(s) if s else None,
            "timestamp": t,
            "campaign": campaigns[i] if campaigns else None,
            "device": devices[i] if devices else None,
        }
        for i, (c, s, t) in enumerate(zip(ch, st, times, strict=True))
    ]
    return {
        "journey_id": jid,
        "customer_id": customer,
        "touchpoints": touches,
        "converted": converted,
        "value": value,
        "converted_at": conv_at,
        "attributes": attrs,
    }
