"""Limits that protect the service, through the real app and database: rate limits per
key and per workspace, runs under way per workspace, and the work a synchronous run
may take."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from flask import Flask

from api.app import create_app
from api.config import Settings
from api.http import metrics
from api.service import cost, jobs
from api.service.runs import DEFAULT_MODELS, plan_run
from attribution.synthetic import generate
from tests.helpers import assert_problem, pointers
from tests.http.test_attribution import SMALL, ingest, small_journey
from tests.http.test_attribution_table import wait_for

RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


@pytest.fixture
def make_app(database_url: str) -> Iterator[Callable[..., Flask]]:
    """Apps on the test's database with settings of the test's choosing; several act as
    several server processes."""
    made: list[Flask] = []

    def make(**overrides: object) -> Flask:
        app = create_app(replace(Settings(database_url=database_url, pool_size=2), **overrides))
        app.config["TESTING"] = True
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["pathcredit.db"].close()
        app.extensions["pathcredit.probe_db"].close()


def limited(app: Flask, route: str) -> float:
    return float(metrics.RATE_LIMITED.labels(route=route)._value.get())


def test_a_key_over_its_read_budget_gets_429_with_when_to_retry(make_app, auth) -> None:
    app = make_app(key_reads=3, key_writes=0, workspace_reads=0, workspace_writes=0)
    client = app.test_client()
    before = limited(app, "/v1/channels")
    seen = [client.get("/v1/channels", headers=auth) for _ in range(3)]
    assert [r.status_code for r in seen] == [200, 200, 200]
    assert [r.headers["RateLimit-Remaining"] for r in seen] == ["2", "1", "0"]
    assert {r.headers["RateLimit-Limit"] for r in seen} == {"3"}
    refused = client.get("/v1/channels", headers=auth)
    body = assert_problem(refused, 429)
    assert "API key" in body["detail"]
    reset = int(refused.headers["RateLimit-Reset"])
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert 0 <= reset <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert limited(app, "/v1/channels") == before + 1
    # writes have a budget of their own (off here), and public routes are not counted
    assert client.delete("/v1/customers/nobody", headers=auth).status_code == 200
    health = client.get("/healthz")
    assert health.status_code == 200
    assert not set(RATE_HEADERS) & set(health.headers.keys())


def test_writes_and_reads_count_apart(make_app, auth) -> None:
    client = make_app(key_reads=2, key_writes=1).test_client()
    assert client.delete("/v1/customers/a", headers=auth).status_code == 200
    assert_problem(client.delete("/v1/customers/a", headers=auth), 429)
    first = client.get("/v1/channels", headers=auth)
    assert first.status_code == 200
    assert first.headers["RateLimit-Remaining"] == "1"


def test_the_workspace_budget_is_shared_by_its_keys_and_by_every_process(
    make_app, auth, conn, workspace
) -> None:
    from api import store

    other = {"Authorization": f"Bearer {store.create_api_key(conn, workspace.workspace_id)}"}
    conn.commit()
    # two apps on one database stand for two server processes (or machines)
    one, two = (make_app(key_reads=10, workspace_reads=3).test_client() for _ in range(2))
    assert one.get("/v1/channels", headers=auth).status_code == 200
    assert two.get("/v1/channels", headers=other).status_code == 200
    third = one.get("/v1/channels", headers=other)
    assert third.status_code == 200
    assert third.headers["RateLimit-Limit"] == "3"  # the nearest budget: the workspace's
    body = assert_problem(two.get("/v1/channels", headers=auth), 429)
    assert "workspace" in body["detail"]


def test_other_workspaces_are_not_counted_together(make_app, auth, new_key) -> None:
    client = make_app(key_reads=1, workspace_reads=1).test_client()
    assert client.get("/v1/channels", headers=auth).status_code == 200
    assert_problem(client.get("/v1/channels", headers=auth), 429)
    _, theirs = new_key()
    assert client.get("/v1/channels", headers=theirs).status_code == 200


def test_a_new_window_starts_the_count_again(make_app, auth) -> None:
    client = make_app(rate_window_seconds=1, key_reads=1).test_client()
    assert client.get("/v1/channels", headers=auth).status_code == 200
    refused = client.get("/v1/channels", headers=auth)
    if refused.status_code == 200:  # the window turned between the two requests
        refused = client.get("/v1/channels", headers=auth)
    assert_problem(refused, 429)
    time.sleep(1.05)
    assert client.get("/v1/channels", headers=auth).status_code == 200


def test_requests_refused_before_the_limits_are_not_counted(make_app, auth) -> None:
    client = make_app(key_reads=1).test_client()
    assert_problem(client.get("/v1/channels", headers={"Authorization": "Bearer pck_x_y"}), 401)
    assert client.get("/v1/channels", headers=auth).status_code == 200


# ---------------------------------------------------------------------- runs
def test_runs_under_way_are_limited_per_workspace(make_app, auth, new_key) -> None:
    client = make_app(max_runs=1).test_client()
    ingest(client, auth, [small_journey(*j) for j in SMALL])
    body = {"models": ["linear"]}
    queued = client.post("/v1/attribution/runs", json=body, headers=auth)
    assert queued.status_code == 202
    for refused in (
        client.post("/v1/attribution/runs", json=body, headers=auth),
        client.post("/v1/attribution", json=body, headers=auth),
        client.get("/v1/attribution/table?models=linear", headers=auth),
    ):
        problem = assert_problem(refused, 429)
        assert "runs" in problem["detail"]
        assert int(refused.headers["Retry-After"]) >= 1
    _, theirs = new_key()  # another workspace has room of its own
    assert client.post("/v1/attribution", json=body, headers=theirs).status_code == 200
    assert wait_for(client, auth, queued.headers["Location"])["status"] == "succeeded"
    assert client.post("/v1/attribution", json=body, headers=auth).status_code == 200
    runs = client.get("/v1/attribution/runs", headers=auth).get_json()["runs"]
    assert len(runs) == 2  # refusals recorded nothing


# ---------------------------------------------------------------------- work
def test_synchronous_runs_refuse_more_work_than_their_budget(make_app, auth) -> None:
    client = make_app(sync_work_budget=1_000).test_client()
    ingest(client, auth, [small_journey(*j) for j in SMALL])
    # 2 models x 5 unique paths x 200 replicates = 2,000 units
    body = {"models": ["last_touch", "linear"], "confidence": {}}
    refused = client.post("/v1/attribution", json=body, headers=auth)
    problem = assert_problem(refused, 422)
    assert pointers(problem) == ["/confidence/replicates"]
    assert "POST /v1/attribution/runs" in problem["detail"]
    assert "2,000" in problem["detail"]
    query = "models=last_touch,linear&confidence={}"
    refused = client.get(f"/v1/attribution/table?{query}", headers=auth)
    assert pointers(assert_problem(refused, 422)) == ["/query/confidence/replicates"]
    assert client.get("/v1/attribution/runs", headers=auth).get_json()["runs"] == []
    # fewer replicates fit; the background has no budget
    fits = {"models": ["last_touch", "linear"], "confidence": {"replicates": 50}}
    assert client.post("/v1/attribution", json=fits, headers=auth).status_code == 200
    background = client.post("/v1/attribution/runs", json=body, headers=auth)
    assert background.status_code == 202
    jobs.work_until_empty(client.application.extensions["pathcredit.db"])
    assert wait_for(client, auth, background.headers["Location"])["status"] == "succeeded"


def test_shapley_players_count_without_intervals(make_app, auth) -> None:
    client = make_app(sync_work_budget=1_000).test_client()
    ingest(client, auth, [small_journey(*j) for j in SMALL])
    # 3 players, all 8 coalitions solved exactly: 5 + 8 x 3 units
    assert (
        client.post("/v1/attribution", json={"models": ["shapley"]}, headers=auth).status_code
        == 200
    )
    sampled = {"models": ["shapley"], "shapley": {"max_exact_players": 2, "n_samples": 500}}
    refused = client.post("/v1/attribution", json=sampled, headers=auth)
    assert pointers(assert_problem(refused, 422)) == ["/models"]


def test_the_estimate_refuses_the_slow_request_of_issue_13() -> None:
    """300 journeys, the default models and ``"confidence": {}`` held a thread for 45-60 s;
    without intervals the same run takes well under a second."""
    paths = generate(300, seed=1).to_pathset()
    budget = Settings().sync_work_budget
    slow = plan_run({"confidence": {}}, {})
    fast = plan_run({}, {})
    assert slow.models == DEFAULT_MODELS
    assert cost.estimate(slow.built, slow.confidence, paths).work > budget
    assert cost.estimate(fast.built, fast.confidence, paths).work < budget / 20


def test_markov_auto_is_estimated_over_its_folds_and_orders() -> None:
    """``order: "auto"`` fits every candidate order on every fold, then the chosen one:
    hand-counted from the estimate's units (unique paths x order + players squared)."""
    paths = generate(300, seed=1).to_pathset()
    unique, n = paths.n_paths, cost.players(paths)
    auto = plan_run({"models": ["markov"], "options": {"markov": {"order": "auto"}}}, {})
    fixed = plan_run({"models": ["markov"], "options": {"markov": {"order": 2}}}, {})
    folds = auto.built["markov"].n_folds + 1  # type: ignore[attr-defined]
    expected = folds * sum(unique * o + n * n for o in (1, 2, 3, 4))
    assert cost.estimate(auto.built, None, paths).work == expected
    assert cost.estimate(fixed.built, None, paths).work == unique * 2 + n * n
