"""Rollup totals of a journey write, and storing them for a workspace's first load.

A writer totals its journeys per day and path as it formats them: a mapping from
``"day\\tchannels\\tstages"`` (COPY text) to ``[conversions, nulls, value]``. Usually
these are added to the stored rollups in SQL, where each path's id is found or given
(``sql/queries/rollups.sql``). A workspace's first load, with no path stored yet, needs
no lookup: its paths take a block of ids and everything is written with COPY.
"""

from __future__ import annotations

from typing import Any

import numpy as np
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
    of ids from the sequence and are one COPY; the per-day rollups (in day order, the
    index's order) and the all-day totals are laid out by numpy in COPY's binary
    format, with no Python object per row."""
    keys = list(totals)
    paths: dict[str, int] = {}
    position = np.fromiter((paths.setdefault(k[DAY:], len(paths)) for k in keys), np.int64)
    row = conn.execute(query("reserve_path_ids"), {"n": len(paths)}, binary=True).fetchone()
    assert row is not None
    ids = ints(row[0], ">i8")
    prefix = f"{workspace_id}\t"
    _copy(
        conn,
        "copy_paths",
        [f"{prefix}{i}\t{p}\n" for p, i in zip(paths, ids.tolist(), strict=True)],
    )
    amounts = np.array(list(totals.values()), dtype=np.float64).reshape(-1, 3)
    conversions, nulls = amounts[:, 0].astype(np.int64), amounts[:, 1].astype(np.int64)
    value = np.where(conversions > 0, amounts[:, 2], 0.0)
    days = np.array([k[: DAY - 1] for k in keys], dtype="datetime64[D]")
    order = np.argsort(days, kind="stable")
    since_2000 = (days - np.datetime64("2000-01-01", "D")).astype(np.int64)
    rows = [
        (workspace_id, "i8"), (since_2000[order], "i4"), (ids[position][order], "i8"),
        (conversions[order], "i8"), (nulls[order], "i8"), (value[order], "f8"),
    ]  # fmt: skip
    _copy_binary(conn, "copy_path_rollups_binary", rows, len(keys))
    n_paths = len(paths)
    change = conn.execute(query("next_totals_change")).fetchone()
    assert change is not None
    path_conversions = np.bincount(position, conversions, n_paths).astype(np.int64)
    path_value = np.bincount(position, value, n_paths)
    columns = [
        (workspace_id, "i8"), (ids, "i8"), (path_conversions, "i8"),
        (np.bincount(position, nulls, n_paths).astype(np.int64), "i8"),
        (np.where(path_conversions > 0, path_value, 0.0), "f8"), (int(change[0]), "i8"),
    ]  # fmt: skip
    _copy_binary(conn, "copy_path_totals_binary", columns, n_paths)


_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_BINARY_TRAILER = b"\xff\xff"


def _copy_binary(
    conn: psycopg.Connection, name: str, columns: list[tuple[Any, str]], n_rows: int
) -> None:
    """COPY rows of fixed-width columns (a value for every row, or one array each) in
    the binary format: per row a field count, then each field's length and value."""
    layout = [("fields", ">i2")]
    for k, (_, kind) in enumerate(columns):
        layout += [(f"length{k}", ">i4"), (f"value{k}", ">" + kind)]
    rows = np.empty(n_rows, dtype=np.dtype(layout))
    rows["fields"] = len(columns)
    for k, (values, kind) in enumerate(columns):
        rows[f"length{k}"] = int(kind[1:])
        rows[f"value{k}"] = values
    with conn.cursor().copy(query(name)) as copy:
        copy.write(_BINARY_HEADER + rows.tobytes() + _BINARY_TRAILER)


def _copy(conn: psycopg.Connection, name: str, lines: list[str]) -> None:
    with conn.cursor().copy(query(name)) as copy:
        copy.write("".join(lines))
