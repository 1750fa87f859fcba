"""GET /v1/channels, GET/PUT /v1/stages, and the table renderer they use."""

from __future__ import annotations

import csv
import io

from flask.testing import FlaskClient

from tests.helpers import assert_problem, journey, pointers

DEFAULT = ["awareness", "consideration", "decision", "retention", "advocacy"]


def test_channels_as_json_and_csv(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/v1/journeys", json={"journeys": [journey()]}, headers=auth)
    rows = client.get("/v1/channels", headers=auth).get_json()
    assert [(r["code"], r["name"]) for r in rows] == [(1, "paid_search"), (2, "email")]
    assert list(rows[0]) == ["code", "name", "created_at"]
    for response in (
        client.get("/v1/channels?format=csv", headers=auth),
        client.get("/v1/channels", headers={**auth, "Accept": "text/csv"}),
    ):
        assert response.mimetype == "text/csv"
        text = response.get_data(as_text=True)
        assert text.startswith("code,name,created_at\r\n") and text.endswith("\r\n")
        parsed = list(csv.DictReader(io.StringIO(text)))
        assert [p["name"] for p in parsed] == ["paid_search", "email"]
    json_again = client.get("/v1/channels?format=json", headers={**auth, "Accept": "text/csv"})
    assert json_again.mimetype == "application/json"


def test_bad_format_parameter(client: FlaskClient, auth: dict[str, str]) -> None:
    body = assert_problem(client.get("/v1/channels?format=xml", headers=auth), 422)
    assert pointers(body) == ["/query/format"]


def test_default_stages(client: FlaskClient, auth: dict[str, str]) -> None:
    rows = client.get("/v1/stages", headers=auth).get_json()
    assert [r["name"] for r in rows] == DEFAULT
    assert [r["position"] for r in rows] == [1, 2, 3, 4, 5]


def put(client: FlaskClient, auth: dict[str, str], stages: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    return client.put("/v1/stages", json={"stages": stages}, headers=auth)


def test_reorder_rename_add_and_remove_stages(client: FlaskClient, auth: dict[str, str]) -> None:
    response = put(
        client,
        auth,
        [
            {"name": "consideration"},
            {"name": "awareness"},
            {"name": "purchase", "code": 3},
            {"name": "loyalty"},
        ],
    )
    rows = response.get_json()
    assert [(r["name"], r["code"]) for r in rows] == [
        ("consideration", 2),
        ("awareness", 1),
        ("purchase", 3),
        ("loyalty", 6),
    ]


def test_a_stage_in_use_cannot_be_removed(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/v1/journeys", json={"journeys": [journey()]}, headers=auth)
    body = assert_problem(put(client, auth, [{"name": "awareness"}]), 409)
    assert "decision" in body["detail"]
    assert [r["name"] for r in client.get("/v1/stages", headers=auth).get_json()] == DEFAULT


def test_renamed_stage_keeps_its_journeys(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/v1/journeys", json={"journeys": [journey()]}, headers=auth)
    stages = [{"name": n} for n in DEFAULT]
    stages[2] = {"name": "purchase", "code": 3}
    assert put(client, auth, stages).status_code == 200
    got = client.get("/v1/journeys/j1", headers=auth).get_json()
    assert [t["stage"] for t in got["touchpoints"]] == ["awareness", "purchase"]


def test_stage_list_validation(client: FlaskClient, auth: dict[str, str]) -> None:
    assert pointers(assert_problem(put(client, auth, [{"name": "a"}, {"name": "a"}]), 422)) == [
        "/stages"
    ]
    assert_problem(put(client, auth, []), 422)
    assert_problem(put(client, auth, [{"name": "x", "code": 99}]), 409)
