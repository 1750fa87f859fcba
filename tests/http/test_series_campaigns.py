"""GET /v1/attribution/series with ``campaigns``: a ``campaign`` row per day for every
channel-campaign pair of the range's table, each day's channel rows the sums of its
campaign rows, and the days adding up to the campaign run's table.

The hand-worked journeys are those of ``tests/attribution/test_campaigns.py`` (its
docstring works out Markov's numbers: search:brand 0.4 conversions and 37.5 of value,
search:generic 0.8 and 37.5, email:weekly 0.8 and 75), spread over two days:

====  ===  ==============================  =========  =====
id    day  touches                         converted  value
====  ===  ==============================  =========  =====
j1    1    search:brand > email:weekly     yes        100
j3    1    email:weekly                    no         0
j2    2    search:generic                  yes        50
j4    2    search:brand                    no         0
====  ===  ==============================  =========  =====

Each pair's credit lands on the converting journeys that touch it: brand and weekly
only on j1 (day 1), generic only on j2 (day 2).
"""

from __future__ import annotations

import csv
import io
import random
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.service.runs import NO_CAMPAIGNS
from api.service.series import COLUMNS, SPEND_COLUMNS
from attribution import MODEL_NAMES
from tests.helpers import journey, touch
from tests.http.test_attribution import ingest, run

DAY1, DAY2 = "2024-03-01", "2024-03-02"
RANGE = {"date_from": DAY1, "date_to": DAY2}

Touches = list[tuple[str, str | None]]


def record(jid: str, day: int, touches: Touches, value: float | None) -> dict[str, Any]:
    """A journey of ``touches`` (channel, campaign) from 08:00 on 2024-03-0``day``,
    converting at 20:00 with ``value`` (not converting when None)."""
    points = [
        touch(c, f"2024-03-0{day}T{8 + i:02d}:00:00Z", None, **({"campaign": k} if k else {}))
        for i, (c, k) in enumerate(touches)
    ]
    at = None if value is None else f"2024-03-0{day}T20:00:00Z"
    return journey(
        jid, touchpoints=points, converted=value is not None, value=value or 0.0, converted_at=at
    )


EXAMPLE = [
    record("j1", 1, [("search", "brand"), ("email", "weekly")], 100.0),
    record("j3", 1, [("email", "weekly")], None),
    record("j2", 2, [("search", "generic")], 50.0),
    record("j4", 2, [("search", "brand")], None),
]


def get_series(client: FlaskClient, auth: dict[str, str], **query: str) -> list[dict[str, Any]]:
    response = client.get("/v1/attribution/series", query_string=query, headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


Cell = tuple[str, str, str, str | None]
"""(day, dimension, channel, campaign)"""


def cells(rows: list[dict[str, Any]], model: str) -> dict[Cell, tuple[float, float]]:
    return {
        (r["day"], r["dimension"], r["channel"], r["campaign"]): (r["conversions"], r["value"])
        for r in rows
        if r["model"] == model
    }


@pytest.fixture
def example(client: FlaskClient, auth: dict[str, str]) -> None:
    ingest(client, auth, EXAMPLE)


def test_a_hand_worked_campaign_series(client, auth, example) -> None:
    rows = get_series(client, auth, models="linear,markov", campaigns='{"top_n": 20}', **RANGE)
    assert list(rows[0]) == [*COLUMNS, *SPEND_COLUMNS]
    zero = (0.0, 0.0)
    # linear: j1 gives brand and weekly half of its 1 conversion and 100; j2 all to generic
    assert cells(rows, "linear") == {
        (DAY1, "channel", "search", None): (0.5, 50.0),
        (DAY1, "channel", "email", None): (0.5, 50.0),
        (DAY1, "campaign", "search", "brand"): (0.5, 50.0),
        (DAY1, "campaign", "search", "generic"): zero,
        (DAY1, "campaign", "email", "weekly"): (0.5, 50.0),
        (DAY2, "channel", "search", None): (1.0, 50.0),
        (DAY2, "channel", "email", None): zero,
        (DAY2, "campaign", "search", "brand"): zero,
        (DAY2, "campaign", "search", "generic"): (1.0, 50.0),
        (DAY2, "campaign", "email", "weekly"): zero,
    }
    markov = cells(rows, "markov")
    expected = {
        (DAY1, "channel", "search", None): (0.4, 37.5),
        (DAY1, "channel", "email", None): (0.8, 75.0),
        (DAY1, "campaign", "search", "brand"): (0.4, 37.5),
        (DAY1, "campaign", "search", "generic"): zero,
        (DAY1, "campaign", "email", "weekly"): (0.8, 75.0),
        (DAY2, "channel", "search", None): (0.8, 37.5),
        (DAY2, "channel", "email", None): zero,
        (DAY2, "campaign", "search", "brand"): zero,
        (DAY2, "campaign", "search", "generic"): (0.8, 37.5),
        (DAY2, "campaign", "email", "weekly"): zero,
    }
    assert set(markov) == set(expected)
    for key, amounts in expected.items():
        assert markov[key] == pytest.approx(amounts, rel=1e-12, abs=1e-12), key
    # each day: the day's channel rows first, then its pairs, as in the run's table
    assert [(r["dimension"], r["channel"], r["campaign"]) for r in rows[:5]] == [
        ("channel", "search", None), ("channel", "email", None),
        ("campaign", "search", "brand"), ("campaign", "search", "generic"),
        ("campaign", "email", "weekly"),
    ]  # fmt: skip


def summed_days(rows: list[dict[str, Any]], model: str) -> dict[tuple[str, str, Any], list[float]]:
    out: dict[tuple[str, str, Any], list[float]] = {}
    for (_, dimension, channel, campaign), (conv, value) in cells(rows, model).items():
        total = out.setdefault((dimension, channel, campaign), [0.0, 0.0])
        total[0] += conv
        total[1] += value
    return out


def assert_day_marginals(rows: list[dict[str, Any]], model: str) -> None:
    """Each day's channel row is the sum of that day's campaign rows of the channel."""
    mine = cells(rows, model)
    for (day, dimension, channel, _), amounts in mine.items():
        if dimension != "channel":
            continue
        parts = [v for k, v in mine.items() if k[:3] == (day, "campaign", channel)]
        assert parts, (model, day, channel)
        for i in (0, 1):
            assert sum(p[i] for p in parts) == pytest.approx(amounts[i], rel=1e-9, abs=1e-9), (
                model, day, channel)  # fmt: skip


def random_journeys(seed: int, n: int) -> list[dict[str, Any]]:
    """Journeys over four days, touches with one of four campaigns or none."""
    rng = random.Random(seed)
    channels = ["search", "email", "social"]
    out = []
    for k in range(n):
        touches: Touches = []
        for _ in range(rng.randint(1, 4)):
            c = rng.choice(channels)
            touches.append((c, rng.choice([None, f"{c}-a", f"{c}-b", f"{c}-c", f"{c}-d"])))
        value = rng.choice([None, 0.0, 10.0, 25.5, 80.0])
        out.append(record(f"r{k}", rng.randint(1, 4), touches, value))
    return out


@pytest.mark.parametrize(
    ("models", "grouped"),
    [(list(MODEL_NAMES), False), (["linear", "markov", "time_decay"], True)],
    ids=["every-model", "grouped-and-collapsed"],
)
def test_the_days_sum_to_the_campaign_runs_table(client, auth, models, grouped) -> None:
    """Two campaigns per channel kept, the rest as (other), touches without one as
    (not set); day 1 is outside the range."""
    ingest(client, auth, random_journeys(5, 80))
    query = {"date_from": "2024-03-02", "date_to": "2024-03-04", "campaigns": '{"top_n": 2}'}
    body: dict[str, Any] = {"date_from": "2024-03-02", "date_to": "2024-03-04",
                            "campaigns": {"top_n": 2}}  # fmt: skip
    if grouped:
        query |= {"collapse_repeats": "true", "channel_groups": '{"social": "email"}'}
        body |= {"collapse_repeats": True, "channel_groups": {"social": "email"}}
    rows = get_series(client, auth, models=",".join(models), **query)
    table = run(client, auth, models=models, **body)["table"]
    assert {r["day"] for r in rows} == {"2024-03-02", "2024-03-03", "2024-03-04"}
    labels = {r["campaign"] for r in rows if r["dimension"] == "campaign"}
    assert {"(other)", "(not set)"} <= labels
    for model in models:
        assert_day_marginals(rows, model)
        expected = {
            (r["dimension"], r["channel"], r["campaign"]): [r["conversions"], r["value"]]
            for r in table
            if r["model"] == model
        }
        summed = summed_days(rows, model)
        assert set(summed) == set(expected), model
        for key, amounts in expected.items():
            assert summed[key] == pytest.approx(amounts, rel=1e-9, abs=1e-9), (model, key)


def test_spend_per_day_and_campaign(client, auth, example) -> None:
    """One campaign kept per channel: search keeps brand (two touches), generic is
    search's (other). Linear on day 1 credits brand 0.5 and 50, on day 2 (other) 1
    and 50. Spend: day 1 brand 10 and search without a campaign 3; day 2 generic 4
    and summer (no touch) 6, both in (other). Spend without a campaign gets a
    (not set) row of its own, as in the range table, though no touch lacks a campaign."""
    spend = [
        {"date": DAY1, "channel": "search", "campaign": "brand", "amount": 10},
        {"date": DAY1, "channel": "search", "amount": 3},
        {"date": DAY2, "channel": "search", "campaign": "generic", "amount": 4},
        {"date": DAY2, "channel": "search", "campaign": "summer", "amount": 6},
    ]
    assert client.put("/v1/spend", json={"spend": spend}, headers=auth).status_code == 200
    rows = get_series(client, auth, models="linear", campaigns='{"top_n": 1}', **RANGE)
    got = {
        (r["day"], r["channel"], r["campaign"]): (r["spend"], r["cost_per_conversion"], r["roas"])
        for r in rows
    }
    assert got == {
        (DAY1, "search", None): (13.0, 26.0, 50.0 / 13.0),
        (DAY1, "email", None): (None, None, None),
        (DAY1, "search", "brand"): (10.0, 20.0, 5.0),
        (DAY1, "search", "(other)"): (None, None, None),
        (DAY1, "search", "(not set)"): (3.0, None, 0.0),
        (DAY1, "email", "weekly"): (None, None, None),
        (DAY2, "search", None): (10.0, 10.0, 5.0),
        (DAY2, "email", None): (None, None, None),
        (DAY2, "search", "brand"): (None, None, None),
        (DAY2, "search", "(other)"): (10.0, 10.0, 5.0),
        (DAY2, "search", "(not set)"): (None, None, None),
        (DAY2, "email", "weekly"): (None, None, None),
    }
    table = run(client, auth, models=["linear"], campaigns={"top_n": 1}, **RANGE)["table"]
    assert {(r["channel"], r["campaign"]) for r in table} == {
        (r["channel"], r["campaign"]) for r in rows
    }


def test_the_campaign_series_comes_as_csv(client, auth, example) -> None:
    query = {"models": "linear", "campaigns": '{"top_n": 20}', "format": "csv",
             "date_from": DAY2, "date_to": DAY2}  # fmt: skip
    response = client.get("/v1/attribution/series", query_string=query, headers=auth)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    got = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    none = ["", "", ""]
    assert got == [
        [*COLUMNS, *SPEND_COLUMNS],
        [DAY2, "linear", "channel", "search", "", "1", "50", *none],
        [DAY2, "linear", "campaign", "search", "brand", "0", "0", *none],  # j4: no conversion
        [DAY2, "linear", "campaign", "search", "generic", "1", "50", *none],
    ]


def test_without_campaigns_in_the_data_the_series_says_so(client, auth) -> None:
    ingest(client, auth, [record("j1", 1, [("search", None)], 10.0)])
    query = {"models": "linear", "campaigns": "{}", **RANGE}
    response = client.get("/v1/attribution/series", query_string=query, headers=auth)
    assert response.status_code == 200
    assert {r["dimension"] for r in response.get_json()} == {"channel"}
    assert NO_CAMPAIGNS in response.headers.get_all("Pathcredit-Warning")


def test_a_saved_reports_series_credits_its_campaigns(client, auth, example) -> None:
    report = {"name": "camps", "models": ["markov"], "campaigns": {"top_n": 1}, **RANGE}
    assert client.post("/v1/saved-reports", json=report, headers=auth).status_code == 201
    saved = client.get("/v1/saved-reports/camps/series", headers=auth)
    assert saved.status_code == 200, saved.get_json()
    direct = get_series(client, auth, models="markov", campaigns='{"top_n": 1}', **RANGE)
    assert saved.get_json() == direct
    assert {r["campaign"] for r in direct} == {None, "brand", "(other)", "weekly"}


def test_client_paths_are_left_out_and_the_series_says_why(client, auth, example) -> None:
    """A campaign series reads raw journeys, as a campaign run does: a client path
    dated in the range adds nothing, and a warning names the campaign breakdown."""
    path = {"path": ["search"], "conversions": 5, "nulls": 0, "value": 500, "date": DAY1}
    assert client.post("/v1/paths", json={"paths": [path]}, headers=auth).status_code == 200
    query = {"models": "linear", "campaigns": '{"top_n": 20}', **RANGE}
    response = client.get("/v1/attribution/series", query_string=query, headers=auth)
    assert response.status_code == 200
    total = sum(r["conversions"] for r in response.get_json() if r["dimension"] == "channel")
    assert total == 2.0  # j1 and j2
    notes = response.headers.get_all("Pathcredit-Warning")
    assert any("1 client-aggregated paths" in n and "campaign breakdown" in n for n in notes)
