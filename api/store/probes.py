"""Probes for operators: the readiness check's database, and what the metrics endpoint
reads from the database and the pool at scrape time."""

from __future__ import annotations

import os

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .database import Database
from .sqlfiles import query

PROBE_WAIT_SECONDS = 0.8
PROBE_STATEMENT_MS = 500


def probe_database(url: str) -> Database:
    """A pool of one connection for probes that must answer within a second.

    A probe waits at most 0.8 s for the connection (the pool connects in the background,
    so a database that is down or unreachable costs the probe no more than that), and
    each statement may run 0.5 s. Apart from the request threads' pool, so that a probe
    does not queue behind busy requests.
    """
    params = conninfo_to_dict(url)
    options = params.get("options") or ""
    params["options"] = f"{options} -c statement_timeout={PROBE_STATEMENT_MS}".strip()
    params.setdefault("connect_timeout", 2)  # libpq's least
    return Database(make_conninfo("", **params), max_size=1, timeout=PROBE_WAIT_SECONDS)


def unfinished_runs(conn: psycopg.Connection) -> dict[str, int]:
    """Queued and running attribution runs of every workspace, by status."""
    found: dict[str, int] = dict(conn.execute(query("count_unfinished_runs")).fetchall())
    return {status: found.get(status, 0) for status in ("queued", "running")}


def runs_by_state(conn: psycopg.Connection) -> dict[str, tuple[int, int, float]]:
    """Every workspace's runs by status: (runs, runs timed, their seconds)."""
    rows = conn.execute(query("count_runs_by_state")).fetchall()
    return {status: (int(n), int(timed), float(seconds)) for status, n, timed, seconds in rows}


def jobs_by_status(conn: psycopg.Connection) -> dict[str, int] | None:
    """Jobs of the queue (procrastinate's table) by status; None when there is no queue."""
    row = conn.execute(query("job_table_exists")).fetchone()
    if not row or not row[0]:
        return None
    return dict(conn.execute(query("count_jobs_by_status")).fetchall())


def pool_stats(db: Database) -> dict[str, int]:
    """psycopg_pool's measures and counters of this process's pool; empty until it opens.

    Reading them never opens the pool (a scrape must not connect a worker that has
    served nothing yet).
    """
    pool = db._pool
    if pool is None or db._pid != os.getpid():
        return {}
    return pool.get_stats()
