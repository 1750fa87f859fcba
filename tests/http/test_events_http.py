"""POST /v1/events and /v1/event-rules over HTTP: formats, auth, errors, erasure."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import psycopg
from flask.testing import FlaskClient

from tests.helpers import assert_problem, pointers


def event(message_id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "page",
        "messageId": message_id,
        "anonymousId": "anon-1",
        "timestamp": "2024-03-01T10:00:00Z",
        "context": {"page": {"url": "https://shop.example/"}},
    }
    base.update(fields)
    return base


def purchase(message_id: str, at: str, revenue: float, **fields: Any) -> dict[str, Any]:
    return event(
        message_id,
        type="track",
        event="Order Completed",
        timestamp=at,
        properties={"revenue": revenue, "order_id": message_id},
        **fields,
    )


def landing(message_id: str, at: str, url: str, **fields: Any) -> dict[str, Any]:
    return event(message_id, timestamp=at, context={"page": {"url": url}}, **fields)


def post(client: FlaskClient, auth: dict[str, str], *events: dict[str, Any]) -> Any:
    return client.post("/v1/events", json={"batch": list(events)}, headers=auth)


def test_a_batch_becomes_a_converting_journey(client: FlaskClient, auth: dict[str, str]) -> None:
    r = post(
        client,
        auth,
        landing(
            "m1", "2024-03-01T10:00:00Z", "https://shop.example/?utm_source=google&utm_medium=cpc"
        ),
        purchase("m2", "2024-03-01T10:05:00Z", 49.5, userId="u-1"),
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {
        "received": 2,
        "stored": 2,
        "duplicates": 0,
        "people": 1,
        "journeys": {"created": 1, "replaced": 0, "unchanged": 0, "deleted": 0},
    }
    j = client.get("/v1/journeys/ev:u:u-1:1", headers=auth).get_json()
    assert j["customer_id"] == "u-1"
    assert j["converted"] is True and j["value"] == 49.5
    assert [t["channel"] for t in j["touchpoints"]] == ["Paid Search"]
    assert [t["stage"] for t in j["touchpoints"]] == ["decision"]
    assert j["attributes"] == {"origin": "events"}


def test_resending_changes_nothing(client: FlaskClient, auth: dict[str, str]) -> None:
    batch = [landing("m1", "2024-03-01T10:00:00Z", "https://shop.example/")]
    post(client, auth, *batch)
    r = post(client, auth, *batch)
    assert r.get_json()["stored"] == 0 and r.get_json()["duplicates"] == 1
    assert r.get_json()["journeys"] == {"created": 0, "replaced": 0, "unchanged": 0, "deleted": 0}


def test_ndjson_gzip_and_basic_auth(client: FlaskClient, api_key: str) -> None:
    lines = [
        landing("m1", "2024-03-01T10:00:00Z", "https://shop.example/?gclid=abc"),
        purchase("m2", "2024-03-01T10:10:00Z", 10.0),
    ]
    body = gzip.compress("".join(json.dumps(x) + "\n" for x in lines).encode())
    basic = base64.b64encode(f"{api_key}:".encode()).decode()
    r = client.post(
        "/v1/events",
        data=body,
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
        },
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["stored"] == 2
    bearer = {"Authorization": f"Bearer {api_key}"}
    j = client.get("/v1/journeys/ev:a:anon-1:1", headers=bearer).get_json()
    assert [t["channel"] for t in j["touchpoints"]] == ["Paid Search"]


def test_basic_auth_only_on_events(client: FlaskClient, api_key: str) -> None:
    basic = base64.b64encode(f"{api_key}:".encode()).decode()
    r = client.get("/v1/channels", headers={"Authorization": f"Basic {basic}"})
    assert_problem(r, 401)
    r = client.post("/v1/events", json={"batch": []}, headers={"Authorization": "Basic !!"})
    assert_problem(r, 401)


def test_one_bad_event_rejects_the_batch(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection
) -> None:
    r = post(
        client,
        auth,
        landing("m1", "2024-03-01T10:00:00Z", "https://shop.example/"),
        {"type": "track", "messageId": "m2", "timestamp": "2024-03-01T10:00:00"},
        {"type": "shout", "anonymousId": "x", "timestamp": "2024-03-01T10:00:00Z"},
    )
    body = assert_problem(r, 422)
    assert pointers(body) == [
        "/batch/1/userId",
        "/batch/1/event",
        "/batch/1/timestamp",
        "/batch/2/type",
        "/batch/2/messageId",
    ]
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)


def test_bad_ndjson_line_points_at_it(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection
) -> None:
    text = json.dumps(event("m1")) + "\n{oops\n"
    r = client.post(
        "/v1/events", data=text, headers={**auth, "Content-Type": "application/x-ndjson"}
    )
    problem = assert_problem(r, 422)
    assert pointers(problem) == ["/1"]
    assert problem["detail"] == "1 event is invalid; nothing was written."
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
    text += "[]\n"
    r = client.post(
        "/v1/events", data=text, headers={**auth, "Content-Type": "application/x-ndjson"}
    )
    assert assert_problem(r, 422)["detail"] == "2 events are invalid; nothing was written."


def test_bodies_that_are_not_events(client: FlaskClient, auth: dict[str, str]) -> None:
    assert_problem(
        client.post("/v1/events", data="x", headers={**auth, "Content-Type": "text/plain"}), 415
    )
    r = client.post("/v1/events", data="{", headers={**auth, "Content-Type": "application/json"})
    assert_problem(r, 400)
    r = client.post(
        "/v1/events",
        data=b"not gzip",
        headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert_problem(r, 400)
    r = client.post("/v1/events", json={"events": []}, headers=auth)
    assert pointers(assert_problem(r, 422)) == ["/events", "/batch"]
    r = client.post("/v1/events", json={"batch": []}, headers=auth)
    assert pointers(assert_problem(r, 422)) == ["/batch"]


def test_fields_read_and_not_kept_are_still_checked(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    """The spec types every field of a batch and of an event, used or not."""
    batch = {"batch": [event("m1")], "sentAt": 5, "context": [], "integrations": 1, "writeKey": 2}
    r = client.post("/v1/events", json=batch, headers=auth)
    assert pointers(assert_problem(r, 422)) == ["/context", "/integrations", "/writeKey", "/sentAt"]
    bad_times = [event("m2", sentAt=1_709_287_200), event("m3", receivedAt="yesterday")]
    r = client.post("/v1/events", json={"batch": bad_times}, headers=auth)
    assert pointers(assert_problem(r, 422)) == ["/batch/0/sentAt", "/batch/1/receivedAt"]
    assert post(client, auth, event("m4", sentAt="2024-03-01T10:00:05Z")).status_code == 200


def test_unknown_fields_are_kept(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection
) -> None:
    post(client, auth, event("m1", integrations={"All": True}, custom={"a": 1}))
    row = conn.execute("SELECT body FROM events WHERE message_id = 'm1'").fetchone()
    assert row is not None and row[0]["custom"] == {"a": 1}


def test_erasing_a_customer_erases_events_links_and_derived_journeys(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection
) -> None:
    post(
        client,
        auth,
        landing("m1", "2024-03-01T10:00:00Z", "https://shop.example/", anonymousId="a-9"),
        event("m2", type="identify", anonymousId="a-9", userId="u-9"),
        purchase("m3", "2024-03-01T10:10:00Z", 5.0, anonymousId="a-9"),
        landing("m4", "2024-03-01T10:00:00Z", "https://shop.example/", anonymousId="other"),
    )
    r = client.delete("/v1/customers/a-9", headers=auth)
    assert r.get_json() == {"customer_id": "a-9", "deleted": 1}
    left = conn.execute("SELECT message_id FROM events ORDER BY 1").fetchall()
    assert left == [("m4",)]
    assert conn.execute("SELECT count(*) FROM identity_links").fetchone() == (0,)
    ids = [r[0] for r in conn.execute("SELECT journey_id FROM journeys ORDER BY 1")]
    assert ids == ["ev:a:other:1"]


def test_rules_default_and_replace(client: FlaskClient, auth: dict[str, str]) -> None:
    rules = client.get("/v1/event-rules", headers=auth).get_json()
    assert rules["conversions"]["events"] == ["Order Completed", "purchase"]
    assert rules["channels"][0]["channel"] == "Direct"
    assert rules["session_timeout_minutes"] == 30 and rules["lookback_days"] == 90
    post(
        client,
        auth,
        landing(
            "m1", "2024-03-01T10:00:00Z", "https://shop.example/?utm_source=partnerco&utm_medium=y"
        ),
        purchase("m2", "2024-03-01T10:10:00Z", 5.0),
    )
    assert (
        client.get("/v1/journeys/ev:a:anon-1:1", headers=auth).get_json()["touchpoints"][0][
            "channel"
        ]
        == "Unassigned"
    )
    r = client.put(
        "/v1/event-rules",
        json={
            "channels": [{"channel": "Partners", "source": "partner.*"}],
            "fallback_channel": "Other",
        },
        headers=auth,
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["rederived"] == {
        "people": 1,
        "created": 0,
        "replaced": 1,
        "unchanged": 0,
        "deleted": 0,
    }
    j = client.get("/v1/journeys/ev:a:anon-1:1", headers=auth).get_json()
    assert j["touchpoints"][0]["channel"] == "Partners"


def test_bad_rules_point_at_the_field(client: FlaskClient, auth: dict[str, str]) -> None:
    r = client.put(
        "/v1/event-rules",
        json={"channels": [{"channel": "X", "medium": "("}], "stages": {"default": "nope"}},
        headers=auth,
    )
    problem = assert_problem(r, 422)
    assert pointers(problem) == ["/channels/0/medium", "/stages/default"]
    assert problem["detail"] == "In the event rules, 2 values are invalid; nothing was changed."
    r = client.put("/v1/event-rules", json={"lookback": 3}, headers=auth)
    assert pointers(assert_problem(r, 422)) == ["/lookback"]
    r = client.put("/v1/event-rules", json={"stages": {"default": "nope"}}, headers=auth)
    problem = assert_problem(r, 422)
    assert problem["detail"] == "In the event rules, 1 value is invalid; nothing was changed."
