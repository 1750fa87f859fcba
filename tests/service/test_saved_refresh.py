"""Two refreshes of one saved report at once, against the real database: one run, and
both answer with it."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.config import Settings
from api.service import saved_reports
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
