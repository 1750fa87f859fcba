"""Date ranges, segment filters and lookback windows change a run exactly as
re-aggregating the matching raw journeys in Python does (property-based)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import store
from attribution import PathSet, attribute
from tests.http.test_attribution import credit

BASE = datetime(2024, 3, 1, tzinfo=UTC)
CHANNELS = ["search", "email", "social"]
DEVICES = ["mobile", "desktop", None]
CAMPAIGNS = ["spring", "brand", None]
MODELS = ["linear", "markov"]


@st.composite
def raw_journey(draw: st.DrawFn, index: int) -> dict[str, Any]:
    """A journey ending on one of five days; touches up to three days before its end."""
    n = draw(st.integers(1, 4))
    end = BASE + timedelta(days=draw(st.integers(0, 4)), hours=20)
    ages = sorted(draw(st.lists(st.integers(0, 72), min_size=n, max_size=n)), reverse=True)
    converted = draw(st.booleans())
    touches = [
        {
            "channel": draw(st.sampled_from(CHANNELS)),
            "timestamp": (end - timedelta(hours=age)).isoformat(),
            "device": draw(st.sampled_from(DEVICES)),
            "campaign": draw(st.sampled_from(CAMPAIGNS)),
        }
        for age in ages
    ]
    if not converted:
        end = end - timedelta(hours=ages[-1])
    return {
        "journey_id": f"j{index}",
        "touchpoints": touches,
        "converted": converted,
        "value": draw(st.sampled_from([0.0, 10.0, 25.5])) if converted else 0.0,
        "converted_at": end.isoformat() if converted else None,
        "attributes": {"plan": draw(st.sampled_from(["pro", "free"]))},
        "_end": end,
    }


journeys = st.integers(1, 12).flatmap(
    lambda n: st.tuples(*(raw_journey(i) for i in range(n))).map(list)
)
days = st.none() | st.integers(0, 4).map(lambda d: (BASE + timedelta(days=d)).date())
selections = st.fixed_dictionaries(
    {},
    optional={
        "date_from": days,
        "date_to": days,
        "plan": st.sampled_from(["pro", "free"]),
        "device": st.sampled_from(["mobile", "desktop"]),
        "campaign": st.sampled_from(["spring", "brand"]),
        "lookback_days": st.integers(1, 3),
    },
)


def matches(j: dict[str, Any], s: dict[str, Any]) -> bool:
    day = j["_end"].date()
    if s.get("date_from") and day < s["date_from"]:
        return False
    if s.get("date_to") and day > s["date_to"]:
        return False
    if "plan" in s and j["attributes"]["plan"] != s["plan"]:
        return False
    if "device" in s and s["device"] not in [t["device"] for t in j["touchpoints"]]:
        return False
    return "campaign" not in s or s["campaign"] in [t["campaign"] for t in j["touchpoints"]]


def window(j: dict[str, Any], s: dict[str, Any]) -> list[str]:
    start = j["_end"] - timedelta(days=s.get("lookback_days", 10_000))
    return [
        t["channel"] for t in j["touchpoints"] if datetime.fromisoformat(t["timestamp"]) >= start
    ]


def expected_table(raw: list[dict[str, Any]], s: dict[str, Any]) -> dict[str, dict[str, float]]:
    picked = [(window(j, s), j) for j in raw if matches(j, s)]
    picked = [(p, j) for p, j in picked if p]
    if not picked:
        return {m: {} for m in MODELS}
    paths = PathSet.from_lists(
        [p for p, _ in picked],
        conversions=[float(j["converted"]) for _, j in picked],
        nulls=[float(not j["converted"]) for _, j in picked],
        value=[j["value"] for _, j in picked],
    )
    return {
        m: {r["channel"]: r["conversions"] for r in attribute(paths, m).to_rows()} for m in MODELS
    }


def body_for(s: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"models": MODELS}
    filters: dict[str, Any] = {}
    if "plan" in s:
        filters["attributes"] = {"plan": s["plan"]}
    for key in ("device", "campaign"):
        if key in s:
            filters[key] = s[key]
    if filters:
        body["filters"] = filters
    for key in ("date_from", "date_to"):
        if s.get(key):
            body[key] = s[key].isoformat()
    if "lookback_days" in s:
        body["lookback_days"] = s["lookback_days"]
    return body


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=journeys, selection=selections)
def test_filters_match_a_python_reaggregation(client, conn, raw, selection) -> None:
    start, end = selection.get("date_from"), selection.get("date_to")
    if start and end and end < start:
        selection["date_from"], selection["date_to"] = end, start
    ws = store.create_workspace(conn, f"w{datetime.now().timestamp()}")
    key = store.create_api_key(conn, ws.workspace_id)
    conn.commit()
    auth = {"Authorization": f"Bearer {key}"}
    sent = [{k: v for k, v in j.items() if k != "_end"} for j in raw]
    assert client.post("/v1/journeys", json={"journeys": sent}, headers=auth).status_code == 200
    response = client.post("/v1/attribution", json=body_for(selection), headers=auth)
    assert response.status_code == 200, response.get_json()
    table = response.get_json()["table"]
    expected = expected_table(raw, selection)
    for model in MODELS:
        got = {c: v for c, v in credit(table, model).items()}
        assert got == pytest.approx(expected[model], rel=1e-9, abs=1e-12), model
