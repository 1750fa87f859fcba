"""Reading the paths of a data selection when the rollups cannot answer it.

Segment filters and lookback windows need the raw journeys: the rollups keep neither
attributes nor touch times. The matching journeys are still grouped into unique paths
in the server, so Python receives flat arrays sized by unique paths, not journeys.
Queries live in ``sql/queries_runs.sql``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import cache
from typing import Any

import psycopg

from .paths import _arrays, filter_params
from .sqlfiles import SQL_DIR, parse_queries

RUN_QUERIES_FILE = SQL_DIR / "queries_runs.sql"


@cache
def _queries() -> dict[str, str]:
    return parse_queries(RUN_QUERIES_FILE.read_text(encoding="utf-8"))


def run_query(name: str) -> str:
    """The SQL of a named query in ``queries_runs.sql``."""
    return _queries()[name]


def load_selected_paths(
    conn: psycopg.Connection,
    workspace_id: int,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    attributes: Mapping[str, Any] | None = None,
    device: str | None = None,
    campaign: str | None = None,
    lookback_days: int | None = None,
) -> dict[str, Any]:
    """Unique path totals of the raw journeys matching the filters, in the layout of
    :func:`~api.store.paths.load_paths` (keyword arguments of ``PathSet.from_arrays``).

    ``lookback_days`` drops touches older than that many days before each journey's
    conversion (its last touch when it did not convert); journeys left without a
    touch are left out.
    """
    params = filter_params(
        workspace_id, date_from, date_to, attributes, device, campaign, lookback_days=lookback_days
    )
    row = conn.execute(run_query("load_selected_paths"), params).fetchone()
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
    row = conn.execute(run_query("count_aggregated_paths"), params).fetchone()
    return int(row[0]) if row else 0
