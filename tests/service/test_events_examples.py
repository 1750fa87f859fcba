"""The example files round trip: events in through ``pathcredit import``, attribution
out, equal to attribution over the journeys built by hand from the same events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from api import store
from api.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODELS = ["last_touch", "first_touch", "linear", "markov", "shapley"]


def touch(channel: str, stage: str, at: str, campaign: str | None = None,
          device: str | None = "desktop") -> dict[str, Any]:  # fmt: skip
    return {"channel": channel, "stage": stage, "timestamp": at, "campaign": campaign,
            "device": device}  # fmt: skip


def journey(jid: str, touches: list[dict[str, Any]], value: float | None, at: str | None):  # type: ignore[no-untyped-def]
    out: dict[str, Any] = {"journey_id": jid, "customer_id": jid.split(":")[2],
                           "touchpoints": touches, "attributes": {"origin": "events"}}  # fmt: skip
    if value is not None:
        out.update(converted=True, value=value, converted_at=at)
    return out


# Built by hand from examples/segment-events.ndjson (see the README's walk-through).
SEGMENT = [
    journey("ev:u:alice:1", [
        touch("Paid Search", "awareness", "2024-03-01T09:00:00+00:00", "spring_sale"),
        touch("Organic Social", "decision", "2024-03-03T19:00:00+00:00", device="mobile"),
    ], 120.0, "2024-03-03T19:10:00+00:00"),
    journey("ev:a:anon-b:1", [
        touch("Email", "decision", "2024-03-02T12:00:00+00:00", "march"),
    ], None, None),
    journey("ev:u:carol:1", [
        touch("Organic Search", "awareness", "2024-03-04T08:00:00+00:00", device="mobile"),
        touch("Direct", "decision", "2024-03-05T21:00:00+00:00"),
    ], 80.0, "2024-03-05T21:05:00+00:00"),
    journey("ev:u:carol:2", [
        touch("Email", "retention", "2024-03-10T10:00:00+00:00", "march"),
    ], None, None),
    journey("ev:a:anon-d:1", [
        touch("Paid Search", "decision", "2024-03-06T15:00:00+00:00"),
    ], 45.0, "2024-03-06T15:20:00+00:00"),
]  # fmt: skip
# From examples/ga4-events.ndjson.
GA4 = [
    journey("ev:u:u-100:1", [
        touch("Paid Search", "awareness", "2024-03-01T10:00:00+00:00", "spring"),
        touch("Organic Search", "decision", "2024-03-02T18:00:00+00:00"),
    ], 59.9, "2024-03-02T18:10:00+00:00"),
    journey("ev:a:222.2:1", [
        touch("Organic Social", "consideration", "2024-03-03T09:00:00+00:00", device="mobile"),
    ], None, None),
    journey("ev:a:333.3:1", [
        touch("Email", "decision", "2024-03-04T20:00:00+00:00", "march"),
    ], 25.0, "2024-03-04T20:03:00+00:00"),
]  # fmt: skip


def imported(
    conn: psycopg.Connection,
    capsys: pytest.CaptureFixture[str],
    name: str,
    fmt: str,
    file: str,
    *options: str,
) -> tuple[dict[str, str], str]:
    assert main(["workspace", "create", name]) == 0
    argv = ["import", str(EXAMPLES / file), "--workspace", name, "--format", fmt, *options]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    workspace = store.get_workspace(conn, name)
    key = store.create_api_key(conn, workspace.workspace_id)
    conn.commit()
    return {"Authorization": f"Bearer {key}"}, out


def attribution(client: FlaskClient, auth: dict[str, str]) -> Any:
    r = client.post("/v1/attribution", json={"models": MODELS}, headers=auth)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    return body["totals"], sorted(
        (row["model"], row["dimension"], row["channel"] or "", row["stage"] or "",
         round(row["conversions"], 9), round(row["value"], 6))
        for row in body["table"]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "file", "expected", "printed"),
    [
        ("segment", "segment-events.ndjson", SEGMENT,
         "14 events: 13 stored, 1 seen before; 4 people: 5 journeys created, 0 replaced, "
         "0 unchanged, 0 deleted"),
        ("ga4", "ga4-events.ndjson", GA4,
         "9 events: 9 stored, 0 seen before; 3 people: 3 journeys created, 0 replaced, "
         "0 unchanged, 0 deleted"),
    ],
)  # fmt: skip
# Held in memory while deriving (the default); with none held, every person's events are
# read back from the database; with 5 held, those of a person with a later event are.
@pytest.mark.parametrize(
    "options",
    [(), ("--hold-events", "0"), ("--hold-events", "5")],
    ids=["held", "read-back", "some-held"],
)
def test_examples_round_trip(
    client: FlaskClient,
    conn: psycopg.Connection,
    new_key: Any,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    fmt: str,
    file: str,
    expected: list[dict[str, Any]],
    printed: str,
    options: tuple[str, ...],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    name = f"{fmt}-{'-'.join(options)}"
    derived, out = imported(conn, capsys, name, fmt, file, *options)
    assert out == printed
    for j in expected:
        got = client.get(f"/v1/journeys/{j['journey_id']}", headers=derived).get_json()
        assert got["touchpoints"] == j["touchpoints"], j["journey_id"]
        assert (got["converted"], got["value"]) == (j.get("converted", False), j.get("value", 0))
    _, by_hand = new_key()
    r = client.post("/v1/journeys", json={"journeys": expected}, headers=by_hand)
    assert r.status_code == 200, r.get_json()
    assert attribution(client, derived) == attribution(client, by_hand)
    # Importing again stores nothing and changes no journey.
    assert main(["import", str(EXAMPLES / file), "--workspace", name, "--format", fmt]) == 0
    assert " 0 stored" in capsys.readouterr().out


def test_segment_example_last_touch(
    client: FlaskClient,
    conn: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    auth, _ = imported(conn, capsys, "shop", "segment", "segment-events.ndjson")
    r = client.post("/v1/attribution", json={"models": ["last_touch"]}, headers=auth)
    rows = {
        row["channel"]: (row["conversions"], row["value"])
        for row in r.get_json()["table"]
        if row["dimension"] == "channel" and row["conversions"]
    }
    assert rows == {
        "Organic Social": (1.0, 120.0),
        "Direct": (1.0, 80.0),
        "Paid Search": (1.0, 45.0),
    }
