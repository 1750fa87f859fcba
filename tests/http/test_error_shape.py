"""Every error the service gives has one shape: application/problem+json."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers import assert_problem


def test_unknown_url(client: FlaskClient) -> None:
    assert_problem(client.get("/v1/nowhere"), 404)


def test_wrong_method(client: FlaskClient, auth: dict[str, str]) -> None:
    assert_problem(client.patch("/v1/journeys", headers=auth), 405)


def test_unexpected_errors_hide_their_details(
    app: Flask, client: FlaskClient, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/explode")
    def explode() -> str:
        raise RuntimeError("secret internals")

    assert_problem(client.get("/explode"), 401)  # authentication runs first
    with caplog.at_level(logging.ERROR):
        body = assert_problem(client.get("/explode", headers=auth), 500)
    assert "secret" not in body["detail"]
    assert "secret internals" in caplog.text


def test_database_down_is_503(app: Flask, client: FlaskClient) -> None:
    from api.store import probes

    app.extensions["pathcredit.probe_db"].close()
    app.extensions["pathcredit.probe_db"] = probes.probe_database(
        "postgresql://nobody@127.0.0.1:1/none"
    )
    response = client.get("/readyz")
    assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) > 0
