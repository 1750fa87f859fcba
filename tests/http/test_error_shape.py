"""Every error the service gives has one shape: application/problem+json."""

from __future__ import annotations

import json
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


def test_success_and_error_json_are_written_alike(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    """A client diffing or logging bodies sees one layout: compact JSON and one trailing
    newline, whether the body is an object, a table or a problem."""
    bodies = [
        client.get("/v1/settings", headers=auth),
        client.get("/v1/attribution/table", headers=auth),
        client.get("/v1/journeys/nobody", headers=auth),
        client.post("/v1/journeys", json={"journeys": [{}]}, headers=auth),
    ]
    assert [r.status_code for r in bodies] == [200, 200, 404, 422]
    for response in bodies:
        text = response.get_data(as_text=True)
        assert text == json.dumps(json.loads(text), separators=(",", ":")) + "\n"


def test_a_bare_array_body_names_the_expected_shape(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    sent = client.post("/v1/journeys", json=[{"journey_id": "a"}], headers=auth)
    body = assert_problem(sent, 422)
    assert body["errors"] == [
        {
            "pointer": "/",
            "detail": 'The body must be a JSON object with the fields "journeys" '
            "(journeys required).",
        }
    ]
    touch = {"journey_id": "a", "touchpoints": ["email"]}
    nested = assert_problem(
        client.post("/v1/journeys", json={"journeys": [touch]}, headers=auth), 422
    )
    assert nested["errors"] == [
        {"pointer": "/journeys/0/touchpoints/0", "detail": "Expected a JSON object here."}
    ]
