"""POST /v1/paths: client-aggregated paths feeding the same reads."""

from __future__ import annotations

from typing import Any

import psycopg
from flask.testing import FlaskClient

from api import store
from attribution.paths import MIN_POSITIVE_COUNT
from tests.helpers import assert_problem, journey, pointers


def post(client: FlaskClient, auth: dict[str, str], *paths: dict[str, Any]) -> Any:
    return client.post("/v1/paths", json={"paths": list(paths)}, headers=auth)


def test_paths_are_stored_and_replaced(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, workspace: store.Workspace
) -> None:
    first = {
        "path": ["search", "email"],
        "conversions": 3,
        "nulls": 7,
        "value": 30.0,
        "date": "2024-03-01",
    }
    undated = {"path": ["email"], "stages": ["decision"], "conversions": 1, "nulls": 0, "value": 5}
    assert post(client, auth, first, undated).get_json() == {
        "received": 2,
        "created": 2,
        "replaced": 0,
        "unchanged": 0,
    }
    again = post(client, auth, {**first, "conversions": 4}, undated)
    assert again.get_json() == {"received": 2, "created": 0, "replaced": 1, "unchanged": 1}
    conn.rollback()
    everything = store.load_paths(conn, workspace.workspace_id)
    assert sorted(everything["conversions"].tolist()) == [1.0, 4.0]
    assert everything["stage_names"] is not None
    march = store.load_paths(conn, workspace.workspace_id, date_from=_d("2024-03-01"))
    assert march["conversions"].tolist() == [4.0]  # undated paths count only without a range


def test_paths_and_journeys_add_up(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, workspace: store.Workspace
) -> None:
    client.post("/v1/journeys", json={"journeys": [journey()]}, headers=auth)
    post(
        client,
        auth,
        {
            "path": ["paid_search", "email"],
            "stages": ["awareness", "decision"],
            "conversions": 2,
            "nulls": 1,
            "value": 10,
            "date": "2024-03-02",
        },
    )
    conn.rollback()
    paths = store.load_paths(conn, workspace.workspace_id)
    assert paths["offsets"].tolist() == [0, 2]
    assert paths["conversions"].tolist() == [3.0]
    assert paths["value"].tolist() == [35.5]


def test_path_validation(client: FlaskClient, auth: dict[str, str]) -> None:
    cases = [
        ({"path": ["a", "b"], "stages": ["awareness"], "conversions": 1}, "/paths/0/stages"),
        ({"path": ["a"], "conversions": 0, "nulls": 2, "value": 3}, "/paths/0/value"),
        ({"path": ["a"], "conversions": 0}, "/paths/0/conversions"),
        ({"path": [], "conversions": 1}, "/paths/0/path"),
        ({"path": ["a"], "stages": ["nope"], "conversions": 1}, "/paths/0/stages/0"),
        ({"path": ["a"], "conversions": 1, "date": "March"}, "/paths/0/date"),
        ({"path": ["a"], "conversions": 1e-7}, "/paths/0/conversions"),
        ({"path": ["a"], "conversions": 1, "nulls": 5e-7}, "/paths/0/nulls"),
    ]
    for path, pointer in cases:
        assert pointers(assert_problem(post(client, auth, path), 422)) == [pointer], path
    smallest = {"path": ["a"], "conversions": MIN_POSITIVE_COUNT}
    assert post(client, auth, smallest).status_code == 200
    duplicate = {"path": ["a"], "conversions": 1}
    assert pointers(assert_problem(post(client, auth, duplicate, duplicate), 422)) == ["/paths/1"]


def _d(text: str) -> Any:
    from datetime import date

    return date.fromisoformat(text)
