"""PUT /v1/event-rules in a workspace over PATHCREDIT_REDERIVE_INLINE_EVENTS: 202, a
re-derivation to poll, and a worker that derives the journeys again."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from api.config import Settings
from api.service import jobs
from tests.helpers import assert_problem

INLINE = 2  # events re-derived in the request; more go to the queue
GOOGLE = "https://shop.example/?utm_source=google&utm_medium=cpc"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, pool_size=2, rederive_inline_events=INLINE)


def landing(mid: str, who: str, at: str) -> dict[str, Any]:
    return {"type": "page", "messageId": mid, "anonymousId": who, "timestamp": at,
            "context": {"page": {"url": GOOGLE}}}  # fmt: skip


def channels(client: FlaskClient, auth: dict[str, str], journey_id: str) -> list[str]:
    got = client.get(f"/v1/journeys/{journey_id}", headers=auth).get_json()
    return [t["channel"] for t in got["touchpoints"]]


def test_a_large_workspace_is_derived_again_by_a_job(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    batch = [landing("m1", "a1", "2024-03-01T10:00:00Z"),
             landing("m2", "a2", "2024-03-01T11:00:00Z"),
             landing("m3", "a3", "2024-03-01T12:00:00Z")]  # fmt: skip
    assert client.post("/v1/events", json={"batch": batch}, headers=auth).status_code == 200
    rules = {"channels": [{"channel": "Partners", "source": "google"}]}
    r = client.put("/v1/event-rules", json=rules, headers=auth)
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert body["channels"] == [{"channel": "Partners", "source": "google"}]
    assert "rederived" not in body
    queued = body["rederivation"]
    assert (queued["status"], queued["events"]) == ("queued", 3)
    assert queued["progress"] == {"done": 0, "total": None}
    location = r.headers["Location"]
    assert location == f"/v1/event-rules/rederivations/{queued['rederivation_id']}"
    assert client.get(location, headers=auth).get_json() == queued
    assert channels(client, auth, "ev:a:a1:1") == ["Paid Search"]  # not yet
    jobs.work_until_empty(client.application.extensions["pathcredit.db"])
    done = client.get(location, headers=auth).get_json()
    assert done["status"] == "succeeded" and done["error"] is None
    assert done["progress"] == {"done": 3, "total": 3}
    assert done["people"] == 3
    assert done["journeys"] == {"created": 0, "replaced": 3, "unchanged": 0, "deleted": 0}
    for jid in ("ev:a:a1:1", "ev:a:a2:1", "ev:a:a3:1"):
        assert channels(client, auth, jid) == ["Partners"]


def test_a_small_workspace_is_derived_again_in_the_request(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    batch = [landing("m1", "a1", "2024-03-01T10:00:00Z")]
    assert client.post("/v1/events", json={"batch": batch}, headers=auth).status_code == 200
    rules = {"channels": [{"channel": "Partners", "source": "google"}]}
    r = client.put("/v1/event-rules", json=rules, headers=auth)
    assert r.status_code == 200 and "Location" not in r.headers
    assert r.get_json()["rederived"] == {
        "people": 1, "created": 0, "replaced": 1, "unchanged": 0, "deleted": 0,
    }  # fmt: skip
    assert channels(client, auth, "ev:a:a1:1") == ["Partners"]


def test_unknown_rederivation_is_404(client: FlaskClient, auth: dict[str, str]) -> None:
    url = "/v1/event-rules/rederivations/00000000-0000-0000-0000-000000000000"
    assert_problem(client.get(url, headers=auth), 404)
    assert_problem(client.get("/v1/event-rules/rederivations/nope", headers=auth), 404)
