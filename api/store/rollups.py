"""Rollup totals of a journey write, and storing them for a workspace's first load.

A writer totals its journeys per day and path as it formats them: a mapping from
``"day\\tchannels\\tstages"`` (COPY text) to ``[conversions, nulls, value]``. Usually
these are added to the stored rollups in SQL, where each path's id is found or given
(``sql/queries/rollups.sql``). A workspace's first load, with no path stored yet, needs
no lookup: its paths take a block of ids and everything is written with COPY.
"""

from __future__ import annotations

from typing import Any

import psycopg

from .interned import ints
from .sqlfiles import query

Totals = dict[str, list[Any]]
DAY = len("2024-03-01\t")  # a key's day and its tab


def add_totals(totals: Totals, more: Totals) -> None:
    """Add rollup totals ("day\\tchannels\\tstages" -> [conversions, nulls, value])."""
    for key, (c, n, v) in more.items():
        total = totals.get(key)
        if total is None:
            totals[key] = [c, n, v]
        else:
            total[0] += c
            total[1] += n
            total[2] += v


def totals_lines(totals: Totals, prefix: str = "") -> list[str]:
    """Rollup totals as COPY lines: ``prefix``, day, channels, stages, conversions,
    nulls, value (none on a path without conversions)."""
    return [f"{prefix}{k}\t{c}\t{n}\t{v if c else 0.0!r}\n" for k, (c, n, v) in totals.items()]


def copy_first_rollups(conn: psycopg.Connection, workspace_id: int, totals: Totals) -> None:
    """Store the rollups of a workspace that has no path yet (the caller holds its write
    lock, so no other write can give its paths ids meanwhile): the paths take a block
    of ids from the sequence, the paths and the per-day rollups (in day order, the
    index's order) are each one COPY, and the all-day totals are summed from them."""
    paths = {key[DAY:] for key in totals}
    row = conn.execute(query("reserve_path_ids"), {"n": len(paths)}).fetchone()
    assert row is not None
    ids = dict(zip(paths, map(str, ints(row[0], ">i8").tolist()), strict=True))
    prefix = f"{workspace_id}\t"
    _copy(conn, "copy_paths", [f"{prefix}{i}\t{path}\n" for path, i in ids.items()])
    rollups = [
        f"{prefix}{key[: DAY - 1]}\t{ids[key[DAY:]]}\t{c}\t{n}\t{v if c else 0.0!r}\n"
        for key, (c, n, v) in sorted(totals.items(), key=_day)
    ]
    _copy(conn, "copy_path_rollups", rollups)
    conn.execute(query("sum_first_path_totals"), {"workspace_id": workspace_id})


def _day(item: tuple[str, Any]) -> str:
    return item[0][: DAY - 1]


def _copy(conn: psycopg.Connection, name: str, lines: list[str]) -> None:
    with conn.cursor().copy(query(name)) as copy:
        copy.write("".join(lines))
