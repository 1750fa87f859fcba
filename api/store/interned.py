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
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray

from .errors import StoreError
from .sqlfiles import query

Ints = NDArray[np.int64]
Codes = NDArray[np.int16]  # channel and stage codes are smallints: a quarter of int64


@dataclass(frozen=True)
class PathCodes:
    """The codes of some paths of one workspace, by path id (ids ascending)."""

    ids: Ints
    offsets: Ints  # path k's touches are [offsets[k], offsets[k + 1])
    channels: Codes
    stages: Codes

    @classmethod
    def empty(cls) -> PathCodes:
        none = np.zeros(0, dtype=np.int16)
        return cls(np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64), none, none)

    @property
    def max_id(self) -> int:
        return int(self.ids[-1]) if len(self.ids) else 0

    @property
    def n_tokens(self) -> int:
        return len(self.channels)

    def missing(self, ids: Ints) -> Ints:
        """Those of ``ids`` not held."""
        at = np.searchsorted(self.ids, ids)
        held = at < len(self.ids)
        held[held] = self.ids[at[held]] == ids[held]
        return ids[~held]

    def add(self, ids: Ints, lengths: Ints, channels: Codes, stages: Codes) -> PathCodes:
        """These codes and more (``ids`` ascending and new)."""
        if not len(ids):
            return self
        all_ids = np.concatenate([self.ids, ids])
        all_lengths = np.concatenate([np.diff(self.offsets), lengths])
        all_channels = np.concatenate([self.channels, channels])
        all_stages = np.concatenate([self.stages, stages])
        if len(self.ids) and ids[0] < self.ids[-1]:  # ids a late commit took
            order = np.argsort(all_ids, kind="stable")
            index, _ = _touch_index(_offsets(all_lengths), order)
            all_ids, all_lengths = all_ids[order], all_lengths[order]
            all_channels, all_stages = all_channels[index], all_stages[index]
        return PathCodes(all_ids, _offsets(all_lengths), all_channels, all_stages)

    def gather(self, ids: Ints) -> tuple[Codes, Codes, Ints]:
        """Channel codes, stage codes and offsets of the paths ``ids`` (all held), in
        that order."""
        index, offsets = _touch_index(self.offsets, np.searchsorted(self.ids, ids))
        return self.channels[index], self.stages[index], offsets


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


class _Cache:
    """Path codes per (database, workspace), the least recently read dropped first."""

    WORKSPACES = 16

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: OrderedDict[tuple[int, int], PathCodes] = OrderedDict()

    def get(self, key: tuple[int, int]) -> PathCodes:
        with self.lock:
            codes = self.codes.get(key)
            if codes is None:
                return PathCodes.empty()
            self.codes.move_to_end(key)
            return codes

    def put(self, key: tuple[int, int], codes: PathCodes) -> None:
        with self.lock:
            held = self.codes.get(key)
            if held is not None and held.n_tokens > codes.n_tokens:
                return  # another thread read more meanwhile
            self.codes[key] = codes
            self.codes.move_to_end(key)
            while len(self.codes) > self.WORKSPACES:
                self.codes.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.codes.clear()


_cache = _Cache()


def path_codes(conn: psycopg.Connection, workspace_id: int, ids: Ints) -> PathCodes:
    """Codes holding at least the paths ``ids``, read from the database only for the
    paths this process has not seen."""
    key = (database_oid(conn), workspace_id)
    codes = _cache.get(key)
    missing = codes.missing(ids)
    if not len(missing):
        return codes
    params = {
        "workspace_id": workspace_id,
        "after": codes.max_id,
        "ids": missing[missing <= codes.max_id].tolist(),
    }
    found = conn.execute(query("load_path_codes"), params).fetchone()
    assert found is not None
    new_ids = ints(found[0], ">i8")
    channels, stages = (ints(blob, ">i2").astype(np.int16) for blob in found[2:4])
    codes = codes.add(new_ids, ints(found[1], ">i4"), channels, stages)
    if len(codes.missing(ids)):
        raise StoreError("a path's codes are missing from the path dictionary")
    _cache.put(key, codes)
    return codes


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
    ``conversions``, ``nulls``, ``value``. All data with no client-aggregated paths
    reads the all-day totals as they are; anything else groups by path id."""
    params = {"workspace_id": workspace_id, "date_from": date_from, "date_to": date_to}
    conn.execute(query("raise_work_mem"))
    name = "load_path_sums"
    if date_from is None and date_to is None:
        row = conn.execute(query("has_aggregated_paths"), params).fetchone()
        if row is not None and not row[0]:
            name = "load_path_totals"
    found = conn.execute(query(name), params).fetchone()
    assert found is not None
    return {
        "path_ids": ints(found[0], ">i8"),
        "conversions": floats(found[1]),
        "nulls": floats(found[2]),
        "value": floats(found[3]),
    }


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
