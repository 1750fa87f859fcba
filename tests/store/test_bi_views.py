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
from psycopg.types.json import Jsonb

from api import store
from api.store import runs
from api.store.saved_reports import SeriesAnswer, put_series
from api.store.spend import SpendRow, put_spend
from tests.http.test_attribution import SMALL, ingest, small_journey

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


def saved_report(conn: psycopg.Connection, workspace_id: int, name: str, run_id: str) -> None:
    """A saved report answered by ``run_id``."""
    conn.execute(
        "INSERT INTO saved_reports (workspace_id, name, body, run_id) VALUES (%s, %s, '{}', %s)",
        (workspace_id, name, run_id),
    )
    conn.commit()


def test_latest_view_shows_each_saved_reports_answer(conn, two_workspaces) -> None:
    mine, _ = two_workspaces
    day = date(2024, 3, 1)
    daily = stored_run(conn, mine, day)
    stored_run(conn, mine, day)  # newer, but no report's answer
    whole = stored_run(conn, mine, None, filtered=True)
    saved_report(conn, mine, "daily", daily)
    saved_report(conn, mine, "whole", whole)
    rows = conn.execute(
        "SELECT saved_report, run_id::text, day, model, channel, conversions FROM credit_latest_v1"
        " WHERE workspace_id = %s ORDER BY saved_report",
        (mine,),
    ).fetchall()
    assert rows == [
        ("daily", daily, day, "markov", "search", 2.0),
        ("whole", whole, None, "markov", "search", 2.0),
    ]
    count = conn.execute("SELECT count(*) FROM credit_v1 WHERE workspace_id = %s", (mine,))
    assert count.fetchone() == (3,)
    listed = conn.execute(
        "SELECT saved_report, run_id::text, date_from, models FROM saved_reports_v1"
        " WHERE workspace_id = %s ORDER BY saved_report",
        (mine,),
    ).fetchall()
    assert listed == [("daily", daily, day, ["markov"]), ("whole", whole, None, ["markov"])]


def test_the_bi_role_reads_its_workspace_only(conn, two_workspaces, bi_url) -> None:
    mine, theirs = two_workspaces
    own = stored_run(conn, mine, date(2024, 3, 1))
    saved_report(conn, mine, "mine", own)
    saved_report(conn, theirs, "theirs", stored_run(conn, theirs, date(2024, 3, 1)))
    with psycopg.connect(bi_url) as bi:
        for view in ("runs_v1", "credit_v1", "credit_latest_v1", "saved_reports_v1"):
            found = bi.execute(f"SELECT DISTINCT workspace_id, run_id::text FROM {view}").fetchall()
            assert found == [(mine, own)], view
        assert bi.execute("SELECT count(*) FROM attribution_rows").fetchone() == (1,)
        assert bi.execute("SELECT name FROM saved_reports").fetchall() == [("mine",)]


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
        "SELECT * FROM table_links",
        "UPDATE saved_reports SET run_id = NULL",
        "CREATE TABLE mine (x int)",
    ],
)
def test_the_bi_role_cannot_write_or_read_raw_data(bi_url, statement) -> None:
    with psycopg.connect(bi_url) as bi, pytest.raises(psycopg.Error):
        bi.execute(statement)


def latest(bi_url: str) -> list[tuple[object, ...]]:
    """credit_latest_v1 as the BI role reads it."""
    with psycopg.connect(bi_url) as bi:
        return bi.execute(
            "SELECT saved_report, run_id::text, model, channel, conversions, value"
            " FROM credit_latest_v1 ORDER BY saved_report, model, dimension, channel"
        ).fetchall()


def test_ad_hoc_runs_leave_the_latest_view_alone(client, auth, bi_url) -> None:
    ingest(client, auth, [small_journey(*j) for j in SMALL])
    report = {"name": "weekly", "models": ["last_touch", "markov"]}
    assert client.post("/v1/saved-reports", json=report, headers=auth).status_code == 201
    assert latest(bi_url) == []
    answer = client.get("/v1/saved-reports/weekly/table", headers=auth)
    before = latest(bi_url)
    assert {r[1] for r in before} == {answer.headers["Pathcredit-Run"]}
    # last touch over SMALL: j1 and j5 end on email, j2 on search
    assert {r[3]: r[4] for r in before if r[2] == "last_touch"} == {
        "email": 2.0,
        "search": 1.0,
        "social": 0.0,
    }
    assert {r[2] for r in before} == {"last_touch", "markov"}

    ad_hoc = [
        {"models": ["last_touch", "markov"]},
        {"models": ["markov"], "date_from": "2030-01-01", "date_to": "2030-01-31"},
        {"models": ["last_touch"], "channel_groups": {"email": "owned", "social": "owned"}},
    ]
    for body in ad_hoc:
        response = client.post("/v1/attribution", json=body, headers=auth)
        assert response.status_code == 200, response.get_json()
    assert client.get("/v1/attribution/table?models=linear", headers=auth).status_code == 200
    assert latest(bi_url) == before

    ingest(client, auth, [small_journey("j6", ["social"], True, 10.0)])
    assert latest(bi_url) == before  # new data moves nothing until the report refreshes
    again = client.get("/v1/saved-reports/weekly/table", headers=auth)
    after = latest(bi_url)
    assert {r[1] for r in after} == {again.headers["Pathcredit-Run"]} != {r[1] for r in before}
    assert {r[3]: r[4] for r in after if r[2] == "last_touch"}["social"] == 1.0


def latest_series(bi_url: str) -> list[tuple[object, ...]]:
    """series_latest_v1 as the BI role reads it."""
    with psycopg.connect(bi_url) as bi:
        return bi.execute(
            "SELECT saved_report, series_id::text, date_from, date_to, day, model, dimension,"
            " channel, campaign, conversions, value, spend, cost_per_conversion, roas, currency"
            " FROM series_latest_v1 ORDER BY saved_report, day, model, dimension, channel"
        ).fetchall()


def test_saved_series_fill_the_series_view_and_ad_hoc_ones_do_not(
    client, auth, conn, bi_url
) -> None:
    """SMALL's journeys all convert on 2024-03-01: last touch credits email 2 (value
    100 + 30) and search 1 (50); 13 spent on email that day costs 6.5 a conversion
    and returns 10 a unit."""
    ingest(client, auth, [small_journey(*j) for j in SMALL])
    spend = [{"date": "2024-03-01", "channel": "email", "amount": 13}]
    assert client.put("/v1/spend", json={"spend": spend}, headers=auth).status_code == 200
    report = {"name": "daily", "models": ["last_touch"], "date_from": "2024-03-01",
              "date_to": "2024-03-02"}  # fmt: skip
    assert client.post("/v1/saved-reports", json=report, headers=auth).status_code == 201
    assert latest_series(bi_url) == []
    answer = client.get("/v1/saved-reports/daily/series", headers=auth)
    assert answer.status_code == 200, answer.get_json()
    before = latest_series(bi_url)
    assert len({r[1] for r in before}) == 1
    march = (date(2024, 3, 1), date(2024, 3, 2))
    day1 = [r[:1] + r[2:] for r in before if r[4] == march[0]]
    assert day1 == [
        ("daily", *march, march[0], "last_touch", "channel", "email", None, 2.0, 130.0,
         13.0, 6.5, 10.0, "USD"),
        ("daily", *march, march[0], "last_touch", "channel", "search", None, 1.0, 50.0,
         None, None, None, "USD"),
        ("daily", *march, march[0], "last_touch", "channel", "social", None, 0.0, 0.0,
         None, None, None, "USD"),
    ]  # fmt: skip
    assert len(before) == len(answer.get_json()) == 6  # two days x three channels

    ad_hoc = {"models": "last_touch", "date_from": "2024-03-01", "date_to": "2024-03-01"}
    for query in (
        ad_hoc,
        {**ad_hoc, "models": "linear"},
        {**ad_hoc, "date_from": "2030-01-01", "date_to": "2030-01-02"},
    ):
        response = client.get("/v1/attribution/series", query_string=query, headers=auth)
        assert response.status_code == 200, response.get_json()
    assert client.get("/v1/saved-reports/daily/table", headers=auth).status_code == 200
    assert latest_series(bi_url) == before

    replaced = {"models": ["first_touch"], "date_from": "2024-03-01", "date_to": "2024-03-01"}
    assert client.put("/v1/saved-reports/daily", json=replaced, headers=auth).status_code == 200
    assert latest_series(bi_url) == before  # until the report's series is asked for
    again = client.get("/v1/saved-reports/daily/series", headers=auth)
    assert again.status_code == 200, again.get_json()
    after = latest_series(bi_url)
    assert {r[1] for r in after}.isdisjoint({r[1] for r in before})
    assert {(r[3], r[5]) for r in after} == {(march[0], "first_touch")}
    assert len(after) == 3  # the last answer's rows only
    assert client.delete("/v1/saved-reports/daily", headers=auth).status_code == 204
    assert latest_series(bi_url) == []


def test_the_bi_role_reads_its_workspace_series_only(client, auth, new_key, bi_url) -> None:
    _, theirs = new_key()
    report = {"name": "daily", "models": ["last_touch"], "date_from": "2024-03-01",
              "date_to": "2024-03-01"}  # fmt: skip
    for headers in (auth, theirs):
        ingest(client, headers, [small_journey(*j) for j in SMALL])
        assert client.post("/v1/saved-reports", json=report, headers=headers).status_code == 201
    assert client.get("/v1/saved-reports/daily/series", headers=theirs).status_code == 200
    assert latest_series(bi_url) == []
    assert client.get("/v1/saved-reports/daily/series", headers=auth).status_code == 200
    assert len(latest_series(bi_url)) == 3
    with psycopg.connect(bi_url) as bi:
        for table in ("saved_report_series", "saved_report_series_rows"):
            mine = bi.execute(f"SELECT DISTINCT workspace_id FROM {table}").fetchall()
            assert len(mine) == 1, table
        with pytest.raises(psycopg.Error):
            bi.execute("DELETE FROM saved_report_series_rows")


def test_a_series_answer_for_replaced_parameters_is_not_stored(conn, two_workspaces) -> None:
    mine, _ = two_workspaces
    row = conn.execute(
        "INSERT INTO saved_reports (workspace_id, name, body) VALUES (%s, 'r', %s)"
        " RETURNING report_id",
        (mine, Jsonb({"models": ["linear"]})),
    ).fetchone()
    answer = SeriesAnswer(1, date(2024, 3, 1), date(2024, 3, 1), "USD")
    rows = [("2024-03-01", "linear", "channel", "email", None, 1.0, 2.0, None, None, None)]
    assert put_series(conn, mine, row[0], {"models": ["markov"]}, answer, rows) is None
    count = "SELECT count(*) FROM saved_report_series_rows"
    assert conn.execute(count).fetchone() == (0,)
    assert put_series(conn, mine, row[0], {"models": ["linear"]}, answer, rows) is not None
    assert conn.execute(count).fetchone() == (1,)
