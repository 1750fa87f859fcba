"""Journey writes, reads and deletes, with the rollups moved in the same transaction.

Writes go in chunks. While none of a write's journeys exists yet (a first load), a
chunk is COPYed straight into ``journeys``; its rollups, totalled in Python while its
COPY text is formatted, are added across chunks and stored in one COPY at the end of a
workspace's first load, else upserted (see :class:`_Merger`). Otherwise the chunk is
COPYed into the per-connection staging table ``journeys_in``, the stored rows it
replaces are gathered in ``journeys_old``, unchanged journeys are dropped, the rest
upserted, and the rollups moved by (+ incoming, - replaced). Deletes fill
``journeys_old`` only. The caller owns the transaction; nothing here commits.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

import psycopg
from psycopg import errors as pg_errors

from . import copytext as ct
from . import events
from .dictionaries import Coder, list_channels, list_stages, lock_workspace
from .errors import NotFoundError
from .rollups import add_totals, copy_first_rollups, totals_lines
from .sqlfiles import query


class JourneyRow(NamedTuple):
    """One validated journey with channel and stage codes (stage 0: no stage)."""

    journey_id: str
    customer_id: str | None
    channels: list[int]
    stages: list[int]
    touched_at: list[str] | list[datetime]  # ISO 8601 strings as received, or datetimes
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

    Large writes are merged in chunks by a thread that owns the connection meanwhile,
    so the server COPYs and merges one chunk while the caller decodes and formats the
    next: on two cores, Python and PostgreSQL each keep one busy. Every chunk is part of
    the caller's one transaction; ids are unique across the whole write (the caller
    checks), so chunks never touch each other's journeys.
    """

    # Journeys per chunk: small while chunks go straight into the table (less for the
    # server to catch up on when the caller is done), larger once they are merged (a
    # merge runs several statements per chunk).
    CHUNK_ROWS = 10_000
    MERGE_CHUNK_ROWS = 25_000

    def __init__(self, conn: psycopg.Connection, workspace_id: int, direct: bool = True) -> None:
        """``direct=False``: merge every chunk, without first trying to COPY it straight
        into the table. A caller that reads on the connection between chunks while some
        of its journeys may exist needs it: a straight COPY that meets a stored journey
        fails, and until its savepoint is rolled back the transaction refuses every
        other statement."""
        self.conn = conn
        self.workspace_id = workspace_id
        self.direct = direct
        self.coder = Coder(conn, workspace_id)
        _prepare(conn)
        self.staged = 0
        self._pending: list[str] = []
        self._pending_ids: list[str] = []
        # The pending journeys' rollups: "day\tchannels\tstages" (COPY text) ->
        # [conversions, nulls, value].
        self._deltas: dict[str, list[Any]] = {}
        self._merger: _Merger | None = None

    @property
    def prefix(self) -> str:
        """What every COPY line of this write starts with (its workspace column)."""
        return f"{self.workspace_id}\t"

    def copy(self, rows: Sequence[JourneyRow]) -> None:
        """Stage coded journeys (several calls append)."""
        self._stage(_lines(rows, self.prefix, self._deltas), [r.journey_id for r in rows])

    def copy_text(self, text: str, journey_ids: list[str], rollups: dict[str, list[Any]]) -> None:
        """Stage journeys already formatted as COPY lines starting with :attr:`prefix`,
        with their rollup totals ("day\tchannels\tstages" -> [conversions, nulls,
        value])."""
        add_totals(self._deltas, rollups)
        self._stage(text, journey_ids)

    def _stage(self, text: str, journey_ids: list[str]) -> None:
        self._pending.append(text)
        self._pending_ids.extend(journey_ids)
        self.staged += len(journey_ids)
        merging = self._merger is not None and not self._merger.direct
        limit = self.MERGE_CHUNK_ROWS if merging else self.CHUNK_ROWS
        if len(self._pending_ids) >= limit:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._merger is None:
            self._merger = _Merger(self.conn, self.workspace_id, self.direct)
        self._merger.submit(_Chunk("".join(self._pending), self._pending_ids, self._deltas))
        self._pending, self._pending_ids, self._deltas = [], [], {}

    def abort(self, error: BaseException) -> None:
        """Stop merging; the caller rolls the transaction back."""
        if self._merger is not None:
            self._merger.close(cancel=True)

    def finish(self) -> WriteCounts:
        """Merge what is left, record new channels, and return the counts."""
        if self._pending_ids or self._merger is None:
            self._hand_over()
        assert self._merger is not None
        counts = self._merger.close()
        self.coder.save()
        return counts


class _Chunk(NamedTuple):
    text: str  # COPY rows
    journey_ids: list[str]
    rollups: dict[str, list[Any]]  # the chunk's totals per day and path


class _Merger:
    """Background thread: store a chunk, move its rollups, take the next.

    While no chunk has met a stored journey (a first load), chunks are COPYed straight
    into ``journeys`` inside a savepoint; the first unique violation rolls that COPY back
    and this and every later chunk goes through the staging table and the merge.

    The rollups of directly stored chunks are totalled here across chunks: a path recurs
    in many chunks, and upserting it once instead of once per chunk is most of the rollup
    cost. On a first load (the workspace has no rollups and no chunk met a stored
    journey) they are held and inserted into ``path_rollups`` at the end;
    otherwise they are upserted whenever the thread would otherwise wait for the next
    chunk, and the rest at the end.
    """

    HELD_TOTALS = 1_000_000  # rollup rows held for the end of a first load, at most
    JOINED_TOTALS = 50_000  # rollup rows from which path ids are joined, not looked up

    def __init__(self, conn: psycopg.Connection, workspace_id: int, direct: bool) -> None:
        self.conn = conn
        self.workspace_id = workspace_id
        self.queue: queue.Queue[_Chunk | None] = queue.Queue(maxsize=2)  # bounds memory
        self.counts = WriteCounts(0, 0, 0)
        self.error: BaseException | None = None
        self.cancelled = False
        self.direct = direct
        self.totals: dict[str, list[Any]] = {}
        params = {"workspace_id": workspace_id}
        row = conn.execute(query("workspace_has_rollups"), params).fetchone()
        self.had_rollups = bool(row and row[0])
        row = conn.execute(query("workspace_has_paths"), params).fetchone()
        self.had_paths = bool(row and row[0])
        self.thread = threading.Thread(target=self._run, name="journey-merge", daemon=True)
        _handoffs.enter()
        self.thread.start()

    def submit(self, chunk: _Chunk) -> None:
        if self.error is not None:
            self.close()  # raises the thread's error
        self.queue.put(chunk)

    def close(self, cancel: bool = False) -> WriteCounts:
        self.cancelled = self.cancelled or cancel
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
            _handoffs.leave()
        if self.cancelled:
            return self.counts
        if self.error is not None:
            raise self.error
        self._store_totals()
        return self.counts

    def _store_totals(self) -> None:
        if not self.totals:
            return
        if not (self.direct and not self.had_rollups):
            self._flush_totals()
        elif self.had_paths:  # its first journeys, but client paths stored before
            self._flush_totals("insert_rollups_in")
        else:
            copy_first_rollups(self.conn, self.workspace_id, self.totals)
            self.totals = {}

    def _flush_totals(self, add: str | None = None) -> None:
        """Add the totals so far to the rollups (through the staging table
        ``rollups_in``), their paths interned first: their ids are looked up path by
        path, or joined when there are many (a probe costs about seven rows of the
        join's hash of every path of the workspace)."""
        if add is None:
            add = (
                "add_many_rollups_in" if len(self.totals) > self.JOINED_TOTALS else "add_rollups_in"
            )
        text = "".join(totals_lines(self.totals))
        self.totals = {}
        self.had_rollups = True
        params = {"workspace_id": self.workspace_id}
        self.conn.execute(query("clear_rollups_in"))
        with self.conn.cursor().copy(query("copy_rollups_in")) as copy:
            copy.write(text)
        self.conn.execute(query("intern_rollups_in"), params)
        self.conn.execute(query(add), params)

    def _copy_at_end(self) -> bool:
        """Whether the totals are held for one COPY at the end: on a first load, where
        upserting them on the way would add rows that later chunks update again (a
        path recurs in many chunks), unless they grow past what is worth holding."""
        return self.direct and not self.had_rollups and len(self.totals) < self.HELD_TOTALS

    def _next(self) -> _Chunk | None:
        """The next chunk; while none is ready, the rollups so far are upserted (unless
        held for the end), so the server works on them while it would otherwise wait
        for the caller."""
        try:
            return self.queue.get_nowait()
        except queue.Empty:
            pass
        if self.totals and self.error is None and not self.cancelled and not self._copy_at_end():
            try:
                self._flush_totals()
            except BaseException as e:  # re-raised in the caller's thread
                self.error = e
        return self.queue.get()

    def _run(self) -> None:
        while (chunk := self._next()) is not None:
            if self.error is not None or self.cancelled:
                continue  # keep draining so the producer never blocks
            try:
                done = self._store_new(chunk) if self.direct else None
                self._add(done or self._merge_chunk(chunk))
            except BaseException as e:  # re-raised in the caller's thread
                self.error = e

    def _store_new(self, chunk: _Chunk) -> WriteCounts | None:
        """COPY straight into journeys; None when some journey already exists."""
        try:
            with self.conn.transaction(), self.conn.cursor().copy(query("copy_journeys")) as copy:
                copy.write(chunk.text)
        except pg_errors.UniqueViolation:
            self.direct = False
            return None
        add_totals(self.totals, chunk.rollups)
        if len(self.totals) >= self.HELD_TOTALS:
            self._flush_totals()  # bounds the memory of a very large first load
        return WriteCounts(len(chunk.journey_ids), 0, 0)

    def _merge_chunk(self, chunk: _Chunk) -> WriteCounts:
        for name in ("clear_journeys_in", "clear_journeys_old"):
            self.conn.execute(query(name))
        with self.conn.cursor().copy(query("copy_journeys_in")) as copy:
            copy.write(chunk.text)
        return _merge(self.conn, self.workspace_id)

    def _add(self, done: WriteCounts) -> None:
        c = self.counts
        self.counts = WriteCounts(
            c.created + done.created, c.replaced + done.replaced, c.unchanged + done.unchanged
        )


class _Handoffs:
    """Quick GIL hand-offs while some merge thread runs.

    The merge thread sends a chunk's COPY data a socket buffer at a time and needs the
    interpreter lock after every wait for the socket, while the caller's thread keeps
    it busy coding the next chunk: at Python's default switch interval (5 ms) the
    server sat idle for most of those waits. The interval is lowered while any merge
    runs and restored after the last one (1 ms: shorter ones cost more in switches
    than they gain in waits, in bench/ingest.py).
    """

    INTERVAL = 0.001  # seconds

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.saved = sys.getswitchinterval()

    def enter(self) -> None:
        with self.lock:
            if self.active == 0:
                self.saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self.saved, self.INTERVAL))
            self.active += 1

    def leave(self) -> None:
        with self.lock:
            self.active -= 1
            if self.active == 0:
                sys.setswitchinterval(self.saved)


_handoffs = _Handoffs()


def _prepare(conn: psycopg.Connection) -> None:
    for name in ("create_journeys_in", "create_journeys_old", "create_rollups_in"):
        conn.execute(query(name))
    for name in ("clear_journeys_in", "clear_journeys_old"):
        conn.execute(query(name))


def _lines(rows: Sequence[JourneyRow], prefix: str, deltas: dict[str, list[Any]]) -> str:
    """Journeys as COPY text, each line starting with ``prefix``, adding each journey to
    its path's totals in ``deltas`` on the way (the rollups of chunks stored straight
    into the table then cost one row per path instead of a key probe per journey).

    Runs once per journey of every bulk file: the copytext rules are inlined for the
    fields that need no escaping (codes, validated times, numbers, dates)."""
    plain, text, text_array, iso = ct.plain, ct.text, ct.text_array, ct.timestamp
    out = []
    for r in rows:
        channels = "{" + ",".join(map(str, r.channels)) + "}"
        stages = "{" + ",".join(map(str, r.stages)) + "}"
        day = r.day.isoformat()
        key = f"{day}\t{channels}\t{stages}"
        total = deltas.get(key)
        if total is None:
            total = deltas[key] = [0, 0, 0.0]
        total[0 if r.converted else 1] += 1
        total[2] += r.value
        out.append(
            f"{prefix}{plain(r.journey_id)}\t{plain(r.customer_id)}\t{channels}\t{stages}\t"
            f"{ct.timestamp_array(r.touched_at)}\t{text_array(r.campaigns)}\t"
            f"{text_array(r.devices)}\t{'t' if r.converted else 'f'}\t{float(r.value)!r}\t"
            f"{iso(r.converted_at)}\t{day}\t{text(r.attributes)}\n"
        )
    return "".join(out)


def _merge(conn: psycopg.Connection, workspace_id: int) -> WriteCounts:
    params = {"workspace_id": workspace_id}
    found = conn.execute(query("snapshot_replaced_journeys"), params).rowcount
    # New journeys only (an initial load): nothing can be unchanged or replaced.
    unchanged = conn.execute(query("drop_unchanged_journeys"), params).rowcount if found else 0
    n_replaced = found - unchanged
    upsert = "upsert_journeys" if n_replaced else "insert_journeys"
    written = conn.execute(query(upsert), params).rowcount
    _move_rollups(conn, workspace_id, removed=n_replaced)
    return WriteCounts(written - n_replaced, n_replaced, unchanged)


def _move_rollups(conn: psycopg.Connection, workspace_id: int, removed: int) -> None:
    params = {"workspace_id": workspace_id}
    if removed:
        conn.execute(query("analyze_journeys_old"))
    conn.execute(query("intern_journeys_in"), params)
    conn.execute(query("move_rollups"), params)
    if removed:
        conn.execute(query("drop_empty_rollups"), params)


def delete_journey(conn: psycopg.Connection, workspace_id: int, journey_id: str) -> None:
    """Delete one journey and its share of the rollups."""
    lock_workspace(conn, workspace_id)
    _prepare(conn)
    params = {"workspace_id": workspace_id, "journey_id": journey_id}
    if conn.execute(query("delete_journey"), params).rowcount == 0:
        raise NotFoundError(f"no journey {journey_id!r} in this workspace")
    _move_rollups(conn, workspace_id, removed=1)


def delete_journeys(conn: psycopg.Connection, workspace_id: int, journey_ids: list[str]) -> int:
    """Delete these journeys (those that exist) and their share of the rollups."""
    lock_workspace(conn, workspace_id)
    _prepare(conn)
    deleted = events.delete_journeys_by_id(conn, workspace_id, journey_ids)
    if deleted:
        _move_rollups(conn, workspace_id, removed=deleted)
    return deleted


def delete_customer(conn: psycopg.Connection, workspace_id: int, customer_id: str) -> int:
    """Erase every journey of a customer and their share of the rollups; returns the count.

    The customer's events and identity links go too, with the journeys built from them
    (those of every id linked to this one)."""
    lock_workspace(conn, workspace_id)
    _prepare(conn)
    linked = events.erase_person(conn, workspace_id, customer_id)
    derived = sorted(events.derived_journey_ids(conn, workspace_id, linked))
    deleted = events.delete_journeys_by_id(conn, workspace_id, derived) if derived else 0
    params = {"workspace_id": workspace_id, "customer_id": customer_id}
    deleted += conn.execute(query("delete_customer_journeys"), params).rowcount
    if deleted:
        _move_rollups(conn, workspace_id, removed=deleted)
    return deleted


def get_journey(conn: psycopg.Connection, workspace_id: int, journey_id: str) -> dict[str, Any]:
    """A stored journey in the API's shape, codes turned back into names."""
    params = {"workspace_id": workspace_id, "journey_id": journey_id}
    row = conn.execute(query("get_journey"), params).fetchone()
    if row is None:
        raise NotFoundError(f"no journey {journey_id!r} in this workspace")
    return journey_out(row, *names(conn, workspace_id))


def names(conn: psycopg.Connection, workspace_id: int) -> tuple[dict[int, str], dict[int, str]]:
    """Channel and stage names by code."""
    channels = {c.code: c.name for c in list_channels(conn, workspace_id)}
    stages = {s.code: s.name for s in list_stages(conn, workspace_id)}
    return channels, stages


def journey_out(
    row: Sequence[Any], channels: dict[int, str], stages: dict[int, str]
) -> dict[str, Any]:
    """A row of ``get_journey``'s columns in the API's shape."""
    jid, customer, ch, st, times, campaigns, devices = row[:7]
    converted, value, conv_at, attrs, day = row[7:12]
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
        "day": day,
    }
