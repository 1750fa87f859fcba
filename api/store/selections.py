"""Reading the paths of a data selection when the rollups cannot answer it.

Segment filters and lookback windows need the raw journeys: the rollups keep neither
attributes nor touch times. The matching journeys are still grouped into unique paths
in the server, so Python receives flat arrays sized by unique paths, not journeys.
Queries live in ``sql/queries/selections.sql``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import psycopg

from .errors import StoreError
from .filters import NO_FILTER, JourneyFilter
from .interned import floats, ints
from .paths import _arrays, _channel_lut
from .sqlfiles import query


def load_selected_paths(
    conn: psycopg.Connection,
    workspace_id: int,
    *,
    filter: JourneyFilter = NO_FILTER,
    lookback_days: int | None = None,
) -> dict[str, Any]:
    """Unique path totals of the raw journeys matching ``filter``, in the layout of
    :func:`~api.store.paths.load_paths` (keyword arguments of ``PathSet.from_arrays``).

    ``lookback_days`` drops touches older than that many days before each journey's
    conversion (its last touch when it did not convert); journeys left without a
    touch are left out.
    """
    params = filter.params(workspace_id, lookback_days=lookback_days)
    row = conn.execute(query("load_selected_paths"), params, binary=True).fetchone()
    assert row is not None
    return _arrays(conn, workspace_id, row, with_times=False)


def load_campaign_journeys(
    conn: psycopg.Connection,
    workspace_id: int,
    *,
    filter: JourneyFilter = NO_FILTER,
    lookback_days: int | None = None,
    with_times: bool = False,
) -> dict[str, Any]:
    """One path per raw journey matching ``filter``, with each touch's campaign.

    Returns keyword arguments of ``PathSet.from_arrays`` (no stages; ``times`` and
    ``conversion_times`` only ``with_times``) plus ``campaign_names`` (the selection's
    distinct campaigns, sorted) and ``campaign_tokens`` (aligned with ``tokens``: an
    index into ``campaign_names``, -1 for a touch without a campaign) and ``days`` (each
    journey's day, counted from 2000-01-01). ``lookback_days`` trims touches as
    :func:`load_selected_paths` does.
    """
    params = filter.params(workspace_id, lookback_days=lookback_days, with_times=with_times)
    conn.execute(query("raise_work_mem"))
    row = conn.execute(query("load_campaign_journeys"), params, binary=True).fetchone()
    assert row is not None
    n = int(row[0])
    channel_names, lut = _channel_lut(conn, workspace_id)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(ints(row[4], ">i4"), out=offsets[1:])
    names, hashes = list(row[9]), np.array(row[10], dtype=np.int64)
    out = {
        "channel_names": channel_names,
        "tokens": lut[ints(row[1], ">i2")],
        "offsets": offsets,
        "conversions": floats(row[5]),
        "nulls": floats(row[6]),
        "value": floats(row[7]),
        "campaign_names": names,
        "campaign_tokens": _campaign_codes(ints(row[2], ">i8"), hashes),
        "days": ints(row[11], ">i4"),
    }
    if with_times:
        out["times"], out["conversion_times"] = floats(row[3]), floats(row[8])
    return out


def _campaign_codes(touch_hashes: np.ndarray, name_hashes: np.ndarray) -> np.ndarray:
    """Each touch's campaign as an index of the names whose hashes are ``name_hashes``
    (-1 for hash 0, a touch without a campaign), by one ``searchsorted``."""
    order = np.argsort(name_hashes)
    ranked = name_hashes[order]
    if len(ranked) > 1 and np.any(ranked[1:] == ranked[:-1]):
        raise StoreError("two campaign names of this selection share a 64-bit hash")
    found = np.clip(np.searchsorted(ranked, touch_hashes), 0, max(len(ranked) - 1, 0))
    codes = np.full(len(touch_hashes), -1, dtype=np.int64)
    named = touch_hashes != 0
    if len(ranked):
        codes[named] = order[found[named]]
    return codes


def count_aggregated_paths(
    conn: psycopg.Connection,
    workspace_id: int,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
) -> int:
    """Client-aggregated paths that a rollup read of this date range includes."""
    params = {"workspace_id": workspace_id, "date_from": date_from, "date_to": date_to}
    row = conn.execute(query("count_aggregated_paths"), params).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class LookbackTrim:
    """What a lookback window leaves out of a selection's journeys."""

    journeys: int
    touches: int
    touches_out: int
    journeys_out: int


def count_lookback_trim(
    conn: psycopg.Connection,
    workspace_id: int,
    *,
    filter: JourneyFilter = NO_FILTER,
    lookback_days: int,
) -> LookbackTrim:
    """Touches and journeys of the selection that ``lookback_days`` leaves out."""
    params = filter.params(workspace_id, lookback_days=lookback_days)
    row = conn.execute(query("count_lookback_trim"), params).fetchone()
    assert row is not None
    return LookbackTrim(*(int(v) for v in row))


@dataclass(frozen=True)
class Extent:
    """A workspace's data: journeys, client-aggregated paths, first and last day."""

    journeys: int
    paths: int
    first_day: date | None
    last_day: date | None


def workspace_extent(conn: psycopg.Connection, workspace_id: int) -> Extent:
    row = conn.execute(query("workspace_extent"), {"workspace_id": workspace_id}).fetchone()
    assert row is not None
    return Extent(int(row[0]), int(row[1]), row[2], row[3])
