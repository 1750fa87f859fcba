"""GET /v1/attribution/series: a range's table spread over its days, each path's
credit landing on the days it converted, so the days add up to the range's table."""

from __future__ import annotations

import csv
import dataclasses
import io
import random
from datetime import date
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from api.app import create_app
from api.service.credit import Spend
from api.service.series import COLUMNS, SPEND_COLUMNS, series_rows
from attribution import MODEL_NAMES
from tests.helpers import assert_problem, journey, pointers, touch
from tests.http.test_attribution import ingest, run

UNIQUE_PATH_MODELS = [m for m in MODEL_NAMES if m != "time_decay"]  # time decay: journeys


def converted(jid: str, channels: list[str], day: int, value: float, **kw: Any) -> dict[str, Any]:
    touches = [touch(c, f"2024-03-0{day}T{10 + i}:00:00Z", None) for i, c in enumerate(channels)]
    at = kw.pop("at", f"2024-03-0{day}T20:00:00Z")
    return journey(jid, touchpoints=touches, converted=value >= 0, value=max(value, 0.0),
                   converted_at=at if value >= 0 else None, **kw)  # fmt: skip


def get_series(client: FlaskClient, auth: dict[str, str], **query: str) -> list[dict[str, Any]]:
    response = client.get("/v1/attribution/series", query_string=query, headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def cells(rows: list[dict[str, Any]], model: str) -> dict[tuple[str, str], tuple[float, float]]:
    return {
        (r["day"], r["channel"]): (r["conversions"], r["value"])
        for r in rows
        if r["model"] == model
    }


@pytest.fixture
def two_days(client: FlaskClient, auth: dict[str, str]) -> None:
    """Path search > email converts once on each day (value 100, then 50); path email
    once on day 1 (30); path search does not convert (day 2)."""
    ingest(client, auth, [
        converted("j1", ["search", "email"], 1, 100.0),
        converted("j2", ["search", "email"], 2, 50.0),
        converted("j3", ["email"], 1, 30.0),
        converted("j4", ["search"], 2, -1),
    ])  # fmt: skip


def test_a_hand_worked_series_of_two_days_and_two_paths(client, auth, two_days) -> None:
    rows = get_series(client, auth, date_from="2024-03-01", date_to="2024-03-02",
                      models="linear,last_touch")  # fmt: skip
    assert [list(r) for r in rows[:1]] == [[*COLUMNS, *SPEND_COLUMNS]]
    assert [(r["day"], r["model"], r["channel"]) for r in rows[:4]] == [
        ("2024-03-01", "linear", "search"), ("2024-03-01", "linear", "email"),
        ("2024-03-01", "last_touch", "search"), ("2024-03-01", "last_touch", "email"),
    ]  # fmt: skip
    # linear: search > email gives each channel 1 of its 2 conversions and 75 of its
    # 150, landing 1/2 of the conversions and 100/150 of the value on day 1
    assert cells(rows, "linear") == {
        ("2024-03-01", "search"): (0.5, 50.0),
        ("2024-03-01", "email"): (1.5, 80.0),  # and all of path email
        ("2024-03-02", "search"): (0.5, 25.0),
        ("2024-03-02", "email"): (0.5, 25.0),
    }
    assert cells(rows, "last_touch") == {
        ("2024-03-01", "search"): (0.0, 0.0),
        ("2024-03-01", "email"): (2.0, 130.0),
        ("2024-03-02", "search"): (0.0, 0.0),
        ("2024-03-02", "email"): (1.0, 50.0),
    }


def test_the_series_comes_as_csv_with_the_same_columns(client, auth, two_days) -> None:
    query = {"date_from": "2024-03-02", "date_to": "2024-03-02", "models": "linear",
             "format": "csv"}  # fmt: skip
    response = client.get("/v1/attribution/series", query_string=query, headers=auth)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    got = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    no_spend = ["", "", ""]
    assert got == [
        [*COLUMNS, *SPEND_COLUMNS],
        ["2024-03-02", "linear", "channel", "search", "", "0.5", "25", *no_spend],
        ["2024-03-02", "linear", "channel", "email", "", "0.5", "25", *no_spend],
    ]


@pytest.mark.parametrize(
    ("models", "grouped", "segment"),
    [
        (UNIQUE_PATH_MODELS, False, False),
        (UNIQUE_PATH_MODELS, True, False),
        (list(MODEL_NAMES), True, False),
        (UNIQUE_PATH_MODELS, False, True),
    ],
    ids=["rollups", "rollups-grouped", "journeys-grouped", "segment-and-lookback"],
)
def test_the_days_sum_to_the_range_table_for_every_model(
    client, auth, models, grouped, segment
) -> None:
    rng = random.Random(7)
    channels = ["search", "email", "social", "display"]
    journeys = []
    for k in range(60):
        path = [rng.choice(channels) for _ in range(rng.randint(1, 4))]
        value = rng.choice([-1, 0.0, 10.0, 25.5, 80.0])
        day, device = rng.randint(1, 4), rng.choice(["mobile", "desktop"])
        # touches from 10:00 on one day, the conversion at 11:30 the next: a day's
        # lookback keeps the touches after 11:30
        late = {"at": f"2024-03-0{day + 1}T11:30:00Z"} if segment and value >= 0 else {}
        journeys.append(converted(f"j{k}", path, day, value, attributes={"d": device}, **late))
    ingest(client, auth, journeys)
    client_path = {"path": ["social", "email"], "conversions": 3, "nulls": 2, "value": 40,
                   "date": "2024-03-03"}  # fmt: skip
    response = client.post("/v1/paths", json={"paths": [client_path]}, headers=auth)
    assert response.status_code == 200, response.get_json()
    query = {"date_from": "2024-03-02", "date_to": "2024-03-04"}  # day 1 left out
    body: dict[str, Any] = dict(query)
    if grouped:
        query |= {"collapse_repeats": "true", "channel_groups": '{"display": "social"}'}
        body |= {"collapse_repeats": True, "channel_groups": {"display": "social"}}
    if segment:  # read from the journeys, touches trimmed
        query |= {"attributes": '{"d": "mobile"}', "lookback_days": "1"}
        body |= {"filters": {"attributes": {"d": "mobile"}}, "lookback_days": 1}
    rows = get_series(client, auth, models=",".join(models), **query)
    table = run(client, auth, models=models, **body)["table"]
    assert {r["day"] for r in rows} == {"2024-03-02", "2024-03-03", "2024-03-04"}
    for model in models:
        expected = {
            r["channel"]: (r["conversions"], r["value"])
            for r in table
            if r["model"] == model and r["dimension"] == "channel"
        }
        summed: dict[str, np.ndarray] = {}
        for (_, channel), amounts in cells(rows, model).items():
            summed[channel] = summed.get(channel, np.zeros(2)) + amounts
        assert set(summed) == set(expected), model
        for channel, (conv, value) in expected.items():
            assert summed[channel] == pytest.approx([conv, value], rel=1e-9, abs=1e-9), (
                model, channel)  # fmt: skip


def test_days_follow_the_workspace_time_zone(client, auth) -> None:
    ingest(client, auth, [converted("j1", ["email"], 1, 10.0, at="2024-03-01T23:30:00Z")])
    query = {"date_from": "2024-03-01", "date_to": "2024-03-02", "models": "last_touch"}
    assert cells(get_series(client, auth, **query), "last_touch")[("2024-03-01", "email")] == (
        1.0, 10.0)  # fmt: skip
    response = client.put("/v1/settings", json={"time_zone": "Asia/Tokyo"}, headers=auth)
    assert response.status_code == 200, response.get_json()
    for model in ("last_touch", "time_decay"):  # from the rollups, and from journeys
        got = cells(get_series(client, auth, **{**query, "models": model}), model)
        assert (got[("2024-03-01", "email")], got[("2024-03-02", "email")]) == ((0, 0), (1, 10))


def test_an_empty_range_has_no_rows_and_says_why(client, auth, two_days) -> None:
    query = {"date_from": "2025-01-01", "date_to": "2025-01-02"}
    response = client.get("/v1/attribution/series", query_string=query, headers=auth)
    assert (response.status_code, response.get_json()) == (200, [])
    assert response.headers.get_all("Pathcredit-Warning")


@pytest.mark.parametrize(
    ("query", "pointer"),
    [
        ({"date_to": None}, "/query/date_to"),
        ({"date_from": None}, "/query/date_from"),
        ({"date_from": "2024-03-02", "date_to": "2024-03-01"}, "/query/date_to"),
        ({"date_from": "2020-01-01", "date_to": "2024-03-01"}, "/query/date_to"),
        ({"models": "nope"}, "/query/models/0"),
    ],
)
def test_queries_a_series_cannot_answer_are_422(client, auth, two_days, query, pointer) -> None:
    full = {"date_from": "2024-03-01", "date_to": "2024-03-02", **query}
    full = {k: v for k, v in full.items() if v is not None}
    response = client.get("/v1/attribution/series", query_string=full, headers=auth)
    assert pointer in pointers(assert_problem(response, 422))


def test_spend_adds_cost_per_conversion_and_return_on_spend() -> None:
    grids = {"linear": (np.array([[2.0, 0.0]]), np.array([[50.0, 0.0]]))}
    keys = (("channel", "search", None), ("channel", "email", None))
    by_key = {("search", None): 20.0, ("email", "weekly"): 5.0}
    spend = {date(2024, 3, 1): Spend("EUR", by_key)}
    rows = series_rows(date(2024, 3, 1), keys, grids, spend)
    assert [{k: r[k] for k in SPEND_COLUMNS} for r in rows] == [
        {"spend": 20.0, "cost_per_conversion": 10.0, "roas": 2.5},
        {"spend": 5.0, "cost_per_conversion": None, "roas": 0.0},
    ]
    assert list(series_rows(date(2024, 3, 1), keys, grids)[0]) == list(COLUMNS)


def test_stored_spend_lands_on_its_day(client, auth, two_days) -> None:
    """Linear on the two days above: search earns 0.5 conversions and 50 of value on
    day 1; 20 spent on search that day (10 + 10 of two campaigns) costs 40 a conversion
    and returns 2.5; a day and channel without spend leave the three columns null."""
    spend = [
        {"date": "2024-03-01", "channel": "search", "campaign": "a", "amount": 10},
        {"date": "2024-03-01", "channel": "search", "campaign": "b", "amount": 10},
    ]
    assert client.put("/v1/spend", json={"spend": spend}, headers=auth).status_code == 200
    rows = get_series(client, auth, date_from="2024-03-01", date_to="2024-03-02", models="linear")
    by_key = {(r["day"], r["channel"]): r for r in rows}
    day1 = by_key[("2024-03-01", "search")]
    assert (day1["spend"], day1["cost_per_conversion"], day1["roas"]) == (20.0, 40.0, 2.5)
    quiet = by_key[("2024-03-02", "search")]
    assert (quiet["spend"], quiet["cost_per_conversion"], quiet["roas"]) == (None, None, None)


def test_spend_no_journey_touched_gets_rows_of_its_own(client, auth, two_days) -> None:
    """15 spent on tv on day 2, where no journey has a tv touch: tv gets a row every
    day for every model, with no credit; its spend shows on day 2 only (no cost per
    conversion without conversions, a return of 0), as the range table reports it."""
    spend = [{"date": "2024-03-02", "channel": "tv", "amount": 15}]
    assert client.put("/v1/spend", json={"spend": spend}, headers=auth).status_code == 200
    query = {"date_from": "2024-03-01", "date_to": "2024-03-02", "models": "linear,markov"}
    rows = get_series(client, auth, **query)
    tv = [r for r in rows if r["channel"] == "tv"]
    assert [(r["day"], r["model"]) for r in tv] == [
        ("2024-03-01", "linear"), ("2024-03-01", "markov"),
        ("2024-03-02", "linear"), ("2024-03-02", "markov"),
    ]  # fmt: skip
    assert all(r["conversions"] == 0 and r["value"] == 0 for r in tv)
    assert [(r["spend"], r["cost_per_conversion"], r["roas"]) for r in tv] == [
        (None, None, None), (None, None, None), (15.0, None, 0.0), (15.0, None, 0.0)
    ]  # fmt: skip
    table = client.get("/v1/attribution/table", query_string=query, headers=auth).get_json()
    in_table = {(r["model"], r["channel"]) for r in table if r["dimension"] == "channel"}
    assert {(r["model"], r["channel"]) for r in rows} == in_table


def test_models_over_the_work_budget_are_422(settings, auth, two_days) -> None:
    app = create_app(dataclasses.replace(settings, sync_work_budget=1))
    try:
        query = {"date_from": "2024-03-01", "date_to": "2024-03-02", "models": "shapley"}
        response = app.test_client().get("/v1/attribution/series", query_string=query,
                                         headers=auth)  # fmt: skip
        assert pointers(assert_problem(response, 422)) == ["/query/models"]
    finally:
        app.extensions["pathcredit.db"].close()
        app.extensions["pathcredit.probe_db"].close()


def test_markov_choosing_its_own_order_is_estimated_and_runs(client, auth, two_days) -> None:
    query = {"date_from": "2024-03-01", "date_to": "2024-03-02", "models": "markov",
             "options": '{"markov": {"order": "auto", "n_folds": 2}}'}  # fmt: skip
    rows = get_series(client, auth, **query)
    table = run(client, auth, models=["markov"], date_from="2024-03-01", date_to="2024-03-02",
                options={"markov": {"order": "auto", "n_folds": 2}})["table"]  # fmt: skip
    total = sum(r["conversions"] for r in table if r["dimension"] == "channel")
    assert sum(r["conversions"] for r in rows) == pytest.approx(total) == 3.0
