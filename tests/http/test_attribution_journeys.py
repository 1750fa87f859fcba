"""Per-journey credit of a run, streamed as CSV or NDJSON."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.helpers import assert_problem, pointers
from tests.http.test_attribution import SMALL, credit, ingest, run, small_journey

COLUMNS = ["journey_id", "channel", "stage", "conversions", "value"]


@pytest.fixture
def small(client: FlaskClient, auth: dict[str, str]) -> None:
    # j6 walks j1's path: the two share that path's credit by conversions and value
    journeys = [*SMALL, ("j6", ["search", "email"], True, 20.0)]
    ingest(client, auth, [small_journey(*j) for j in journeys])


def journey_rows(client: FlaskClient, auth: dict[str, str], run_id: str, **query: str) -> Any:
    response = client.get(
        f"/v1/attribution/runs/{run_id}/journeys", query_string=query, headers=auth
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def parse_csv(text: str) -> list[dict[str, Any]]:
    assert text.splitlines()[0] == ",".join(COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text)))
    for r in rows:
        r["conversions"], r["value"] = float(r["conversions"]), float(r["value"])
        r["stage"] = r["stage"] or None
    return rows


def test_linear_credit_per_journey_by_hand(client, auth, small) -> None:
    out = run(client, auth, models=["linear"])
    response = journey_rows(client, auth, out["run_id"])
    assert response.mimetype == "text/csv"
    got = [
        (r["journey_id"], r["channel"], round(r["conversions"], 9), round(r["value"], 9))
        for r in parse_csv(response.get_data(as_text=True))
    ]
    expected = [
        ("j1", "search", 0.5, 50.0),
        ("j1", "email", 0.5, 50.0),
        ("j2", "social", 0.5, 25.0),
        ("j2", "search", 0.5, 25.0),
        ("j5", "email", 1.0, 30.0),
        ("j6", "search", 0.5, 10.0),
        ("j6", "email", 0.5, 10.0),
    ]
    assert sorted(got) == sorted(expected)


@pytest.mark.parametrize("model", ["markov", "shapley", "time_decay", "position_based"])
def test_each_journey_gets_its_conversion_and_value(client, auth, small, model) -> None:
    out = run(client, auth, models=[model, "last_touch"])
    response = journey_rows(client, auth, out["run_id"], format="ndjson", model=model)
    assert response.mimetype == "application/x-ndjson"
    rows = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert all(list(r) == COLUMNS for r in rows)
    conv: dict[str, float] = defaultdict(float)
    value: dict[str, float] = defaultdict(float)
    for r in rows:
        conv[r["journey_id"]] += r["conversions"]
        value[r["journey_id"]] += r["value"]
    assert conv == pytest.approx({"j1": 1.0, "j2": 1.0, "j5": 1.0, "j6": 1.0})
    assert value == pytest.approx({"j1": 100.0, "j2": 50.0, "j5": 30.0, "j6": 20.0})


@pytest.mark.parametrize("model", ["time_decay", "position_based", "shapley_simple"])
def test_split_models_add_up_to_the_run_table(client, auth, small, model) -> None:
    """Models whose credit is a per-touch split give the channel table back when the
    journeys' rows are summed (Markov and Shapley credit is not a sum of path splits)."""
    out = run(client, auth, models=[model])
    response = journey_rows(client, auth, out["run_id"], format="ndjson")
    by_channel: dict[str, float] = defaultdict(float)
    for line in response.get_data(as_text=True).splitlines():
        row = json.loads(line)
        by_channel[row["channel"]] += row["conversions"]
    expected = {c: v for c, v in credit(out["table"], model).items() if v}
    assert {c: v for c, v in by_channel.items() if v} == pytest.approx(expected)


def test_accept_header_picks_ndjson(client, auth, small) -> None:
    out = run(client, auth, models=["linear"])
    response = client.get(
        f"/v1/attribution/runs/{out['run_id']}/journeys",
        headers={**auth, "Accept": "application/x-ndjson"},
    )
    assert response.mimetype == "application/x-ndjson"


def test_lookback_and_filters_carry_into_the_export(client, auth, small) -> None:
    old = small_journey("old", ["social", "email"], True, 40.0)
    old["touchpoints"][0]["timestamp"] = "2024-01-01T10:00:00Z"
    old["attributes"] = {"region": "apac"}
    ingest(client, auth, [old])
    out = run(
        client, auth, models=["linear"], lookback_days=7, filters={"attributes": {"region": "apac"}}
    )
    rows = parse_csv(journey_rows(client, auth, out["run_id"]).get_data(as_text=True))
    assert [(r["journey_id"], r["channel"], r["conversions"], r["value"]) for r in rows] == [
        ("old", "email", 1.0, 40.0)
    ]


def test_a_run_over_aggregated_paths_alone_has_no_journeys(client, auth) -> None:
    paths = {"paths": [{"path": ["search", "email"], "conversions": 3, "nulls": 2, "value": 30}]}
    assert client.post("/v1/paths", json=paths, headers=auth).status_code == 200
    out = run(client, auth, models=["linear"])
    assert out["totals"]["conversions"] == 3.0
    response = journey_rows(client, auth, out["run_id"])
    assert response.get_data(as_text=True) == ",".join(COLUMNS) + "\r\n"
    assert "no per-journey credit" in response.headers["Pathcredit-Note"]


def test_changed_data_is_a_conflict(client, auth, small) -> None:
    out = run(client, auth, models=["linear"])
    ingest(client, auth, [small_journey("j7", ["social"], True, 5.0)])
    response = client.get(f"/v1/attribution/runs/{out['run_id']}/journeys", headers=auth)
    assert_problem(response, 409)


def test_a_model_outside_the_run_is_refused(client, auth, small) -> None:
    out = run(client, auth, models=["linear"])
    response = client.get(
        f"/v1/attribution/runs/{out['run_id']}/journeys?model=markov", headers=auth
    )
    assert pointers(assert_problem(response, 422)) == ["/query/model"]
