"""Campaign credit over HTTP: a run with ``campaigns`` credits channel x campaign pairs.

The four journeys are those of ``tests/attribution/test_campaigns.py``, whose
docstring works out every number by hand (b = search:brand, g = search:generic,
w = email:weekly): Markov credits 0.4, 0.8, 0.8 conversions and 37.5, 37.5, 75 of
value with removal effects 1/4, 1/2, 1/2 (search 3/4, email 1/2); the Markov game's
Shapley values credit 0.25, 1.0, 0.75 and 25, 50, 75.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import psycopg
import pytest
from flask.testing import FlaskClient

from api.service import credit, jobs
from api.service.export import CAMPAIGNS_NOTE
from api.service.runs import NO_CAMPAIGNS
from attribution import MODEL_NAMES
from tests.helpers import assert_problem, journey, pointers, touch

HOUR = "2024-03-01T{:02d}:00:00Z"

# (journey id, [(channel, campaign)], converted, value)
EXAMPLE = [
    ("j1", [("search", "brand"), ("email", "weekly")], True, 100.0),
    ("j2", [("search", "generic")], True, 50.0),
    ("j3", [("email", "weekly")], False, 0.0),
    ("j4", [("search", "brand")], False, 0.0),
]

HAND_WORKED = {
    "first_touch": {"brand": (1, 100), "generic": (1, 50), "weekly": (0, 0)},
    "last_touch": {"brand": (0, 0), "generic": (1, 50), "weekly": (1, 100)},
    "linear": {"brand": (0.5, 50), "generic": (1, 50), "weekly": (0.5, 50)},
    "markov": {"brand": (0.4, 37.5), "generic": (0.8, 37.5), "weekly": (0.8, 75)},
    "shapley": {"brand": (0.25, 25), "generic": (1.0, 50), "weekly": (0.75, 75)},
}
CHANNEL_OF = {"brand": "search", "generic": "search", "weekly": "email"}


def record(jid: str, touches: list[tuple[str, str | None]], converted: bool, value: float) -> Any:
    points = []
    for i, (channel, campaign) in enumerate(touches):
        extra = {} if campaign is None else {"campaign": campaign}
        points.append(touch(channel, HOUR.format(8 + i), None, **extra))
    return journey(
        jid,
        touchpoints=points,
        converted=converted,
        value=value,
        converted_at=HOUR.format(20) if converted else None,
    )


def ingest(client: FlaskClient, auth: dict[str, str], records: list[Any]) -> None:
    response = client.post("/v1/journeys", json={"journeys": records}, headers=auth)
    assert response.status_code == 200, response.get_json()


def run(client: FlaskClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/v1/attribution", json=body, headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def rows_of(table: list[dict[str, Any]], model: str, dimension: str) -> list[dict[str, Any]]:
    return [r for r in table if r["model"] == model and r["dimension"] == dimension]


def assert_marginals(table: list[dict[str, Any]], model: str) -> None:
    """Each channel row is the sum of that channel's campaign rows."""
    channels = rows_of(table, model, "channel")
    pairs = rows_of(table, model, "campaign")
    assert pairs, model
    for row in channels:
        mine = [r for r in pairs if r["channel"] == row["channel"]]
        for field in ("conversions", "value"):
            assert sum(r[field] for r in mine) == pytest.approx(row[field], abs=1e-9), model


@pytest.fixture
def example(client: FlaskClient, auth: dict[str, str]) -> None:
    ingest(client, auth, [record(*j) for j in EXAMPLE])


def test_campaign_credit_by_hand(client, auth, example) -> None:
    out = run(client, auth, models=list(HAND_WORKED), campaigns={})
    assert out["parameters"]["campaigns"] == {"top_n": 20}
    table = out["table"]
    assert {r["dimension"] for r in table} == {"channel", "campaign"}
    for model, want in HAND_WORKED.items():
        got = {
            (r["channel"], r["campaign"]): (r["conversions"], r["value"])
            for r in rows_of(table, model, "campaign")
        }
        assert got == {
            (CHANNEL_OF[k], k): pytest.approx(v, rel=1e-12, abs=1e-12) for k, v in want.items()
        }
        assert_marginals(table, model)
    effects = {
        (r["dimension"], r["channel"], r["campaign"]): r["removal_effect"]
        for r in table
        if r["model"] == "markov"
    }
    assert effects == pytest.approx(
        {
            ("channel", "search", None): 0.75,
            ("channel", "email", None): 0.5,
            ("campaign", "search", "brand"): 0.25,
            ("campaign", "search", "generic"): 0.5,
            ("campaign", "email", "weekly"): 0.5,
        },
        rel=1e-12,
    )
    assert all(r["stage"] is None for r in table)


def test_channel_rows_are_marginals_for_every_model(client, auth) -> None:
    rng = np.random.default_rng(11)
    channels = ("search", "email", "social")
    records = []
    for k in range(40):
        touches: list[tuple[str, str | None]] = []
        for _ in range(int(rng.integers(1, 5))):
            c = int(rng.integers(0, 3))
            n = int(rng.integers(-1, 4))
            touches.append((channels[c], None if n < 0 else f"{channels[c]}-{n}"))
        converted = bool(rng.integers(0, 2))
        records.append(record(f"r{k}", touches, converted, 10.0 * k if converted else 0.0))
    ingest(client, auth, records)
    out = run(client, auth, models=list(MODEL_NAMES), campaigns={"top_n": 2})
    table = out["table"]
    for model in MODEL_NAMES:
        assert_marginals(table, model)
        names = {r["campaign"] for r in rows_of(table, model, "campaign")}
        assert {"(other)", "(not set)"} <= names
        for channel in channels:
            named = {
                r["campaign"]
                for r in rows_of(table, model, "campaign")
                if r["channel"] == channel and not r["campaign"].startswith("(")
            }
            assert len(named) <= 2


def test_campaign_table_as_csv_and_from_the_table_url(client, auth, example) -> None:
    out = run(client, auth, models=["linear"], campaigns={"top_n": 5})
    url = f"/v1/attribution/runs/{out['run_id']}/table?format=csv"
    text = client.get(url, headers=auth).get_data(as_text=True)
    header = text.splitlines()[0].split(",")
    assert header == list(credit.COLUMNS)  # the served columns, engine's in the middle
    assert header[header.index("channel") + 1] == "campaign"
    parsed = list(csv.DictReader(io.StringIO(text)))
    got = {(r["dimension"], r["channel"], r["campaign"]): r["conversions"] for r in parsed}
    assert got == {
        ("channel", "search", ""): "1.5",
        ("channel", "email", ""): "0.5",
        ("campaign", "search", "brand"): "0.5",
        ("campaign", "search", "generic"): "1",  # integral numbers written as integers
        ("campaign", "email", "weekly"): "0.5",
    }
    query = '/v1/attribution/table?models=linear&campaigns={"top_n":5}&format=csv'
    assert client.get(query, headers=auth).get_data(as_text=True) == text


def test_a_run_without_campaign_data_says_so(client, auth) -> None:
    ingest(client, auth, [record("n1", [("search", None), ("email", None)], True, 10.0)])
    out = run(client, auth, models=["linear", "markov"], campaigns={"top_n": 3})
    assert {r["dimension"] for r in out["table"]} == {"channel"}
    assert all(r["campaign"] is None for r in out["table"])
    for model in ("linear", "markov"):
        assert NO_CAMPAIGNS in out["warnings"][model]


def test_runs_without_the_option_have_no_campaign_rows(client, auth, example) -> None:
    out = run(client, auth, models=["linear"])
    assert out["parameters"]["campaigns"] is None
    assert {r["dimension"] for r in out["table"]} == {"channel"}
    assert not any(NO_CAMPAIGNS in w for w in out["warnings"]["linear"])


def test_the_journey_export_says_it_leaves_campaigns_out(client, auth, example) -> None:
    out = run(client, auth, models=["linear"], campaigns={})
    response = client.get(f"/v1/attribution/runs/{out['run_id']}/journeys", headers=auth)
    assert response.status_code == 200
    assert response.headers["Pathcredit-Note"] == CAMPAIGNS_NOTE
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {r["journey_id"] for r in rows} == {"j1", "j2"}


def test_campaign_rows_reach_the_bi_view(client, auth, example, conn: psycopg.Connection) -> None:
    run(client, auth, models=["last_touch"], campaigns={})
    found = conn.execute(
        "SELECT channel, campaign, conversions FROM credit_v1 WHERE dimension = 'campaign' "
        "ORDER BY channel, campaign"
    ).fetchall()
    assert found == [("email", "weekly", 1.0), ("search", "brand", 0.0), ("search", "generic", 1.0)]


@pytest.mark.parametrize(
    ("campaigns", "pointer"),
    [({"top_n": 0}, "/campaigns/top_n"), ({"top_n": 1001}, "/campaigns/top_n"),
     ({"top": 3}, "/campaigns/top"), ({"top_n": True}, "/campaigns/top_n"),
     ({"top_n": 2.5}, "/campaigns/top_n")],
)  # fmt: skip
def test_bad_campaign_options_are_problems(client, auth, campaigns, pointer) -> None:
    response = client.post("/v1/attribution", json={"campaigns": campaigns}, headers=auth)
    assert pointers(assert_problem(response, 422)) == [pointer]


def test_the_spec_describes_the_option_and_the_column(client) -> None:
    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    row = list(schemas["CreditRow"]["properties"])
    assert row[row.index("channel") + 1] == "campaign"
    assert "campaign" in schemas["CreditRow"]["properties"]["dimension"]["enum"]
    assert schemas["CampaignsIn"]["properties"]["top_n"]["maximum"] == 1000


def test_lookback_and_filters_apply_to_campaign_runs(client, auth) -> None:
    early = touch("search", "2024-03-01T08:00:00Z", None, campaign="brand")
    late = touch("email", "2024-03-05T08:00:00Z", None, campaign="weekly")
    other = touch("social", "2024-03-05T09:00:00Z", None, campaign="launch")
    ingest(client, auth, [
        journey("w1", touchpoints=[early, late], converted=True, value=10.0,
                converted_at="2024-03-05T12:00:00Z"),
        journey("w2", touchpoints=[other], converted=True, value=5.0,
                converted_at="2024-03-05T12:00:00Z"),
    ])  # fmt: skip
    windowed = run(client, auth, models=["first_touch"], campaigns={}, lookback_days=2)
    got = {(r["channel"], r["campaign"]): r["conversions"]
           for r in rows_of(windowed["table"], "first_touch", "campaign")}  # fmt: skip
    assert got == {("email", "weekly"): 1.0, ("social", "launch"): 1.0}
    filtered = run(client, auth, models=["first_touch"], campaigns={},
                   filters={"campaign": "weekly"})  # fmt: skip
    got = {(r["channel"], r["campaign"]): r["conversions"]
           for r in rows_of(filtered["table"], "first_touch", "campaign")}  # fmt: skip
    assert got == {("search", "brand"): 1.0, ("email", "weekly"): 0.0}


def test_a_background_run_credits_campaigns_with_intervals(client, auth, example) -> None:
    body = {"models": ["linear", "markov"], "campaigns": {"top_n": 5},
            "confidence": {"replicates": 20}}  # fmt: skip
    response = client.post("/v1/attribution/runs", json=body, headers=auth)
    assert response.status_code == 202
    jobs.work_until_empty(client.application.extensions["pathcredit.db"])  # runs the job
    done = client.get(response.headers["Location"], headers=auth).get_json()
    assert done["status"] == "succeeded"
    assert done["parameters"]["campaigns"] == {"top_n": 5}
    pairs = rows_of(done["table"], "markov", "campaign")
    assert {(r["channel"], r["campaign"]) for r in pairs} == {
        ("search", "brand"), ("search", "generic"), ("email", "weekly")
    }  # fmt: skip
    assert all(r["ci_low"] is not None and r["ci_low"] <= r["ci_high"] for r in pairs)
    assert_marginals(done["table"], "linear")
