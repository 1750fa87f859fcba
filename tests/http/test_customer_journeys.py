"""GET /v1/customers/{customer_id}/journeys: a person's journeys, derived and sent."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.helpers import assert_problem, journey, pointers, touch


def starting(journey_id: str, customer_id: str, at: str) -> dict[str, Any]:
    """A sent journey of one touch at ``at``."""
    return journey(
        journey_id, customer_id=customer_id, touchpoints=[touch("email", at)], converted_at=None
    )


def seed(client: FlaskClient, auth: dict[str, str]) -> None:
    """anon-1 lands from Google Ads on 1 March and buys as u-1 (linking the two ids);
    journeys sent for anon-1 (1 February), u-1 (1 April, twice at one time) and c9."""
    landing = {
        "type": "page", "messageId": "m1", "anonymousId": "anon-1",
        "timestamp": "2024-03-01T10:00:00Z",
        "context": {"page": {"url": "https://shop.example/?utm_source=google&utm_medium=cpc"}},
    }  # fmt: skip
    order = {
        "type": "track", "event": "Order Completed", "messageId": "m2", "anonymousId": "anon-1",
        "userId": "u-1", "timestamp": "2024-03-01T10:05:00Z", "properties": {"revenue": 40},
    }  # fmt: skip
    r = client.post("/v1/events", json={"batch": [landing, order]}, headers=auth)
    assert r.status_code == 200, r.get_json()
    sent = [
        starting("s-late-b", "u-1", "2024-04-01T08:00:00Z"),
        starting("s-early", "anon-1", "2024-02-01T08:00:00Z"),
        starting("s-late-a", "u-1", "2024-04-01T08:00:00Z"),
        starting("other", "c9", "2024-01-01T08:00:00Z"),
    ]
    assert client.post("/v1/journeys", json={"journeys": sent}, headers=auth).status_code == 200


def test_a_person_s_journeys_by_first_touch(client: FlaskClient, auth: dict[str, str]) -> None:
    seed(client, auth)
    for asked in ("anon-1", "u-1"):
        body = client.get(f"/v1/customers/{asked}/journeys", headers=auth).get_json()
        assert body["customer_id"] == asked
        assert body["ids"] == ["anon-1", "u-1"]
        found = [(j["journey_id"], j["origin"]) for j in body["journeys"]]
        assert found == [
            ("s-early", "sent"),
            ("ev:u:u-1:1", "events"),
            ("s-late-a", "sent"),
            ("s-late-b", "sent"),
        ]
        assert body["next_cursor"] is None
    derived = body["journeys"][1]
    assert derived["customer_id"] == "u-1" and derived["converted"] is True
    assert derived["value"] == 40
    assert [t["channel"] for t in derived["touchpoints"]] == ["Paid Search"]
    assert derived["touchpoints"][0]["timestamp"] == "2024-03-01T10:00:00+00:00"
    other = client.get("/v1/customers/c9/journeys", headers=auth).get_json()
    assert other["ids"] == ["c9"]
    assert [j["journey_id"] for j in other["journeys"]] == ["other"]


def test_pages_follow_the_cursor(client: FlaskClient, auth: dict[str, str]) -> None:
    seed(client, auth)
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/customers/u-1/journeys", query_string=query, headers=auth).get_json()
        seen += [j["journey_id"] for j in body["journeys"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["s-early", "ev:u:u-1:1", "s-late-a", "s-late-b"]
    assert pages == 4
    two = client.get("/v1/customers/u-1/journeys?limit=3", headers=auth).get_json()
    rest = client.get(
        "/v1/customers/u-1/journeys", query_string={"cursor": two["next_cursor"]}, headers=auth
    ).get_json()
    assert [j["journey_id"] for j in rest["journeys"]] == ["s-late-b"]


def test_unknown_customer_and_bad_queries(client: FlaskClient, auth: dict[str, str]) -> None:
    seed(client, auth)
    body = assert_problem(client.get("/v1/customers/nobody/journeys", headers=auth), 404)
    assert "nobody" in body["detail"]
    bad = client.get("/v1/customers/u-1/journeys?cursor=bm9wZQ", headers=auth)
    assert pointers(assert_problem(bad, 422)) == ["/query/cursor"]
    assert_problem(client.get("/v1/customers/u-1/journeys?limit=0", headers=auth), 422)
    assert_problem(client.get("/v1/customers/u-1/journeys?limit=1001", headers=auth), 422)
    assert_problem(client.get("/v1/customers/u-1/journeys"), 401)


def test_an_id_with_events_and_no_journey_is_known(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    """An identify makes no touch, so no journey, but the person is known."""
    ident = {"type": "identify", "messageId": "i1", "userId": "quiet",
             "timestamp": "2024-03-01T10:00:00Z"}  # fmt: skip
    assert client.post("/v1/events", json={"batch": [ident]}, headers=auth).status_code == 200
    body = client.get("/v1/customers/quiet/journeys", headers=auth).get_json()
    assert body == {"customer_id": "quiet", "ids": ["quiet"], "journeys": [], "next_cursor": None}
