"""Test data factories and the one assertion every error test uses."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; returns its body."""
    assert response.status_code == status, (response.status_code, response.get_data(True))
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert set(body) >= PROBLEM_KEYS, body
    assert set(body) <= PROBLEM_KEYS | {"errors"}, body
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    assert isinstance(body["detail"], str) and body["detail"]
    for error in body.get("errors", []):
        assert set(error) == {"pointer", "detail"}, error
    return body  # type: ignore[no-any-return]


def pointers(body: dict[str, Any]) -> list[str]:
    return [e["pointer"] for e in body.get("errors", [])]


def touch(
    channel: str = "email",
    timestamp: str = "2024-03-01T10:00:00Z",
    stage: str | None = "awareness",
    **extra: Any,
) -> dict[str, Any]:
    return {"channel": channel, "stage": stage, "timestamp": timestamp, **extra}


def journey(journey_id: str = "j1", **overrides: Any) -> dict[str, Any]:
    """A valid converting journey of two touches; keyword arguments replace fields."""
    base: dict[str, Any] = {
        "journey_id": journey_id,
        "customer_id": "c1",
        "touchpoints": [
            touch("paid_search", "2024-03-01T10:00:00Z", "awareness"),
            touch("email", "2024-03-02T09:30:00+01:00", "decision", device="mobile"),
        ],
        "converted": True,
        "value": 25.5,
        "converted_at": "2024-03-02T12:00:00Z",
        "attributes": {"region": "emea"},
    }
    base.update(deepcopy(overrides))
    return base


def ndjson(*records: dict[str, Any]) -> bytes:
    import json

    return "".join(json.dumps(r) + "\n" for r in records).encode()
