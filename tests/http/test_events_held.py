"""PATHCREDIT_HELD_EVENTS reaches POST /v1/events: a write holding fewer events than it
stores reads the other people's events back and derives the same journeys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.config import Settings
from api.store import events as event_store
from tests.service.test_events_examples import SEGMENT

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, held_events=5)


def test_people_past_the_held_events_are_read_back(
    client: FlaskClient,
    new_key: Callable[[], tuple[int, dict[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read: list[Any] = []
    real = event_store.person_events

    def person_events(*args: Any) -> list[event_store.StoredEvent]:
        found = real(*args)
        read.extend(found)
        return found

    monkeypatch.setattr(event_store, "person_events", person_events)
    _, auth = new_key()
    data = (EXAMPLES / "segment-events.ndjson").read_bytes()
    headers = {**auth, "Content-Type": "application/x-ndjson"}
    r = client.post("/v1/events", data=data, headers=headers)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["stored"] == 13
    # 5 held: the people with any of the other 8 events had theirs read back
    assert 8 <= len(read) < 13
    for j in SEGMENT:
        got = client.get(f"/v1/journeys/{j['journey_id']}", headers=auth).get_json()
        assert got["touchpoints"] == j["touchpoints"], j["journey_id"]
        assert (got["converted"], got["value"]) == (j.get("converted", False), j.get("value", 0))
