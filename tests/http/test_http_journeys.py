"""POST /v1/journeys, GET/DELETE /v1/journeys/{id}, DELETE /v1/customers/{id}."""

from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from flask.testing import FlaskClient

from api import store
from tests.helpers import assert_problem, journey, ndjson, pointers, touch

JSON = "application/json"
NDJSON = "application/x-ndjson"


def post(client: FlaskClient, auth: dict[str, str], *records: dict[str, Any]) -> Any:
    return client.post("/v1/journeys", json={"journeys": list(records)}, headers=auth)


def stored_count(conn: psycopg.Connection, workspace: store.Workspace) -> int:
    conn.rollback()
    row = conn.execute(
        "SELECT count(*) FROM journeys WHERE workspace_id = %s", [workspace.workspace_id]
    ).fetchone()
    return int(row[0]) if row else 0


def test_round_trip(client: FlaskClient, auth: dict[str, str]) -> None:
    response = post(client, auth, journey())
    assert response.status_code == 200
    assert response.get_json() == {"received": 1, "created": 1, "replaced": 0, "unchanged": 0}
    got = client.get("/v1/journeys/j1", headers=auth).get_json()
    assert got["customer_id"] == "c1"
    assert got["converted"] is True and got["value"] == 25.5
    assert got["converted_at"] == "2024-03-02T12:00:00+00:00"
    assert got["attributes"] == {"region": "emea"}
    assert [t["channel"] for t in got["touchpoints"]] == ["paid_search", "email"]
    assert [t["stage"] for t in got["touchpoints"]] == ["awareness", "decision"]
    # Times come back in UTC: +01:00 09:30 is 08:30Z.
    assert got["touchpoints"][1]["timestamp"] == "2024-03-02T08:30:00+00:00"
    assert got["touchpoints"][1]["device"] == "mobile"
    assert got["touchpoints"][0]["device"] is None


def test_gzip_bodies_write_what_plain_ones_do(client: FlaskClient, auth: dict[str, str]) -> None:
    """The same journeys gzip-compressed on each ingestion route; paths too."""
    gz = {**auth, "Content-Encoding": "gzip"}
    batch = json.dumps({"journeys": [journey("g1")]}).encode()
    r = client.post("/v1/journeys", data=gzip.compress(batch), content_type=JSON, headers=gz)
    assert r.get_json() == {"received": 1, "created": 1, "replaced": 0, "unchanged": 0}
    lines = gzip.compress(ndjson(journey("g2"), journey("g3", customer_id="c3")))
    r = client.post("/v1/journeys/bulk", data=lines, content_type=NDJSON, headers=gz)
    assert r.get_json() == {"received": 2, "created": 2, "replaced": 0, "unchanged": 0}
    for jid in ("g1", "g2", "g3"):
        got = client.get(f"/v1/journeys/{jid}", headers=auth).get_json()
        assert got["value"] == 25.5 and len(got["touchpoints"]) == 2
    paths = json.dumps({"paths": [{"path": ["email", "seo"], "conversions": 3}]}).encode()
    r = client.post("/v1/paths", data=gzip.compress(paths), content_type=JSON, headers=gz)
    assert r.get_json()["created"] == 1


def test_resending_counts_created_replaced_unchanged(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    post(client, auth, journey("a"), journey("b"))
    changed = journey("b", value=99.0)
    response = post(client, auth, journey("a"), changed, journey("c"))
    assert response.get_json() == {"received": 3, "created": 1, "replaced": 1, "unchanged": 1}
    assert client.get("/v1/journeys/b", headers=auth).get_json()["value"] == 99.0


def test_touchpoints_are_stored_in_time_order(client: FlaskClient, auth: dict[str, str]) -> None:
    late, early = touch("email", "2024-03-05T00:00:00Z"), touch("seo", "2024-03-01T00:00:00Z")
    post(client, auth, journey(touchpoints=[late, early]))
    got = client.get("/v1/journeys/j1", headers=auth).get_json()
    assert [t["channel"] for t in got["touchpoints"]] == ["seo", "email"]


def test_conversion_time_defaults_to_last_touch(client: FlaskClient, auth: dict[str, str]) -> None:
    record = journey(converted_at=None)
    post(client, auth, record)
    got = client.get("/v1/journeys/j1", headers=auth).get_json()
    assert got["converted_at"] == "2024-03-02T08:30:00+00:00"


def test_minimal_journey(client: FlaskClient, auth: dict[str, str]) -> None:
    minimal = {
        "journey_id": "m",
        "touchpoints": [{"channel": "direct", "timestamp": "2024-01-01T00:00:00Z"}],
    }
    assert post(client, auth, minimal).status_code == 200
    got = client.get("/v1/journeys/m", headers=auth).get_json()
    assert got["converted"] is False and got["value"] == 0 and got["customer_id"] is None
    assert got["touchpoints"][0]["stage"] is None


BAD_RECORDS = [
    (
        "naive timestamp",
        {"touchpoints": [touch(timestamp="2024-03-01T10:00:00")]},
        "/journeys/1/touchpoints/0/timestamp",
    ),
    (
        "not a timestamp",
        {"touchpoints": [touch(timestamp="yesterday")]},
        "/journeys/1/touchpoints/0/timestamp",
    ),
    (
        "missing channel",
        {"touchpoints": [{"timestamp": "2024-03-01T10:00:00Z"}]},
        "/journeys/1/touchpoints/0/channel",
    ),
    ("empty channel", {"touchpoints": [touch(channel="")]}, "/journeys/1/touchpoints/0/channel"),
    ("unknown field", {"colour": "red"}, "/journeys/1/colour"),
    ("unknown touch field", {"touchpoints": [touch(cost=3)]}, "/journeys/1/touchpoints/0/cost"),
    ("no touchpoints", {"touchpoints": []}, "/journeys/1/touchpoints"),
    ("value as string", {"value": "12"}, "/journeys/1/value"),
    ("negative value", {"value": -1}, "/journeys/1/value"),
    ("converted as string", {"converted": "yes"}, "/journeys/1/converted"),
    ("value without conversion", {"converted": False, "converted_at": None}, "/journeys/1/value"),
    (
        "conversion time without conversion",
        {"converted": False, "value": 0},
        "/journeys/1/converted_at",
    ),
    (
        "unknown stage",
        {"touchpoints": [touch(stage="purchase")]},
        "/journeys/1/touchpoints/0/stage",
    ),
    ("control character in id", {"journey_id": "a\nb"}, "/journeys/1/journey_id"),
    ("duplicate id", {"journey_id": "ok"}, "/journeys/1/journey_id"),
    ("attributes not an object", {"attributes": [1, 2]}, "/journeys/1/attributes"),
]


@pytest.mark.parametrize(
    ("case", "override", "pointer"), BAD_RECORDS, ids=[c[0] for c in BAD_RECORDS]
)
def test_invalid_record_rejects_the_batch(
    client: FlaskClient,
    auth: dict[str, str],
    conn: psycopg.Connection,
    workspace: store.Workspace,
    case: str,
    override: dict[str, Any],
    pointer: str,
) -> None:
    bad = {**journey("bad"), **override}
    body = assert_problem(post(client, auth, journey("ok"), bad), 422)
    assert pointer in pointers(body)
    assert "nothing was written" in body["detail"]
    assert stored_count(conn, workspace) == 0
    assert store.list_channels(conn, workspace.workspace_id) == []


def test_every_bad_record_is_listed(client: FlaskClient, auth: dict[str, str]) -> None:
    records = [journey(f"j{i}") for i in range(5)]
    records[1]["touchpoints"][0]["timestamp"] = "2024-01-01"
    records[3]["value"] = "x"
    records[3]["touchpoints"][1]["channel"] = 7
    body = assert_problem(post(client, auth, *records), 422)
    assert set(pointers(body)) == {
        "/journeys/1/touchpoints/0/timestamp",
        "/journeys/3/value",
        "/journeys/3/touchpoints/1/channel",
    }
    assert body["detail"].startswith("2 of 5 journeys")


def test_batch_limit(client: FlaskClient, auth: dict[str, str], app: Any) -> None:
    from dataclasses import replace

    app.extensions["pathcredit.settings"] = replace(
        app.extensions["pathcredit.settings"], max_batch=2
    )
    body = assert_problem(post(client, auth, journey("a"), journey("b"), journey("c")), 422)
    assert pointers(body) == ["/journeys"]


def test_body_problems(client: FlaskClient, auth: dict[str, str]) -> None:
    assert_problem(
        client.post("/v1/journeys", data="{", headers={**auth, "Content-Type": "application/json"}),
        400,
    )
    assert_problem(
        client.post("/v1/journeys", data="x", headers={**auth, "Content-Type": "text/plain"}), 415
    )
    body = assert_problem(client.post("/v1/journeys", json={}, headers=auth), 422)
    assert pointers(body) == ["/journeys"]
    body = assert_problem(client.post("/v1/journeys", json=[1], headers=auth), 422)


def test_request_size_limit(client: FlaskClient, auth: dict[str, str], app: Any) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1000
    records = [journey(f"j{i}") for i in range(20)]
    assert_problem(post(client, auth, *records), 413)


def test_delete_journey(client: FlaskClient, auth: dict[str, str]) -> None:
    post(client, auth, journey("a"), journey("b"))
    assert client.delete("/v1/journeys/a", headers=auth).status_code == 204
    assert_problem(client.get("/v1/journeys/a", headers=auth), 404)
    assert_problem(client.delete("/v1/journeys/a", headers=auth), 404)
    assert client.get("/v1/journeys/b", headers=auth).status_code == 200


def test_ids_with_slashes_are_addressable(client: FlaskClient, auth: dict[str, str]) -> None:
    """Any id ingestion takes can be read and erased by URL: "/" as it is or as %2F, a
    leading "/", a trailing one, spaces and non-ASCII letters."""
    ids = ["crm/2024/17", "/lead", "tail/", "a b/é"]
    post(client, auth, *(journey(j, customer_id="acct/7 é") for j in ids), journey("crm"))
    for journey_id in ids:
        for path in (journey_id, quote(journey_id, safe="")):
            got = client.get(f"/v1/journeys/{path}", headers=auth)
            assert got.status_code == 200, path
            assert got.get_json()["journey_id"] == journey_id
    assert client.get("/v1/journeys/crm", headers=auth).get_json()["journey_id"] == "crm"
    assert_problem(client.get("/v1/journeys/crm/2024", headers=auth), 404)
    assert client.delete("/v1/journeys/crm%2F2024%2F17", headers=auth).status_code == 204
    assert_problem(client.get("/v1/journeys/crm/2024/17", headers=auth), 404)
    response = client.delete(f"/v1/customers/{quote('acct/7 é', safe='')}", headers=auth)
    assert response.get_json() == {"customer_id": "acct/7 é", "deleted": 3}
    assert client.get("/v1/journeys/crm", headers=auth).status_code == 200


def test_delete_customer_moves_rollups(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, workspace: store.Workspace
) -> None:
    post(
        client,
        auth,
        journey("a", customer_id="x"),
        journey("b", customer_id="x"),
        journey("c", customer_id="y", converted=False, value=0, converted_at=None),
    )
    before = store.load_paths(conn, workspace.workspace_id)
    assert before["conversions"].sum() == 2 and before["nulls"].sum() == 1
    response = client.delete("/v1/customers/x", headers=auth)
    assert response.get_json() == {"customer_id": "x", "deleted": 2}
    conn.rollback()
    after = store.load_paths(conn, workspace.workspace_id)
    assert after["conversions"].sum() == 0 and after["nulls"].sum() == 1
    assert after["value"].sum() == 0
    assert client.delete("/v1/customers/x", headers=auth).get_json()["deleted"] == 0


def test_nul_characters_in_attributes_are_invalid(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    body = assert_problem(post(client, auth, journey(attributes={"note": "a\u0000b"})), 422)
    assert pointers(body) == ["/journeys/0/attributes"]


def test_the_bulk_path_is_not_a_journey_id(client: FlaskClient, auth: dict[str, str]) -> None:
    """`/v1/journeys/bulk` is the upload's own path: its Allow lists that route alone, a
    GET there is 405, and every other id (one starting with "bulk" too) is a journey."""
    options = client.options("/v1/journeys/bulk", headers=auth)
    assert sorted(options.headers["Allow"].split(", ")) == ["OPTIONS", "POST"]
    assert assert_problem(client.get("/v1/journeys/bulk", headers=auth), 405)
    assert_problem(client.get("/v1/journeys/bulky", headers=auth), 404)
    sent = client.post("/v1/journeys", json={"journeys": [journey("bulk/2")]}, headers=auth)
    assert sent.status_code == 200
    assert client.get("/v1/journeys/bulk/2", headers=auth).get_json()["journey_id"] == "bulk/2"
