"""Two refreshes of one saved report at once, against the real database: one run, and
both answer with it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.config import Settings
from api.service import saved_reports
from api.service.errors import Unavailable
from tests.http.test_attribution import SMALL, ingest, small_journey

ROUNDS = 4


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, pool_size=6)


def refresh_together(app: Flask, workspace_id: int, n: int = 2) -> list[Any]:
    """``n`` refreshes started at the same moment, each in a thread of its own."""
    start = threading.Barrier(n)
    out: list[Any] = [None] * n

    def refresh(i: int) -> None:
        start.wait()
        try:
            out[i] = saved_reports.refresh(
                app.extensions["pathcredit.db"], workspace_id, "both", timeout=30, budget=10**9
            )
        except BaseException as e:  # handed to the test
            out[i] = e

    threads = [threading.Thread(target=refresh, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_two_refreshes_at_once_make_one_run(
    app: Flask, client: FlaskClient, auth, conn, workspace
) -> None:
    ingest(client, auth, [small_journey(*j) for j in SMALL])
    body = {"name": "both", "models": ["first_touch", "last_touch", "linear", "markov"]}
    assert client.post("/v1/saved-reports", json=body, headers=auth).status_code == 201
    for round_ in range(ROUNDS):
        ingest(client, auth, [small_journey(f"new{round_}", ["social"], True, 1.0)])
        first, second = refresh_together(app, workspace.workspace_id)
        assert isinstance(first, saved_reports.Refreshed), first
        assert isinstance(second, saved_reports.Refreshed), second
        assert first.run_id == second.run_id
        assert sorted([first.hit, second.hit]) == [False, True]
        runs = conn.execute("SELECT count(*) FROM attribution_runs").fetchone()
        assert runs == (round_ + 1,)
    state = conn.execute("SELECT run_id::text, pending_run_id FROM saved_reports").fetchone()
    assert state == (first.run_id, None)


def pending_run(conn: Any, workspace_id: int, *, silent_for: str) -> str:
    """A running synchronous run claimed by the report, last heard of ``silent_for`` ago."""
    row = conn.execute(
        "INSERT INTO attribution_runs (workspace_id, status, parameters, parameters_hash,"
        " models_total, started_at, heartbeat_at)"
        " VALUES (%s, 'running', '{}', 'x', 1, now() - %s::interval, now() - %s::interval)"
        " RETURNING run_id::text",
        (workspace_id, silent_for, silent_for),
    ).fetchone()
    conn.execute("UPDATE saved_reports SET pending_run_id = %s", (row[0],))
    conn.commit()
    return str(row[0])


@pytest.fixture
def both(client: FlaskClient, auth: dict[str, str]) -> None:
    ingest(client, auth, [small_journey(*j) for j in SMALL])
    body = {"name": "both", "models": ["last_touch"]}
    assert client.post("/v1/saved-reports", json=body, headers=auth).status_code == 201


def test_a_refresh_under_way_is_waited_for_up_to_the_time_limit(app, conn, workspace, both):
    ws = workspace.workspace_id
    live = pending_run(conn, ws, silent_for="1 second")
    db = app.extensions["pathcredit.db"]
    started = time.monotonic()
    with pytest.raises(Unavailable, match="under way"):
        saved_reports.refresh(db, ws, "both", timeout=0.5, budget=10**9, poll=0.05)
    assert 0.5 <= time.monotonic() - started < 5
    assert conn.execute("SELECT count(*) FROM attribution_runs").fetchone() == (1,)
    assert conn.execute("SELECT pending_run_id::text FROM saved_reports").fetchone() == (live,)


def test_a_refresh_whose_process_died_is_taken_over(app, conn, workspace, both):
    ws = workspace.workspace_id
    dead = pending_run(conn, ws, silent_for="1 hour")
    db = app.extensions["pathcredit.db"]
    refreshed = saved_reports.refresh(db, ws, "both", timeout=30, budget=10**9, poll=0.05)
    assert not refreshed.hit and refreshed.run_id != dead
    status = conn.execute("SELECT status FROM attribution_runs WHERE run_id = %s", (dead,))
    assert status.fetchone() == ("failed",)
    state = conn.execute("SELECT run_id::text, pending_run_id FROM saved_reports").fetchone()
    assert state == (refreshed.run_id, None)
