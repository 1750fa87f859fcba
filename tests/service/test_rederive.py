"""Deriving a workspace's journeys again after its rules change, as a background job
a step at a time: writes that land between steps are neither lost nor doubled, a
stopped try goes on where it left off, and newer rules supersede older ones. Each
outcome is compared with a second workspace that got the same events under the new
rules from the start (the journeys, and the rollups checked against them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from api import store
from api.service import events, jobs, rederive
from tests.service.test_events_journeys import identify, journeys, order, page

RULES = {"channels": [{"channel": "Partners", "source": "google"}], "session_timeout_minutes": 10}
GOOGLE = "/?utm_source=google&utm_medium=cpc"
MAIL = "/?utm_source=newsletter&utm_medium=email"


def first_events() -> list[dict[str, Any]]:
    """Twelve people (p01..p12): two sessions each 20 minutes apart (one session under
    a 30-minute timeout, two under 10), every third one buying, p04 identified."""
    out: list[dict[str, Any]] = []
    for k in range(1, 13):
        who = f"p{k:02d}"
        out.append(page(f"{who}-1", f"2024-03-{k:02d}T10:00:00Z", who, GOOGLE))
        out.append(page(f"{who}-2", f"2024-03-{k:02d}T10:20:00Z", who, MAIL))
        if k % 3 == 0:
            out.append(order(f"{who}-3", f"2024-03-{k:02d}T10:25:00Z", 10.0 * k, who))
    out.append(identify("p04-id", "2024-03-04T10:30:00Z", "p04", "user-4"))
    return out


def meanwhile() -> list[dict[str, Any]]:
    """Written while the job runs: a late touch of a person already done (p01) and an
    order of one not yet done (p11), a new person, an event sent again, and a link
    merging a person done (p02) with one not yet done (p10)."""
    return [
        page("late-1", "2024-02-28T09:00:00Z", "p01", GOOGLE),
        order("late-2", "2024-03-11T10:40:00Z", 99.0, "p11"),
        page("new-1", "2024-03-20T08:00:00Z", "p99", MAIL),
        page("p05-1", "2024-03-05T10:00:00Z", "p05", GOOGLE),
        identify("merge-1", "2024-03-12T12:00:00Z", "p02", "user-10"),
        identify("merge-2", "2024-03-12T12:00:01Z", "p10", "user-10"),
    ]


def send(client: FlaskClient, auth: dict[str, str], events: list[dict[str, Any]]) -> None:
    r = client.post("/v1/events", json={"batch": events}, headers=auth)
    assert r.status_code == 200, r.get_json()


@pytest.fixture
def db(client: FlaskClient) -> store.Database:
    found = client.application.extensions["pathcredit.db"]
    assert isinstance(found, store.Database)
    return found


@pytest.fixture
def reference(
    client: FlaskClient,
    new_key: Callable[[], tuple[int, dict[str, str]]],
    conn: psycopg.Connection,
) -> list[tuple[Any, ...]]:
    """The journeys of every event, first and meanwhile, under the new rules."""
    ws, auth = new_key()
    assert client.put("/v1/event-rules", json=RULES, headers=auth).status_code == 200
    send(client, auth, first_events())
    send(client, auth, meanwhile())
    return journeys(conn, ws)


def queue_change(db: store.Database, ws: int) -> str:
    found = rederive.change_rules(db, ws, RULES, inline_events=0)
    assert "rederived" not in found
    assert found["rederivation"]["status"] == "queued"
    return str(found["rederivation"]["rederivation_id"])


@pytest.fixture(params=["one chunk", "many chunks"])
def chunks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """As written, or with every person a group of their own and every journey a chunk
    of its own (so the writer's thread merges while the next group is read)."""
    if request.param == "many chunks":
        monkeypatch.setattr(events, "PEOPLE_NODES", 1)
        monkeypatch.setattr(store.JourneyWrite, "CHUNK_ROWS", 1)
        monkeypatch.setattr(store.JourneyWrite, "MERGE_CHUNK_ROWS", 1)


@pytest.mark.usefixtures("chunks")
def test_writes_between_steps_are_neither_lost_nor_doubled(
    client: FlaskClient,
    auth: dict[str, str],
    workspace: Any,
    conn: psycopg.Connection,
    db: store.Database,
    reference: list[tuple[Any, ...]],
) -> None:
    ws = workspace.workspace_id
    send(client, auth, first_events())
    rid = queue_change(db, ws)
    calls = []

    def write_after_the_first_step() -> bool:
        calls.append(1)
        if len(calls) == 2:
            assert rederive.get(db, ws, rid)["ids_done"] == 3
            send(client, auth, meanwhile())
        return False

    rederive.execute(db, ws, rid, stop=write_after_the_first_step, step_ids=3)
    assert len(calls) == 5  # 13 ids at the start (12 people, user-4): 5 steps
    assert journeys(conn, ws) == reference
    done = rederive.get(db, ws, rid)
    assert done["status"] == "succeeded"
    assert (done["ids_done"], done["ids_total"]) == (13, 13)
    assert any(j[0] == "ev:u:user-10:1" for j in reference)  # the merge happened


def test_a_stopped_try_goes_on_after_the_last_step(
    client: FlaskClient,
    auth: dict[str, str],
    workspace: Any,
    conn: psycopg.Connection,
    db: store.Database,
    new_key: Callable[[], tuple[int, dict[str, str]]],
) -> None:
    ws = workspace.workspace_id
    send(client, auth, first_events())
    rid = queue_change(db, ws)
    calls = []

    def stop_before_the_third_step() -> bool:
        calls.append(1)
        return len(calls) == 3

    with pytest.raises(rederive.RetryLater):
        rederive.execute(db, ws, rid, stop=stop_before_the_third_step, step_ids=3)
    stopped = rederive.get(db, ws, rid)
    assert (stopped["status"], stopped["ids_done"]) == ("running", 6)
    rederive.execute(db, ws, rid, step_ids=3)
    done = rederive.get(db, ws, rid)
    assert (done["status"], done["ids_done"], done["ids_total"]) == ("succeeded", 13, 13)
    other, other_auth = new_key()
    assert client.put("/v1/event-rules", json=RULES, headers=other_auth).status_code == 200
    send(client, other_auth, first_events())
    assert journeys(conn, ws) == journeys(conn, other)


def test_newer_rules_supersede_a_queued_rederivation(
    client: FlaskClient,
    auth: dict[str, str],
    workspace: Any,
    conn: psycopg.Connection,
    db: store.Database,
) -> None:
    ws = workspace.workspace_id
    send(client, auth, first_events())
    before = journeys(conn, ws)
    old = rederive.change_rules(db, ws, {"session_timeout_minutes": 10}, inline_events=0)
    old_id = str(old["rederivation"]["rederivation_id"])
    r = client.put("/v1/event-rules", json={}, headers=auth)  # back to the defaults, inline
    assert r.status_code == 200 and r.get_json()["rederived"]["people"] == 12
    assert rederive.get(db, ws, old_id)["status"] == "superseded"
    jobs.work_until_empty(db)  # the old job finds itself superseded and does nothing
    assert rederive.get(db, ws, old_id)["ids_done"] == 0
    assert journeys(conn, ws) == before
