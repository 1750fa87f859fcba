"""Lookups keep their index on a workspace the planner has no statistics for.

After a bulk load (or a crash, which resets autovacuum's counters) the planner may
know nothing of a workspace's journeys. Then an index that merely leads with
``workspace_id`` looks as good as the primary key, and a lookup by journey id that
took it scanned the whole workspace per journey: re-sending journeys became
quadratic while holding the workspace's write lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from api import store
from api.store.sqlfiles import query
from tests.conftest import SESSION, with_database

JOURNEYS = 20_000


@contextmanager
def stale_statistics(
    admin_url: str, suffix: str, table: str, fill: Callable[[psycopg.Connection, int, bool], None]
) -> Iterator[tuple[psycopg.Connection, int]]:
    """A database whose ``table`` was analyzed while it held an old workspace's rows
    (``fill(conn, workspace_id, True)``), then received a new workspace's rows
    (``fill(conn, workspace_id, False)``), autovacuum off: the connection and the new
    workspace."""
    name = f"{SESSION}_{suffix}"
    store.ensure_database(admin_url, name)
    url = with_database(admin_url, name)
    try:
        store.migrate_url(url)
        with psycopg.connect(url) as conn:
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
            fill(conn, store.create_workspace(conn, "old").workspace_id, True)
            conn.commit()
            conn.execute(f"ANALYZE {table}")
            ws = store.create_workspace(conn, "bulk").workspace_id
            fill(conn, ws, False)
            conn.commit()
            yield conn, ws
    finally:
        store.drop_database(admin_url, name)


@pytest.fixture(scope="module")
def unanalyzed(admin_url: str) -> Iterator[tuple[psycopg.Connection, int]]:
    """20,000 journeys of two customers in a new workspace, the statistics of journeys
    gathered while it held another workspace's 20,000 of 5,000 customers."""

    def fill(conn: psycopg.Connection, workspace_id: int, old: bool) -> None:
        insert_journeys(conn, workspace_id, customers=5_000 if old else 2)

    with stale_statistics(admin_url, "planner", "journeys", fill) as found:
        yield found


def insert_journeys(conn: psycopg.Connection, workspace_id: int, customers: int) -> None:
    conn.execute(
        "INSERT INTO journeys (workspace_id, journey_id, customer_id, channels,"
        " stages, touched_at, converted, day)"
        " SELECT %s, 'j' || n, 'c' || n %% %s, '{1}', '{0}', array[now()], false,"
        " current_date FROM generate_series(1, %s) AS n",
        (workspace_id, customers, JOURNEYS),
    )


def plan_of(conn: psycopg.Connection, name: str, params: dict[str, Any]) -> dict[str, Any]:
    row = conn.execute(f"EXPLAIN (FORMAT JSON) {query(name)}", params).fetchone()
    assert row is not None
    return dict(row[0][0]["Plan"])


def index_names(plan: dict[str, Any]) -> set[str]:
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= index_names(child)
    return found


def test_the_planner_believes_the_new_workspace_is_small(
    unanalyzed: tuple[psycopg.Connection, int],
) -> None:
    conn, ws = unanalyzed
    row = conn.execute(
        "EXPLAIN (FORMAT JSON) SELECT * FROM journeys WHERE workspace_id = %s", (ws,)
    ).fetchone()
    assert row is not None
    assert row[0][0]["Plan"]["Plan Rows"] < JOURNEYS / 10
    conn.rollback()


def test_finding_re_sent_journeys_probes_the_primary_key(
    unanalyzed: tuple[psycopg.Connection, int],
) -> None:
    conn, ws = unanalyzed
    for name in ("create_journeys_in", "create_journeys_old"):
        conn.execute(query(name))
    conn.execute(
        "INSERT INTO journeys_in SELECT * FROM journeys WHERE workspace_id = %s"
        " AND journey_id IN ('j1', 'j2', 'j3')",
        (ws,),
    )
    assert index_names(plan_of(conn, "snapshot_replaced_journeys", {"workspace_id": ws})) == {
        "journeys_pkey"
    }
    conn.execute(query("snapshot_replaced_journeys"), {"workspace_id": ws})
    row = conn.execute("SELECT count(*) FROM journeys_old").fetchone()
    assert row == (3,)
    conn.rollback()


def test_erasing_a_customer_still_uses_the_customer_index(
    unanalyzed: tuple[psycopg.Connection, int],
) -> None:
    conn, ws = unanalyzed
    conn.execute(query("create_journeys_old"))
    conn.execute("SET enable_seqscan = off")  # the index must be usable at all
    plan = plan_of(conn, "delete_customer_journeys", {"workspace_id": ws, "customer_id": "c1"})
    assert "journeys_customer_idx" in index_names(plan)
    conn.rollback()


ROLLUPS = 20_000


def scans_of(plan: dict[str, Any], relation: str) -> list[dict[str, Any]]:
    scan = plan.get("Relation Name") == relation and plan["Node Type"] != "ModifyTable"
    found = [plan] if scan else []
    for child in plan.get("Plans", []):
        found += scans_of(child, relation)
    return found


def test_dropping_emptied_rollups_probes_each_lost_path(admin_url: str) -> None:
    """After a large load the planner believed the new workspace had few rollups and
    that empty ones were rarer still, so it scanned every rollup of the workspace for
    them and joined the lost paths after: 594 ms for one late event at 10^7 events.
    Each lost (day, path) must be probed through the primary key instead."""
    with stale_statistics(
        admin_url, "planner_rollups", "path_rollups", lambda c, w, _: insert_rollups(c, w)
    ) as (conn, ws):
        path = conn.execute(
            "INSERT INTO paths (workspace_id, channels, stages)"
            " VALUES (%s, '{7}', '{0}') RETURNING path_id",
            (ws,),
        ).fetchone()
        assert path is not None
        conn.execute(
            "INSERT INTO path_rollups (workspace_id, day, path_id, conversions, nulls, value)"
            " VALUES (%s, '2024-03-01', %s, 0, 0, 0)",
            (ws, path[0]),
        )
        conn.commit()
        conn.execute(query("create_journeys_old"))
        conn.execute(
            "INSERT INTO journeys_old (workspace_id, journey_id, channels, stages,"
            " touched_at, converted, value, day, attributes) VALUES (%s, 'gone', '{7}',"
            " '{0}', array[now()], false, 0, '2024-03-01', '{}')",
            (ws,),
        )
        conn.execute(query("analyze_journeys_old"))
        params = {"workspace_id": ws}
        scans = scans_of(plan_of(conn, "drop_empty_rollups", params), "path_rollups")
        assert scans
        for scan in scans:
            assert scan["Node Type"] == "Tid Scan" or "path_id" in scan.get("Index Cond", ""), scan
        conn.execute(query("drop_empty_rollups"), params)
        left = conn.execute(
            "SELECT count(*) FILTER (WHERE path_id = %s), count(*) FROM path_rollups"
            " WHERE workspace_id = %s",
            (path[0], ws),
        ).fetchone()
        assert left == (0, ROLLUPS)
        conn.rollback()


def insert_rollups(conn: psycopg.Connection, workspace_id: int) -> None:
    """Rollups of ROLLUPS paths over 60 days, every one holding a journey."""
    conn.execute(
        "INSERT INTO path_rollups (workspace_id, day, path_id, conversions, nulls, value)"
        " SELECT %s, date '2024-03-01' + n %% 60, 1000000 + n, n %% 2, 1 - n %% 2, 0"
        " FROM generate_series(1, %s) AS n",
        (workspace_id, ROLLUPS),
    )
