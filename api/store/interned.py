"""Reading the paths of a selection by path id, with each path's codes read once.

A path's channel and stage codes are stored once, in ``paths``, under an id, and never
change (``sql/migrations/0026_intern_paths.sql``). A process keeps the codes it has
read, per database and workspace, in :class:`PathCodes`; a read of totals then fetches
only the totals (one ``array_send`` blob per column) and the codes of paths it has not
seen, and gathers the engine's flat arrays with numpy. Ids come from one sequence, so
the codes not seen yet are those above the highest id held, plus the few ids that a
concurrent write took before committing after a later one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

import numpy as np
import psycopg
from numpy.typing import NDArray

from .errors import StoreError
from .sqlfiles import query

Ints = NDArray[np.int64]
T = TypeVar("T")
Codes = NDArray[np.int16]  # channel and stage codes are smallints: a quarter of int64


@dataclass(frozen=True)
class PathCodes:
    """The codes of some paths of one workspace, by path id (ids ascending)."""

    ids: Ints
    offsets: Ints  # path k's touches are [offsets[k], offsets[k + 1])
    channels: Codes
    stages: Codes | None  # None while every touch's stage code is 0 (no stage)

    @classmethod
    def empty(cls) -> PathCodes:
        none = np.zeros(0, dtype=np.int16)
        return cls(np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64), none, None)

    @property
    def max_id(self) -> int:
        return int(self.ids[-1]) if len(self.ids) else 0

    @property
    def n_tokens(self) -> int:
        return len(self.channels)

    def missing(self, ids: Ints) -> Ints:
        """Those of ``ids`` not held."""
        return _missing(self.ids, ids)

    def add(self, ids: Ints, lengths: Ints, channels: Codes, stages: Codes) -> PathCodes:
        """These codes and more (``ids`` ascending and new)."""
        if not len(ids):
            return self
        all_ids = np.concatenate([self.ids, ids])
        all_lengths = np.concatenate([np.diff(self.offsets), lengths])
        all_channels = np.concatenate([self.channels, channels])
        all_stages = None
        if self.stages is not None or np.any(stages):
            held = np.zeros(len(self.channels), np.int16) if self.stages is None else self.stages
            all_stages = np.concatenate([held, stages])
        if len(self.ids) and ids[0] < self.ids[-1]:  # ids a late commit took
            order = np.argsort(all_ids, kind="stable")
            index, _ = _touch_index(_offsets(all_lengths), order)
            all_ids, all_lengths = all_ids[order], all_lengths[order]
            all_channels = all_channels[index]
            all_stages = None if all_stages is None else all_stages[index]
        return PathCodes(all_ids, _offsets(all_lengths), all_channels, all_stages)

    def gather(self, ids: Ints) -> tuple[Codes, Codes | None, Ints]:
        """Channel codes, stage codes (None: no touch has a stage) and offsets of the
        paths ``ids`` (all held), in that order."""
        index, offsets = _touch_index(self.offsets, np.searchsorted(self.ids, ids))
        stages = None if self.stages is None else self.stages[index]
        return self.channels[index], stages, offsets


def _missing(held: Ints, ids: Ints) -> Ints:
    """Those of ``ids`` not in ``held`` (ascending)."""
    at = np.searchsorted(held, ids)
    found = at < len(held)
    found[found] = held[at[found]] == ids[found]
    return ids[~found]


def _union(a: Ints, b: Ints) -> Ints:
    """The ids in either (ascending, each once), by one sort."""
    both = np.concatenate([a, b])
    both.sort(kind="stable")
    keep = np.ones(len(both), dtype=bool)
    keep[1:] = both[1:] != both[:-1]
    return both[keep]


def _offsets(lengths: Ints) -> Ints:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def _touch_index(offsets: Ints, positions: Ints) -> tuple[Ints, Ints]:
    """The touch positions of the paths at ``positions`` one after the other, and their
    offsets."""
    starts = offsets[positions]
    lengths = offsets[positions + 1] - starts
    new_offsets = _offsets(lengths)
    index = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(new_offsets[-1])
    return index, new_offsets


class _PerWorkspace(Generic[T]):
    """One value per (database, workspace), the least recently read dropped first. A
    value replaces the held one only if ``newer(value, held)``: two threads that read
    the same workspace at once keep the one that saw more."""

    WORKSPACES = 16

    def __init__(self, newer: Callable[[T, T], bool]) -> None:
        self.newer = newer
        self.lock = threading.Lock()
        self.items: OrderedDict[tuple[int, int], T] = OrderedDict()

    def get(self, key: tuple[int, int]) -> T | None:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: tuple[int, int], value: T) -> None:
        with self.lock:
            held = self.items.get(key)
            if held is None or self.newer(value, held):
                self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.WORKSPACES:
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


_cache: _PerWorkspace[PathCodes] = _PerWorkspace(lambda new, held: new.n_tokens >= held.n_tokens)


CODES_PER_READ = 500_000
"""Paths whose codes one query reads (bounds the blobs a first read holds at once)."""


def path_codes(conn: psycopg.Connection, workspace_id: int, ids: Ints) -> PathCodes:
    """Codes holding at least the paths ``ids``, read from the database only for the
    paths this process has not seen."""
    key = (database_oid(conn), workspace_id)
    codes = _cache.get(key) or PathCodes.empty()
    missing = codes.missing(ids)
    if not len(missing):
        return codes
    late = missing[missing <= codes.max_id].tolist()
    after = codes.max_id
    while True:
        params = {"workspace_id": workspace_id, "after": after, "ids": late,
                  "limit": CODES_PER_READ}  # fmt: skip
        found = conn.execute(query("load_path_codes"), params, binary=True).fetchone()
        assert found is not None
        new_ids, lengths = ints(found[0], ">i8"), ints(found[1], ">i4")
        channels, stages = (array_elements(blob, lengths) for blob in found[2:4])
        if len(new_ids) > 1 and not np.all(new_ids[1:] > new_ids[:-1]):  # order checked
            order = np.argsort(new_ids, kind="stable")
            index, _ = _touch_index(_offsets(lengths), order)
            new_ids, lengths, channels, stages = (
                new_ids[order],
                lengths[order],
                channels[index],
                stages[index],
            )
        codes = codes.add(new_ids, lengths, channels, stages)
        if len(new_ids) < CODES_PER_READ:
            break
        after, late = int(new_ids[-1]), []
    if len(codes.missing(ids)):
        raise StoreError("a path's codes are missing from the path dictionary")
    _cache.put(key, codes)
    return codes


def array_elements(blob: bytes, lengths: Ints) -> Codes:
    """The smallint elements of concatenated one-dimensional ``array_send`` blobs of
    the given lengths (each blob: a 20-byte header, then per element its length and
    its two bytes)."""
    if not len(lengths):
        return np.zeros(0, dtype=np.int16)
    starts = _offsets(_HEADER + 6 * lengths)[:-1]
    touches = _offsets(lengths)
    within = np.arange(touches[-1], dtype=np.int64) - np.repeat(touches[:-1], lengths)
    at = np.repeat(starts, lengths) + _HEADER + 4 + 6 * within
    data = np.frombuffer(blob, dtype=np.uint8)
    high = data[at].astype(np.int16)
    return np.asarray((high << 8) | data[at + 1], dtype=np.int16)


def database_oid(conn: psycopg.Connection) -> int:
    """Which database ``conn`` reads (path ids and data versions are only unique within
    one): what a process's caches are keyed by, beside the workspace."""
    row = conn.execute(query("database_oid")).fetchone()
    assert row is not None
    return int(row[0])


def load_totals(
    conn: psycopg.Connection,
    workspace_id: int,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
) -> dict[str, Any]:
    """Per-path totals over a date range (path ids ascending): ``path_ids``,
    ``conversions``, ``nulls``, ``value``, paths with no journey left out. All data
    comes from the all-day totals this process holds, brought up to date by reading
    only the rows changed since (:func:`all_day_totals`); a date range groups the
    per-day rollups by path id."""
    if date_from is None and date_to is None:
        return all_day_totals(conn, workspace_id).selected()
    params = {"workspace_id": workspace_id, "date_from": date_from, "date_to": date_to}
    conn.execute(query("raise_work_mem"))
    found = conn.execute(query("load_path_sums"), params, binary=True).fetchone()
    assert found is not None
    return _columns(found)


def load_path_days(
    conn: psycopg.Connection, workspace_id: int, date_from: date, date_to: date
) -> dict[str, Any]:
    """Per day and path over a date range, in (path id, day) order: ``path_ids``,
    ``days`` (since 2000-01-01), ``conversions``, ``nulls`` and ``value``; with the
    totals :func:`load_totals` reads for the same range in the same snapshot, each
    path's rows add up to its totals."""
    params = {"workspace_id": workspace_id, "date_from": date_from, "date_to": date_to}
    conn.execute(query("raise_work_mem"))
    found = conn.execute(query("load_path_days"), params, binary=True).fetchone()
    assert found is not None
    return {
        "path_ids": ints(found[0], ">i8"),
        "conversions": floats(found[1]),
        "nulls": floats(found[2]),
        "value": floats(found[3]),
        "days": ints(found[4], ">i4"),
    }


def _columns(found: Any) -> dict[str, Any]:
    columns = {
        "path_ids": ints(found[0], ">i8"),
        "conversions": floats(found[1]),
        "nulls": floats(found[2]),
        "value": floats(found[3]),
    }
    ids = columns["path_ids"]
    if len(ids) > 1 and not np.all(ids[1:] > ids[:-1]):  # the query's order, checked
        order = np.argsort(ids, kind="stable")
        columns = {k: v[order] for k, v in columns.items()}
    return columns


@dataclass(frozen=True)
class AllDayTotals:
    """A workspace's all-day totals per path at data version ``version``, holding every
    row up to change number ``mark``: journeys' and client paths' apart (rows:
    conversions, nulls, value; None while a workspace has none of that kind, as most
    have no client paths), path ids ascending."""

    version: int
    mark: int
    path_ids: Ints
    journeys: NDArray[np.float64] | None
    clients: NDArray[np.float64] | None

    @classmethod
    def empty(cls) -> AllDayTotals:
        return cls(0, 0, np.zeros(0, dtype=np.int64), None, None)

    def updated(
        self, version: int, mark: int, journeys: dict[str, Any], clients: dict[str, Any]
    ) -> AllDayTotals:
        """These totals with the rows read since (absolute totals of changed paths)."""
        ids = self.path_ids
        new_ids = np.concatenate([journeys["path_ids"], clients["path_ids"]])
        if len(_missing(ids, new_ids)):
            ids = _union(ids, new_ids)
        tables: list[NDArray[np.float64] | None] = []
        for held, changed in ((self.journeys, journeys), (self.clients, clients)):
            table = held
            if held is None and len(changed["path_ids"]):
                table = np.zeros((3, len(ids)))
            elif held is not None and len(ids) != len(self.path_ids):
                table = np.zeros((3, len(ids)))
                table[:, np.searchsorted(ids, self.path_ids)] = held
            elif held is not None and len(changed["path_ids"]):
                table = held.copy()
            if table is not None:
                at = np.searchsorted(ids, changed["path_ids"])
                for row, key in enumerate(("conversions", "nulls", "value")):
                    table[row, at] = changed[key]
            tables.append(table)
        return AllDayTotals(version, max(self.mark, mark), ids, tables[0], tables[1])

    def selected(self) -> dict[str, Any]:
        """Totals of the paths with journeys, as :func:`load_totals` returns them."""
        held = [t for t in (self.journeys, self.clients) if t is not None]
        if not held:
            held = [np.zeros((3, len(self.path_ids)))]
        conversions, nulls, value = held[0] if len(held) == 1 else held[0] + held[1]
        keep = conversions + nulls > 0
        return {
            "path_ids": self.path_ids[keep],
            "conversions": conversions[keep],
            "nulls": nulls[keep],
            "value": np.where(conversions > 0, value, 0.0)[keep],
        }


_all_day: _PerWorkspace[AllDayTotals] = _PerWorkspace(lambda new, held: new.version >= held.version)


def all_day_totals(conn: psycopg.Connection, workspace_id: int) -> AllDayTotals:
    """The workspace's all-day totals as the connection's snapshot sees them.

    Every write that changes totals changes the workspace's data version. Held totals
    of this version are the answer, with no other read; older ones are brought up to
    date with the rows changed after their mark; the first read of a workspace (or a
    read by a snapshot older than the totals held) reads every row."""
    key = (database_oid(conn), workspace_id)
    params: dict[str, Any] = {"workspace_id": workspace_id}
    row = conn.execute(query("data_version"), params).fetchone()
    version = int(row[0]) if row is not None else 0
    held = _all_day.get(key)
    if held is not None and held.version == version:
        return held
    if held is None or held.version > version:
        held = AllDayTotals.empty()
    params["after"] = held.mark
    if not held.mark:
        conn.execute(query("raise_work_mem"))
    names = ["load_changed_path_totals"]
    names.append("load_changed_client_totals" if held.mark else "load_client_totals")
    parts, marks = [], []
    for name in names:
        found = conn.execute(query(name), params, binary=True).fetchone()
        assert found is not None
        parts.append(_columns(found))
        marks.append(int(found[4] or 0))
    totals = held.updated(version, max(marks), parts[0], parts[1])
    _all_day.put(key, totals)
    return totals


_HEADER = 20  # ndim, has-null flag, element type, length, lower bound (int32 each)


def ints(blob: bytes | None, dtype: str) -> Ints:
    """Element values of an ``array_send`` blob of int2, int4 or int8 (each prefixed by
    its length)."""
    if blob is None or len(blob) <= 12:  # an empty array has no dimension
        return np.zeros(0, dtype=np.int64)
    layout = np.dtype([("length", ">i4"), ("value", dtype)])
    return np.frombuffer(blob, dtype=layout, offset=_HEADER)["value"].astype(np.int64)


def floats(blob: bytes | None) -> NDArray[np.float64]:
    if blob is None or len(blob) <= 12:
        return np.zeros(0, dtype=np.float64)
    layout = np.dtype([("length", ">i4"), ("value", ">f8")])
    return np.frombuffer(blob, dtype=layout, offset=_HEADER)["value"].astype(np.float64)
