"""`pathcredit demo` data gives a newcomer a journey map worth looking at.

The demo loads the engine's seeded generator through the bulk path; the report built
on it must show what the journey map is for: a funnel that narrows, journeys that loop
back, and drop-off at several stages.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from api.cli import main


@pytest.fixture
def demo_key(
    monkeypatch: pytest.MonkeyPatch, database_url: str, capsys: pytest.CaptureFixture[str]
) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["demo", "--journeys", "3000"]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def rows(client: FlaskClient, key: str, report: str) -> list[dict]:
    response = client.get(f"/v1/reports/{report}", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_demo_data_shows_a_narrowing_funnel_loops_and_dropoff(
    client: FlaskClient, demo_key: str
) -> None:
    funnel = rows(client, demo_key, "funnel")
    stages = [r["stage"] for r in funnel]
    assert stages == ["awareness", "consideration", "decision", "retention", "advocacy"]
    reached = [r["reached"] for r in funnel]
    assert all(n > 0 for n in reached)
    assert reached[-1] < reached[0] / 2
    assert sum(r["dropped_out"] > 0 for r in funnel) >= 4
    assert sum(r["looped_back"] for r in funnel) > 0
    for r in funnel:
        parts = r["moved_on"] + r["converted"] + r["dropped_out"] + r["looped_back"]
        assert parts == pytest.approx(r["reached"])

    loops = rows(client, demo_key, "loops")
    assert loops and all(r["journeys"] > 0 for r in loops)
    assert {(r["from_stage"], r["to_stage"]) for r in loops} - {(None, None)}

    dropoff = rows(client, demo_key, "dropoff")
    assert len({r["stage"] for r in dropoff}) >= 4
    assert all(r["ci_low"] <= r["rate"] <= r["ci_high"] for r in dropoff)

    page = client.get("/report", headers={"Authorization": f"Bearer {demo_key}"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count("<svg") >= 4
    for stage in stages:
        assert stage in html
