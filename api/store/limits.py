"""Limits kept in the database, so that every server process and machine shares them:
the rate limits' fixed-window counters, and the unfinished runs of a workspace.

Functions take ``conn`` first and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from .sqlfiles import query


@dataclass(frozen=True)
class Count:
    """One counter after a request was counted: hits in its window so far, and the
    whole seconds until that window ends."""

    subject: str
    hits: int
    reset_seconds: int


def count_requests(
    conn: psycopg.Connection,
    workspace_id: int,
    subjects: Sequence[str],
    budget: str,
    window_seconds: int,
) -> dict[str, Count]:
    """Count one request against each of ``subjects``' counters of ``budget`` (``reads``
    or ``writes``) in the current window; their counts by subject."""
    rows = conn.execute(
        query("count_requests"),
        {
            "workspace_id": workspace_id,
            "subjects": list(subjects),
            "budget": budget,
            "window": window_seconds,
        },
    ).fetchall()
    return {r[0]: Count(r[0], int(r[1]), max(0, int(r[2]))) for r in rows}


def lock_run_starts(conn: psycopg.Connection, workspace_id: int) -> None:
    """Until the transaction ends, no other run of the workspace starts."""
    conn.execute(query("lock_run_starts"), {"workspace_id": workspace_id})


def count_unfinished_runs(conn: psycopg.Connection, workspace_id: int) -> int:
    """The workspace's runs that are queued or running."""
    row = conn.execute(
        query("count_workspace_unfinished_runs"), {"workspace_id": workspace_id}
    ).fetchone()
    return int(row[0]) if row else 0
