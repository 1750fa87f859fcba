"""Request ids, the request log line, /metrics and /readyz, through the real app."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.config import Settings
from api.http import logs, metrics
from api.problems import of_status
from tests.helpers import assert_problem, journey

TOKEN = "metrics-token-for-tests"
HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, pool_size=2, metrics_token=TOKEN)


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by name and labels."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, buffered=True)
    assert response.status_code == 200, response.get_data(True)
    assert response.mimetype == "text/plain"
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.get_data(True))
        for s in family.samples
    }


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_request_id_is_echoed_or_made(client: FlaskClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "req-42"}).headers["X-Request-ID"]
        == "req-42"
    )
    for bad in ("", " padded", "x" * 129, "tab\there", "é"):
        given = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert HEX_ID.fullmatch(given), (bad, given)
    made = client.get("/nowhere").headers["X-Request-ID"]  # on problems too
    assert HEX_ID.fullmatch(made)
    assert client.get("/nowhere").headers["X-Request-ID"] != made


def test_one_log_line_per_request_with_its_fields(
    client: FlaskClient, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="api.access"):
        client.get(
            "/v1/journeys/j1?key=pck_leak&format=json",
            headers={**auth, "X-Request-ID": "find-me"},
            buffered=True,
        )
        client.get("/report?token=eyJsecret.sig&date_from=2024-03-01", buffered=True)
    lines = [r for r in caplog.records if r.name == "api.access"]
    assert len(lines) == 2
    line = json.loads(logs.formatter("json").format(lines[0]))
    assert line["method"] == "GET"
    assert line["route"] == "/v1/journeys/<journey_id:journey_id>"
    assert line["path"] == "/v1/journeys/j1?key=[redacted]&format=json"
    assert line["status"] == 404
    assert line["duration_ms"] >= 0
    assert isinstance(line["workspace_id"], int)
    assert line["request_id"] == "find-me"
    assert line["remote_addr"] == "127.0.0.1"
    assert line["level"] == "INFO" and line["logger"] == "api.access" and line["time"]
    second = json.loads(logs.formatter("json").format(lines[1]))
    assert second["path"] == "/report?token=[redacted]&date_from=2024-03-01"
    assert second["workspace_id"] is None
    text = caplog.text + json.dumps(line) + json.dumps(second)
    assert "pck_leak" not in text and "eyJsecret" not in text
    assert auth["Authorization"].split()[1] not in text


def test_redaction() -> None:
    assert logs.redacted("/x", "Token=a&TOKEN=b&tokens=c") == (
        "/x?Token=[redacted]&TOKEN=[redacted]&tokens=c"
    )
    assert logs.redacted("/x", "api%5Fkey=a&password") == "/x?api%5Fkey=[redacted]&password"
    assert logs.redacted("/v1/journeys/pck_abc_def") == "/v1/journeys/pck_[redacted]"


def test_metrics_need_the_token(client: FlaskClient, app: Flask, database_url: str) -> None:
    assert_problem(client.get("/metrics"), 401)
    assert_problem(client.get("/metrics", headers={"Authorization": "Bearer nope"}), 401)
    off = create_app(Settings(database_url=database_url))
    try:
        # without credentials 401 either way (the spec requires them); with, "off" is 404
        assert (
            "metrics are off here"
            in assert_problem(off.test_client().get("/metrics"), 401)["detail"]
        )
        token = {"Authorization": "Bearer anything"}
        assert_problem(off.test_client().get("/metrics", headers=token), 404)
    finally:
        off.extensions["pathcredit.db"].close()
        off.extensions["pathcredit.probe_db"].close()


def test_metrics_count_requests_rows_and_the_database(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    before = scrape(client)
    # A request is counted when its answer is closed, as a WSGI server does: buffered.
    for _ in range(3):
        client.get("/healthz", buffered=True)
    client.get("/nowhere", buffered=True)
    sent = client.post(
        "/v1/journeys", json={"journeys": [journey("a"), journey("b")]}, headers=auth, buffered=True
    )
    assert sent.status_code == 200
    client.post("/v1/journeys", json={"journeys": [journey("a")]}, headers=auth, buffered=True)
    metrics.rate_limited("/v1/journeys")
    ran = client.post("/v1/attribution", json={"models": ["linear"]}, headers=auth, buffered=True)
    assert ran.status_code == 200
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    assert grew("pathcredit_http_requests_total", **healthz) == 3
    assert grew("pathcredit_http_request_duration_seconds_count", **healthz) == 3
    assert (
        grew("pathcredit_http_requests_total", route="<unmatched>", method="GET", status="404") == 1
    )
    assert grew("pathcredit_ingested_rows_total", kind="journeys", outcome="created") == 2
    assert grew("pathcredit_ingested_rows_total", kind="journeys", outcome="unchanged") == 1
    assert grew("pathcredit_rate_limited_requests_total", route="/v1/journeys") == 1
    assert grew("pathcredit_runs_finished_total", state="succeeded") == 1
    assert grew("pathcredit_run_duration_seconds_count", state="succeeded") == 1
    assert sample(after, "pathcredit_database_up") == 1
    assert sample(after, "pathcredit_runs_unfinished", state="queued") == 0
    assert sample(after, "pathcredit_db_pool_max_connections") == 2
    assert grew("pathcredit_db_pool_checkouts_total") >= 2


def test_readyz_fails_fast_without_a_database(settings: Settings) -> None:
    for dead in ("postgresql://nobody@127.0.0.1:1/none", "postgresql://nobody@192.0.2.1:5432/x"):
        app = create_app(replace(settings, database_url=dead))
        try:
            started = time.monotonic()
            response = app.test_client().get("/readyz")
            assert time.monotonic() - started < 1.0
            assert_problem(response, 503)
            assert int(response.headers["Retry-After"]) > 0
        finally:
            app.extensions["pathcredit.db"].close()
            app.extensions["pathcredit.probe_db"].close()


@pytest.mark.parametrize("make", [lambda: of_status(503), lambda: of_status(503, "down")])
def test_every_503_says_when_to_retry(make: Callable[[], object]) -> None:
    problem = make()
    assert int(problem.headers["Retry-After"]) > 0  # type: ignore[attr-defined]
