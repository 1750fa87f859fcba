"""Aggregated paths: reading them for the engine, and storing client-aggregated ones.

Reads return flat numpy arrays in the layout of ``attribution.paths.PathSet``:
``tokens[offsets[i]:offsets[i + 1]]`` are path ``i``'s channel codes, indexing
``channel_names``; ``stage_tokens`` is aligned with ``tokens`` and indexes
``stage_names`` (funnel order), -1 meaning "no stage". The database returns each array
as one ``array_send`` blob that numpy reads without a Python object per element.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, NamedTuple

import numpy as np
import psycopg
from numpy.typing import NDArray

from . import copytext as ct
from .dictionaries import list_channels, list_stages
from .filters import NO_FILTER, JourneyFilter
from .journeys import WriteCounts
from .sqlfiles import query

_HEADER = 20  # ndim, has-null flag, element type, length, lower bound (int32 each)


class PathRow(NamedTuple):
    """One client-aggregated path with channel and stage codes (stage 0: no stage)."""

    day: date | None
    channels: list[int]
    stages: list[int]
    conversions: float
    nulls: float
    value: float


def load_paths(
    conn: psycopg.Connection,
    workspace_id: int,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
) -> dict[str, Any]:
    """Unique (channel path, stage path) totals over a date range, from the rollups.

    Journeys count on their conversion date (last touch date when they did not
    convert); client-aggregated paths without a date count only when no range is given.
    """
    params = {"workspace_id": workspace_id, "date_from": date_from, "date_to": date_to}
    conn.execute(query("raise_work_mem"))
    row = conn.execute(query("load_paths"), params).fetchone()
    assert row is not None
    return _arrays(conn, workspace_id, row, with_times=False)


def load_journeys(
    conn: psycopg.Connection,
    workspace_id: int,
    *,
    filter: JourneyFilter = NO_FILTER,
    customer_id: str | None = None,
) -> dict[str, Any]:
    """One path per journey, with per-touch ``times`` and ``conversion_times`` (seconds
    since the epoch; NaN where the journey did not convert) and ``path_ids`` (journey
    ids), of the journeys matching ``filter`` (and ``customer_id`` when given)."""
    params = filter.params(workspace_id, customer_id=customer_id)
    conn.execute(query("raise_work_mem"))
    row = conn.execute(query("load_journeys"), params).fetchone()
    assert row is not None
    return _arrays(conn, workspace_id, row, with_times=True)


def _arrays(
    conn: psycopg.Connection, workspace_id: int, row: Sequence[Any], *, with_times: bool
) -> dict[str, Any]:
    n = int(row[0])
    tokens = _ints(row[1], ">i2")
    stage_codes = _ints(row[2], ">i2")
    rest = row[3:] if not with_times else row[4:]
    lengths = _ints(rest[0], ">i4")
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    channel_names, channel_lut = _channel_lut(conn, workspace_id)
    out: dict[str, Any] = {
        "channel_names": channel_names,
        "tokens": channel_lut[tokens].astype(np.int32),
        "offsets": offsets,
        "conversions": _floats(rest[1]),
        "nulls": _floats(rest[2]),
        "value": _floats(rest[3]),
    }
    out.update(_stage_arrays(conn, workspace_id, stage_codes))
    if with_times:
        out["times"] = _floats(row[3])
        out["conversion_times"] = _floats(rest[4])
        out["path_ids"] = rest[5].split("\n") if n else []
    return out


def _ints(blob: bytes | None, dtype: str) -> NDArray[np.int64]:
    """Element values of an ``array_send`` blob of int2 or int4 (each prefixed by its length)."""
    if blob is None:
        return np.zeros(0, dtype=np.int64)
    layout = np.dtype([("length", ">i4"), ("value", dtype)])
    return np.frombuffer(blob, dtype=layout, offset=_HEADER)["value"].astype(np.int64)


def _floats(blob: bytes | None) -> NDArray[np.float64]:
    if blob is None:
        return np.zeros(0, dtype=np.float64)
    layout = np.dtype([("length", ">i4"), ("value", ">f8")])
    return np.frombuffer(blob, dtype=layout, offset=_HEADER)["value"].astype(np.float64)


def _channel_lut(conn: psycopg.Connection, workspace_id: int) -> tuple[list[str], NDArray[Any]]:
    channels = list_channels(conn, workspace_id)
    lut = np.full(max((c.code for c in channels), default=0) + 1, -1, dtype=np.int64)
    for i, c in enumerate(channels):
        lut[c.code] = i
    return [c.name for c in channels], lut


def _stage_arrays(
    conn: psycopg.Connection, workspace_id: int, codes: NDArray[np.int64]
) -> dict[str, Any]:
    """Stage codes -> positions in funnel order; None when no touch has a stage."""
    if not np.any(codes):
        return {"stage_names": None, "stage_tokens": None}
    stages = list_stages(conn, workspace_id)
    lut = np.full(max(s.code for s in stages) + 1, -1, dtype=np.int64)
    for i, s in enumerate(stages):
        lut[s.code] = i
    return {"stage_names": [s.name for s in stages], "stage_tokens": lut[codes].astype(np.int32)}


def write_paths(
    conn: psycopg.Connection, workspace_id: int, rows: Sequence[PathRow]
) -> WriteCounts:
    """Set the totals of client-aggregated paths, keyed by (date, channels, stages)."""
    for name in ("create_paths_in", "clear_paths_in"):
        conn.execute(query(name))
    lines = [
        "\t".join(
            (
                str(i),
                ct.day(r.day),
                ct.int_array(r.channels),
                ct.int_array(r.stages),
                ct.number(r.conversions),
                ct.number(r.nulls),
                ct.number(r.value),
            )
        )
        + "\n"
        for i, r in enumerate(rows)
    ]
    with conn.cursor().copy(query("copy_paths_in")) as copy:
        copy.write("".join(lines))
    params = {"workspace_id": workspace_id}
    counts = conn.execute(query("count_path_changes"), params).fetchone()
    assert counts is not None
    conn.execute(query("upsert_aggregated_paths"), params)
    return WriteCounts(int(counts[0]), int(counts[1]), int(counts[2]))
