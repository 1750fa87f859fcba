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

import psycopg

from .filters import NO_FILTER, JourneyFilter
from .paths import _arrays
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
