"""BI access in the database: the versioned views over stored runs, and a read-only
role that sees one workspace only."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api import store
from api.store import runs
from api.store.spend import SpendRow, put_spend

ROW = {
    "model": "markov",
    "dimension": "channel",
    "channel": "search",
    "campaign": None,
    "stage": None,
    "conversions": 2.0,
    "value": 20.0,
    "share": 1.0,
    "removal_effect": 0.5,
    "ci_low": None,
    "ci_high": None,
}


def stored_run(
    conn: psycopg.Connection, workspace_id: int, day: date | None, *, filtered: bool = False
) -> str:
    new = runs.NewRun(
        parameters={"models": ["markov"]},
        parameters_hash="h",
        date_from=day,
        date_to=day,
        filtered=filtered,
        models_total=1,
    )
    run_id = runs.create_run(conn, workspace_id, new, "running")
    totals = {"journeys": 4.0, "conversions": 2.0, "value": 20.0, "conversion_rate": 0.5}
    runs.finish_run(conn, workspace_id, run_id, version=0, totals=totals, warnings={}, rows=[ROW])
    conn.commit()
    return run_id


@pytest.fixture
def two_workspaces(conn: psycopg.Connection, workspace: store.Workspace) -> tuple[int, int]:
    other = store.create_workspace(conn, "other")
    conn.commit()
    return workspace.workspace_id, other.workspace_id


@pytest.fixture
def bi_url(
    conn: psycopg.Connection, database_url: str, two_workspaces: tuple[int, int]
) -> Iterator[str]:
    """A login role for the first workspace, dropped afterwards (roles are server-wide)."""
    role = f"bi_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn.execute("SELECT create_bi_role(%s, %s, %s)", (two_workspaces[0], role, "secret"))
    conn.commit()
    params = conninfo_to_dict(database_url)
    params.update(user=role, password="secret")
    yield make_conninfo(**params)
    conn.execute("SELECT drop_bi_role(%s)", (role,))
    conn.commit()


def test_latest_view_keeps_the_newest_unfiltered_run_per_day(conn, two_workspaces) -> None:
    mine, _ = two_workspaces
    day = date(2024, 3, 1)
    stored_run(conn, mine, day)
    newest = stored_run(conn, mine, day)
    stored_run(conn, mine, day, filtered=True)
    whole = stored_run(conn, mine, None)
    rows = conn.execute(
        "SELECT run_id::text, day, model, channel, conversions FROM credit_latest_v1"
        " WHERE workspace_id = %s ORDER BY day NULLS LAST",
        (mine,),
    ).fetchall()
    assert rows == [(newest, day, "markov", "search", 2.0), (whole, None, "markov", "search", 2.0)]
    count = conn.execute("SELECT count(*) FROM credit_v1 WHERE workspace_id = %s", (mine,))
    assert count.fetchone() == (4,)


def test_the_bi_role_reads_its_workspace_only(conn, two_workspaces, bi_url) -> None:
    mine, theirs = two_workspaces
    own = stored_run(conn, mine, date(2024, 3, 1))
    stored_run(conn, theirs, date(2024, 3, 1))
    with psycopg.connect(bi_url) as bi:
        for view in ("runs_v1", "credit_v1", "credit_latest_v1"):
            found = bi.execute(f"SELECT DISTINCT workspace_id, run_id::text FROM {view}").fetchall()
            assert found == [(mine, own)], view
        assert bi.execute("SELECT count(*) FROM attribution_rows").fetchone() == (1,)


def test_the_bi_role_reads_its_workspace_spend_only(conn, two_workspaces, bi_url) -> None:
    mine, theirs = two_workspaces
    for workspace_id, amount in ((mine, "12.5"), (theirs, "99")):
        row = SpendRow(date(2024, 3, 1), "email", None, Decimal(amount), "EUR", Decimal("1.2"))
        put_spend(conn, workspace_id, "USD", [row])
    conn.commit()
    with psycopg.connect(bi_url) as bi:
        found = bi.execute(
            "SELECT workspace_id, day, channel, campaign, amount, currency, original_amount,"
            " original_currency FROM spend_v1"
        ).fetchall()
        assert found == [
            (mine, date(2024, 3, 1), "email", None, Decimal("15.00"), "USD", Decimal("12.5"),
             "EUR")
        ]  # fmt: skip
        with pytest.raises(psycopg.Error):
            bi.execute("DELETE FROM spend")


def test_the_bi_role_cannot_change_its_workspace(conn, two_workspaces, bi_url) -> None:
    stored_run(conn, two_workspaces[1], None)
    with psycopg.connect(bi_url) as bi:
        bi.execute(f"SET pathcredit.workspace_id = {two_workspaces[1]}")
        assert bi.execute("SELECT count(*) FROM credit_v1").fetchone() == (0,)


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM attribution_runs",
        "UPDATE attribution_rows SET value = 0",
        "INSERT INTO bi_roles (workspace_id, role_name) VALUES (1, 'x')",
        "SELECT * FROM journeys",
        "SELECT * FROM path_rollups",
        "SELECT * FROM api_keys",
        "CREATE TABLE mine (x int)",
    ],
)
def test_the_bi_role_cannot_write_or_read_raw_data(bi_url, statement) -> None:
    with psycopg.connect(bi_url) as bi, pytest.raises(psycopg.Error):
        bi.execute(statement)
