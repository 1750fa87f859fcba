"""Saved reports over HTTP: their parameters, the table a BI tool refreshes (run again
after new data and not before), and read-only table links."""

from __future__ import annotations

import csv
import io
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.config import Settings
from api.service import signing
from api.service.selection import Selection
from tests.helpers import assert_problem, pointers
from tests.http.test_attribution import SMALL, credit, ingest, small_journey

SECRET = "test-secret-0123456789abcdef"
REPORT = {"name": "march", "models": ["last_touch"], "date_from": "2024-03-01"}
TABLE = "/v1/saved-reports/march/table"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, pool_size=3, secret_key=SECRET)


@pytest.fixture
def small(client: FlaskClient, auth: dict[str, str]) -> None:
    ingest(client, auth, [small_journey(*j) for j in SMALL])


@pytest.fixture
def march(client: FlaskClient, auth: dict[str, str], small: None) -> dict[str, Any]:
    response = client.post("/v1/saved-reports", json=REPORT, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def run_count(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM attribution_runs").fetchone()
    assert row is not None
    return int(row[0])


def saved_count(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM saved_reports").fetchone()
    assert row is not None
    return int(row[0])


# ---------------------------------------------------------------------- parameters
def test_create_get_list_replace_delete(client, auth, conn, march) -> None:
    assert march["name"] == "march"
    assert march["parameters"] == {"models": ["last_touch"], "date_from": "2024-03-01"}
    assert march["run_id"] is None and march["data_version"] is None
    assert march["table_url"].endswith(TABLE)
    assert client.get("/v1/saved-reports/march", headers=auth).get_json() == march
    listed = client.get("/v1/saved-reports", headers=auth).get_json()
    assert [r["name"] for r in listed["saved_reports"]] == ["march"]

    put = client.put("/v1/saved-reports/march", json={"models": ["linear"]}, headers=auth)
    assert put.status_code == 200
    assert put.get_json()["parameters"] == {"models": ["linear"]}
    assert put.get_json()["updated_at"] > march["updated_at"]

    assert client.delete("/v1/saved-reports/march", headers=auth).status_code == 204
    assert_problem(client.get("/v1/saved-reports/march", headers=auth), 404)
    assert_problem(client.delete("/v1/saved-reports/march", headers=auth), 404)
    assert saved_count(conn) == 0


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"name": "has space", "models": ["linear"]}, "/name"),
        ({"name": "a/b"}, "/name"),
        ({"name": "-leading"}, "/name"),
        ({"name": "x" * 101}, "/name"),
        ({"models": ["linear"]}, "/name"),
        ({"name": "ok", "models": ["nope"]}, "/models/0"),
        (
            {"name": "ok", "options": {"markov": {"order": 9}}, "models": ["markov"]},
            "/options/markov/order",
        ),
        ({"name": "ok", "markov": {"order": 9}, "models": ["markov"]}, "/markov/order"),
        ({"name": "ok", "confidence": {"replicates": 0}}, "/confidence/replicates"),
        ({"name": "ok", "date_from": "2024-03-02", "date_to": "2024-03-01"}, "/date_to"),
        ({"name": "ok", "surprise": 1}, "/surprise"),
    ],
)
def test_invalid_reports_are_refused_and_nothing_is_saved(client, auth, conn, body, pointer):
    problem = assert_problem(client.post("/v1/saved-reports", json=body, headers=auth), 422)
    assert pointer in pointers(problem)
    assert saved_count(conn) == 0


def test_a_taken_name_is_a_conflict(client, auth, conn, march) -> None:
    again = {**REPORT, "models": ["linear"]}
    problem = assert_problem(client.post("/v1/saved-reports", json=again, headers=auth), 409)
    assert pointers(problem) == ["/name"]
    stored = client.get("/v1/saved-reports/march", headers=auth).get_json()
    assert stored["parameters"]["models"] == ["last_touch"]


def test_a_bad_replacement_changes_nothing(client, auth, march) -> None:
    bad = {"models": ["markov"], "options": {"markov": {"order": 0}}}
    problem = assert_problem(client.put("/v1/saved-reports/march", json=bad, headers=auth), 422)
    assert pointers(problem) == ["/options/markov/order"]
    assert client.get("/v1/saved-reports/march", headers=auth).get_json() == march
    missing = client.put("/v1/saved-reports/april", json={"models": ["linear"]}, headers=auth)
    assert_problem(missing, 404)


def test_reports_belong_to_their_workspace(client, auth, new_key, march) -> None:
    _, theirs = new_key()
    assert client.get("/v1/saved-reports", headers=theirs).get_json() == {"saved_reports": []}
    assert_problem(client.get(TABLE, headers=theirs), 404)
    assert_problem(client.delete("/v1/saved-reports/march", headers=theirs), 404)


# ---------------------------------------------------------------------- refresh
def test_the_table_runs_again_after_new_data_and_not_before(client, auth, conn, march) -> None:
    first = client.get(TABLE, headers=auth)
    assert first.status_code == 200
    assert first.headers["Pathcredit-Cache"] == "miss"
    # last touch over SMALL: j1 and j5 end on email, j2 on search
    assert credit(first.get_json(), "last_touch") == {"search": 1.0, "email": 2.0, "social": 0.0}
    assert run_count(conn) == 1

    again = client.get(TABLE, headers=auth)
    assert again.headers["Pathcredit-Cache"] == "hit"
    assert again.headers["Pathcredit-Run"] == first.headers["Pathcredit-Run"]
    assert again.get_json() == first.get_json()
    assert run_count(conn) == 1

    # an ad-hoc run with the same parameters is a run of its own: the report keeps its answer
    same = {"models": ["last_touch"], "date_from": "2024-03-01"}
    assert client.post("/v1/attribution", json=same, headers=auth).status_code == 200
    assert client.get(TABLE, headers=auth).headers["Pathcredit-Cache"] == "hit"
    assert run_count(conn) == 2

    ingest(client, auth, [small_journey("j6", ["social"], True, 10.0)])
    fresh = client.get(TABLE, headers=auth)
    assert fresh.headers["Pathcredit-Cache"] == "miss"
    assert credit(fresh.get_json(), "last_touch") == {"search": 1.0, "email": 2.0, "social": 1.0}
    assert run_count(conn) == 3
    report = client.get("/v1/saved-reports/march", headers=auth).get_json()
    assert report["run_id"] == fresh.headers["Pathcredit-Run"]
    assert client.get(TABLE, headers=auth).headers["Pathcredit-Cache"] == "hit"
    assert run_count(conn) == 3


def test_new_parameters_or_defaults_run_again(client, auth, conn, march) -> None:
    client.get(TABLE, headers=auth)
    client.put("/v1/saved-reports/march", json={"date_from": "2024-03-01"}, headers=auth)
    # no models saved: the workspace's default models answer
    defaults = {"models": ["first_touch"]}
    assert client.put("/v1/settings", json=defaults, headers=auth).status_code == 200
    table = client.get(TABLE, headers=auth)
    assert table.headers["Pathcredit-Cache"] == "miss"
    assert {r["model"] for r in table.get_json()} == {"first_touch"}
    assert client.put("/v1/settings", json={"models": ["linear"]}, headers=auth).status_code == 200
    table = client.get(TABLE, headers=auth)
    assert table.headers["Pathcredit-Cache"] == "miss"
    assert {r["model"] for r in table.get_json()} == {"linear"}
    assert run_count(conn) == 3


def test_the_table_speaks_csv(client, auth, march) -> None:
    response = client.get(TABLE + "?format=csv", headers=auth)
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    json_rows = client.get(TABLE, headers=auth).get_json()
    assert [r["channel"] for r in rows] == [r["channel"] for r in json_rows]


def test_the_table_says_what_its_selection_left_out(client, auth, small) -> None:
    body = {
        "name": "future",
        "models": ["linear"],
        "date_from": "2030-01-01",
        "date_to": "2030-01-31",
    }
    empty = (
        "The selection is empty: nothing matches days 2030-01-01 to 2030-01-31; the workspace "
        "holds 5 journeys and 0 client-aggregated paths, days 2024-03-01 to 2024-03-01."
    )
    assert client.post("/v1/saved-reports", json=body, headers=auth).status_code == 201
    for _ in range(2):  # run, then from cache
        table = client.get("/v1/saved-reports/future/table", headers=auth)
        assert table.get_json() == []
        assert table.headers.getlist("Pathcredit-Warning") == [empty]


def test_a_refused_refresh_keeps_the_last_answer(client, auth, conn, march) -> None:
    answered = client.get(TABLE, headers=auth).headers["Pathcredit-Run"]
    ingest(client, auth, [small_journey("j6", ["social"], True, 10.0)])
    client.application.extensions["pathcredit.settings"] = Settings(
        database_url="unused", secret_key=SECRET, sync_work_budget=1
    )
    assert_problem(client.get(TABLE, headers=auth), 422)
    report = client.get("/v1/saved-reports/march", headers=auth).get_json()
    assert report["run_id"] == answered
    assert run_count(conn) == 1


def test_a_failed_refresh_lets_go_of_the_report(client, auth, conn, small) -> None:
    # the engine refuses a game of 3 channels with max_players 2, once the run has started
    options = {"shapley_rate": {"max_players": 2}}
    body = {"name": "tight", "models": ["shapley_rate"], "options": options}
    assert client.post("/v1/saved-reports", json=body, headers=auth).status_code == 201
    problem = assert_problem(client.get("/v1/saved-reports/tight/table", headers=auth), 422)
    assert "max_players" in problem["detail"]
    state = conn.execute("SELECT run_id, pending_run_id FROM saved_reports").fetchone()
    assert state == (None, None)
    assert conn.execute("SELECT status FROM attribution_runs").fetchall() == [("failed",)]
    # the next request tries again, and is refused again
    assert_problem(client.get("/v1/saved-reports/tight/table", headers=auth), 422)
    assert run_count(conn) == 2


# ---------------------------------------------------------------------- table links
def link(client: FlaskClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/v1/saved-reports/march/links", json=body, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def open_url(client: FlaskClient, url: str) -> Any:
    parts = urlsplit(url)
    return client.get(parts.path, query_string={k: v[0] for k, v in parse_qs(parts.query).items()})


def test_a_table_link_reads_the_table_as_csv_without_a_key(client, auth, march) -> None:
    made = link(client, auth)
    assert made["expires_at"] is None and made["revoked_at"] is None
    response = open_url(client, made["url"])
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    keyed = client.get(TABLE + "?format=csv", headers=auth)
    assert response.get_data() == keyed.get_data()
    assert keyed.headers["Pathcredit-Run"] == response.headers["Pathcredit-Run"]
    listed = client.get("/v1/saved-reports/march/links", headers=auth).get_json()["links"]
    assert listed == [made]


def test_a_table_link_refreshes_like_the_keyed_url(client, auth, conn, march) -> None:
    made = link(client, auth)
    assert open_url(client, made["url"]).headers["Pathcredit-Cache"] == "miss"
    assert open_url(client, made["url"]).headers["Pathcredit-Cache"] == "hit"
    ingest(client, auth, [small_journey("j6", ["social"], True, 10.0)])
    assert open_url(client, made["url"]).headers["Pathcredit-Cache"] == "miss"
    assert run_count(conn) == 2


def test_a_table_link_is_read_only(client, auth, march) -> None:
    token = link(client, auth)["token"]
    for method in (client.post, client.put, client.delete):
        response = method(TABLE, query_string={"token": token})
        assert response.status_code == 405
    assert_problem(client.get("/v1/saved-reports/march", query_string={"token": token}), 401)
    assert_problem(client.get("/v1/saved-reports", query_string={"token": token}), 401)


def test_a_revoked_link_is_gone(client, auth, march) -> None:
    made = link(client, auth)
    path = f"/v1/saved-reports/march/links/{made['link_id']}"
    assert client.delete(path, headers=auth).status_code == 204
    body = assert_problem(open_url(client, made["url"]), 410)
    assert "revoked" in body["detail"]
    listed = client.get("/v1/saved-reports/march/links", headers=auth).get_json()["links"]
    assert listed[0]["revoked_at"] is not None
    other = "/v1/saved-reports/march/links/00000000-0000-0000-0000-000000000000"
    assert_problem(client.delete(other, headers=auth), 404)


def test_an_expired_link_is_gone(client, auth, conn, march) -> None:
    made = link(client, auth, expires_in=60)
    assert open_url(client, made["url"]).status_code == 200
    # the token's own expiry
    ws, report = conn.execute("SELECT workspace_id, report_id FROM saved_reports").fetchone()
    past = signing.TableLink(ws, report, made["link_id"], int(time.time()) - 1)
    gone = client.get(TABLE, query_string={"token": signing.sign_table(SECRET, past)})
    assert "expired" in assert_problem(gone, 410)["detail"]
    # the stored expiry
    conn.execute("UPDATE table_links SET expires_at = now() - interval '1 second'")
    conn.commit()
    assert "expired" in assert_problem(open_url(client, made["url"]), 410)["detail"]


def test_a_deleted_report_takes_its_links(client, auth, march) -> None:
    made = link(client, auth)
    client.delete("/v1/saved-reports/march", headers=auth)
    client.post("/v1/saved-reports", json=REPORT, headers=auth)
    assert_problem(open_url(client, made["url"]), 410)


def test_report_and_table_tokens_do_not_stand_in_for_each_other(
    client, auth, workspace, march
) -> None:
    table_token = link(client, auth)["token"]
    assert_problem(client.get("/report", query_string={"token": table_token}), 401)
    report_link = signing.Link(
        workspace.workspace_id, workspace.name, Selection(), ("linear",), int(time.time()) + 60
    )
    report_token = signing.sign(SECRET, report_link)
    assert_problem(client.get(TABLE, query_string={"token": report_token}), 401)
    made = client.post("/v1/report-links", json={}, headers=auth).get_json()
    assert_problem(client.get(TABLE, query_string={"token": made["token"]}), 401)


def test_a_link_opens_its_own_report_only(client, auth, march) -> None:
    token = link(client, auth)["token"]
    client.post("/v1/saved-reports", json={**REPORT, "name": "other"}, headers=auth)
    other = client.get("/v1/saved-reports/other/table", query_string={"token": token})
    assert "march" in assert_problem(other, 401)["detail"]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert_problem(client.get(TABLE, query_string={"token": forged}), 401)


def test_key_or_token_not_both_and_not_neither(client, auth, march) -> None:
    token = link(client, auth)["token"]
    both = client.get(TABLE, query_string={"token": token}, headers=auth)
    assert pointers(assert_problem(both, 422)) == ["/query/token"]
    assert_problem(client.get(TABLE), 401)


def test_links_are_off_without_a_secret(app: Flask, client, auth, march) -> None:
    token = link(client, auth)["token"]
    app.extensions["pathcredit.settings"] = Settings(database_url="unused")
    assert_problem(client.post("/v1/saved-reports/march/links", json={}, headers=auth), 503)
    assert_problem(client.get(TABLE, query_string={"token": token}), 401)


@pytest.mark.parametrize("expires_in", [0, 59, "soon"])
def test_bad_expiries_are_refused(client, auth, conn, march, expires_in) -> None:
    response = client.post(
        "/v1/saved-reports/march/links", json={"expires_in": expires_in}, headers=auth
    )
    assert pointers(assert_problem(response, 422)) == ["/expires_in"]
    assert conn.execute("SELECT count(*) FROM table_links").fetchone() == (0,)


def test_deleting_the_workspace_deletes_its_reports_and_links(client, auth, conn, march) -> None:
    client.get(TABLE, headers=auth)
    link(client, auth)
    conn.execute("DELETE FROM workspaces")
    conn.commit()
    for table in ("saved_reports", "table_links", "attribution_runs"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


def test_a_links_reads_count_against_its_workspaces_budget(app: Flask, client, auth, march):
    token = link(client, auth)["token"]
    app.extensions["pathcredit.settings"] = Settings(
        database_url="unused", secret_key=SECRET, workspace_reads=2, key_reads=0
    )
    first = client.get(TABLE, query_string={"token": token})
    assert first.status_code == 200
    assert first.headers["RateLimit-Remaining"] == "1"
    assert client.get(TABLE, query_string={"token": token}).status_code == 200
    assert_problem(client.get(TABLE, query_string={"token": token}), 429)
    assert_problem(client.get(TABLE, headers=auth), 429)  # the same workspace's budget


# ------------------------------------------------------- comparison and series
def test_comparison_and_series_answer_for_the_report(client, auth, conn, march) -> None:
    """The same rows as the run routes give for the run that answers the report; a
    table link's token opens them too; the series needs the report to have a range."""
    table = client.get(TABLE, headers=auth)
    run_id = table.headers["Pathcredit-Run"]
    compared = client.get("/v1/saved-reports/march/comparison", headers=auth)
    assert compared.status_code == 200, compared.get_json()
    assert compared.headers["Pathcredit-Run"] == run_id
    direct = client.get(f"/v1/attribution/runs/{run_id}/comparison", headers=auth)
    assert compared.get_json() == direct.get_json()
    made = link(client, auth)
    token = parse_qs(urlsplit(made["url"]).query)["token"][0]
    by_link = client.get("/v1/saved-reports/march/comparison", query_string={"token": token})
    assert by_link.get_json() == direct.get_json()
    assert run_count(conn) == 1  # one run answered the table, the comparison and the link
    ranged = {"name": "ranged", "models": ["linear"], "date_from": "2024-03-01",
              "date_to": "2024-03-31"}  # fmt: skip
    assert client.post("/v1/saved-reports", json=ranged, headers=auth).status_code == 201
    series = client.get("/v1/saved-reports/ranged/series", headers=auth)
    query = {"models": "linear", "date_from": "2024-03-01", "date_to": "2024-03-31"}
    direct_series = client.get("/v1/attribution/series", query_string=query, headers=auth)
    assert series.status_code == 200 and series.get_json() == direct_series.get_json()
    open_ended = client.get("/v1/saved-reports/march/series", headers=auth)
    assert pointers(assert_problem(open_ended, 422)) == ["/date_from"]
