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
from .interned import floats, ints, load_totals, path_codes
from .journeys import WriteCounts
from .sqlfiles import query


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
    """Unique (channel path, stage path) totals over a date range, from the rollups
    (in path id order), never from raw journeys.

    Journeys count on their conversion date (last touch date when they did not
    convert); client-aggregated paths without a date count only when no range is given.
    """
    totals = load_totals(conn, workspace_id, date_from=date_from, date_to=date_to)
    return paths_of_totals(conn, workspace_id, totals)


def paths_of_totals(
    conn: psycopg.Connection, workspace_id: int, totals: dict[str, Any]
) -> dict[str, Any]:
    """The arrays of :func:`load_paths` for totals :func:`load_totals` read."""
    codes = path_codes(conn, workspace_id, totals["path_ids"])
    channels, stages, offsets = codes.gather(totals["path_ids"])
    return {
        **_names(conn, workspace_id, channels, stages),
        "offsets": offsets,
        "conversions": totals["conversions"],
        "nulls": totals["nulls"],
        "value": totals["value"],
    }


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
    row = conn.execute(query("load_journeys"), params, binary=True).fetchone()
    assert row is not None
    return _arrays(conn, workspace_id, row, with_times=True)


def _arrays(
    conn: psycopg.Connection, workspace_id: int, row: Sequence[Any], *, with_times: bool
) -> dict[str, Any]:
    n = int(row[0])
    rest = row[3:] if not with_times else row[4:]
    lengths = ints(rest[0], ">i4")
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out: dict[str, Any] = {
        **_names(conn, workspace_id, ints(row[1], ">i2"), ints(row[2], ">i2")),
        "offsets": offsets,
        "conversions": floats(rest[1]),
        "nulls": floats(rest[2]),
        "value": floats(rest[3]),
    }
    if with_times:
        out["times"] = floats(row[3])
        out["conversion_times"] = floats(rest[4])
        out["path_ids"] = rest[5].split("\n") if n else []
    return out


def _names(
    conn: psycopg.Connection,
    workspace_id: int,
    channels: NDArray[Any],
    stages: NDArray[Any] | None,
) -> dict[str, Any]:
    """Channel and stage codes as positions in the workspace's dictionaries."""
    channel_names, channel_lut = _channel_lut(conn, workspace_id)
    return {
        "channel_names": channel_names,
        "tokens": channel_lut[channels].astype(np.int32),
        **_stage_arrays(conn, workspace_id, stages),
    }


def dictionary_names(conn: psycopg.Connection, workspace_id: int) -> tuple[Any, ...]:
    """The workspace's channel and stage codes and names, as a comparable value: path
    sets read on two data versions with the same paths and the same names differ
    only in their totals."""
    channels = tuple((c.code, c.name) for c in list_channels(conn, workspace_id))
    return channels, tuple((s.code, s.name) for s in list_stages(conn, workspace_id))


def _channel_lut(conn: psycopg.Connection, workspace_id: int) -> tuple[list[str], NDArray[Any]]:
    channels = list_channels(conn, workspace_id)
    lut = np.full(max((c.code for c in channels), default=0) + 1, -1, dtype=np.int64)
    for i, c in enumerate(channels):
        lut[c.code] = i
    return [c.name for c in channels], lut


def _stage_arrays(
    conn: psycopg.Connection, workspace_id: int, codes: NDArray[Any] | None
) -> dict[str, Any]:
    """Stage codes -> positions in funnel order; None when no touch has a stage."""
    if codes is None or not np.any(codes):
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
    conn.execute(query("intern_paths_in"), params)
    counts = conn.execute(query("count_path_changes"), params).fetchone()
    assert counts is not None
    conn.execute(query("upsert_aggregated_paths"), params)
    return WriteCounts(int(counts[0]), int(counts[1]), int(counts[2]))
