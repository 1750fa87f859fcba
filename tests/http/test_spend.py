"""Spend in and out, and cost per conversion and ROAS on the credit tables, against
numbers worked by hand.

The journeys (conversion dates in March 2024):

    j1  search (awareness) -> email (decision)  converts 03-01, value 100
    j2  search (decision)                        converts 03-02, value  60
    j3  email (decision)                         converts 03-02, value  40
    j4  email (awareness)                        does not convert (03-02)

Credit, by hand (conversions / value):

    first touch   search 2 / 160    email 1 / 40
    last touch    search 1 / 60     email 2 / 140
    linear        search 1.5 / 110  email 1.5 / 90   (j1 split half and half)

Spend (reporting currency USD), 03-01 to 03-05:

    search  03-01  100 USD                   = 100
    search  03-02   50 EUR at 1.2 USD/EUR    =  60     search total 160
    email   03-01   20 GBP at 1.25 USD/GBP   =  25
    email   03-02   35 USD                   =  35     email total   60
    display 03-05   30 USD (no journey)      =  30
    search  04-01  999 USD, outside the range
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.helpers import assert_problem, journey, pointers, touch
from tests.http.test_attribution import ingest

ROOT = Path(__file__).resolve().parents[2]
RANGE = {"date_from": "2024-03-01", "date_to": "2024-03-05"}
MODELS = ["first_touch", "last_touch", "linear"]
SPEND = [
    {"date": "2024-03-01", "channel": "search", "amount": 100},
    {"date": "2024-03-02", "channel": "search", "amount": 50, "currency": "EUR", "rate": 1.2},
    {"date": "2024-03-01", "channel": "email", "amount": 20, "currency": "GBP", "rate": 1.25},
    {"date": "2024-03-02", "channel": "email", "amount": 35, "currency": "USD"},
    {"date": "2024-03-05", "channel": "display", "campaign": "launch", "amount": 30},
    {"date": "2024-04-01", "channel": "search", "amount": 999},
]
# model -> channel -> (conversions, value, spend, cost per conversion, roas)
EXPECTED = {
    "first_touch": {
        "search": (2.0, 160.0, 160.0, 80.0, 1.0),
        "email": (1.0, 40.0, 60.0, 60.0, 40 / 60),
        "display": (0.0, 0.0, 30.0, None, 0.0),
    },
    "last_touch": {
        "search": (1.0, 60.0, 160.0, 160.0, 0.375),
        "email": (2.0, 140.0, 60.0, 30.0, 140 / 60),
        "display": (0.0, 0.0, 30.0, None, 0.0),
    },
    "linear": {
        "search": (1.5, 110.0, 160.0, 160 / 1.5, 110 / 160),
        "email": (1.5, 90.0, 60.0, 40.0, 1.5),
        "display": (0.0, 0.0, 30.0, None, 0.0),
    },
}


def day(d: int, hour: int) -> str:
    return f"2024-03-0{d}T{hour:02d}:00:00Z"


JOURNEYS = [
    journey("j1", touchpoints=[touch("search", day(1, 9), "awareness"),
                               touch("email", day(1, 10), "decision")],
            converted=True, value=100, converted_at=day(1, 11)),
    journey("j2", touchpoints=[touch("search", day(2, 9), "decision")],
            converted=True, value=60, converted_at=day(2, 10)),
    journey("j3", touchpoints=[touch("email", day(2, 9), "decision")],
            converted=True, value=40, converted_at=day(2, 10)),
    journey("j4", touchpoints=[touch("email", day(2, 9), "awareness")],
            converted=False, value=0, converted_at=None),
]  # fmt: skip


@pytest.fixture
def journeys(client: FlaskClient, auth: dict[str, str]) -> None:
    ingest(client, auth, JOURNEYS)


def put_spend(client: FlaskClient, auth: dict[str, str], rows: list[dict[str, Any]]) -> Any:
    return client.put("/v1/spend", json={"spend": rows}, headers=auth)


def start(client: FlaskClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/v1/attribution", json={**RANGE, **body}, headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def channel_rows(table: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["model"], r["channel"]): r for r in table if r["dimension"] == "channel"}


def check_against_hand(table: list[dict[str, Any]], run_id: str) -> None:
    rows = channel_rows(table)
    assert set(rows) == {(m, c) for m in EXPECTED for c in EXPECTED[m]}
    for model, channels in EXPECTED.items():
        for channel, (conv, value, spent, cpa, roas) in channels.items():
            row = rows[(model, channel)]
            assert row["conversions"] == pytest.approx(conv), (model, channel)
            assert row["value"] == pytest.approx(value), (model, channel)
            assert row["spend"] == pytest.approx(spent), (model, channel)
            assert row["cost_per_conversion"] == pytest.approx(cpa), (model, channel)
            assert row["roas"] == pytest.approx(roas), (model, channel)
            assert row["currency"] == "USD"
    for row in table:
        assert (row["run_id"], row["date_from"], row["date_to"]) == (run_id, *RANGE.values())
        if row["dimension"] != "channel":  # stages and channels within a stage
            assert row["spend"] is row["cost_per_conversion"] is row["roas"] is None


def test_cost_per_conversion_and_roas_by_hand(client, auth, journeys) -> None:
    written = put_spend(client, auth, SPEND)
    assert written.status_code == 200, written.get_json()
    assert written.get_json() == {
        "received": 6, "created": 6, "replaced": 0, "unchanged": 0, "currency": "USD"
    }  # fmt: skip
    out = start(client, auth, models=MODELS)
    check_against_hand(out["table"], out["run_id"])
    assert {r["dimension"] for r in out["table"]} == {"channel", "stage", "channel_stage"}
    served = client.get(f"/v1/attribution/runs/{out['run_id']}/table", headers=auth)
    check_against_hand(served.get_json(), out["run_id"])
    query = {**RANGE, "models": ",".join(MODELS)}
    cached = client.get("/v1/attribution/table", query_string=query, headers=auth)
    assert cached.headers["Pathcredit-Cache"] == "hit"
    check_against_hand(cached.get_json(), out["run_id"])


def test_spend_sent_after_a_run_shows_without_running_again(client, auth, journeys) -> None:
    out = start(client, auth, models=MODELS)
    assert all(r["spend"] is None for r in out["table"])
    assert put_spend(client, auth, SPEND).status_code == 200
    table = client.get(f"/v1/attribution/runs/{out['run_id']}/table", headers=auth).get_json()
    check_against_hand(table, out["run_id"])


def test_a_run_without_dates_reads_all_spend(client, auth, journeys) -> None:
    assert put_spend(client, auth, SPEND).status_code == 200
    out = client.post("/v1/attribution", json={"models": ["last_touch"]}, headers=auth)
    search = channel_rows(out.get_json()["table"])[("last_touch", "search")]
    assert search["spend"] == pytest.approx(160 + 999)
    assert search["date_from"] is None and search["date_to"] is None


def test_channel_groups_apply_to_spend(client, auth, journeys) -> None:
    assert put_spend(client, auth, SPEND).status_code == 200
    groups = {"search": "paid", "display": "paid"}
    out = start(client, auth, models=["last_touch"], channel_groups=groups)
    paid = channel_rows(out["table"])[("last_touch", "paid")]
    assert paid["spend"] == pytest.approx(190.0)
    assert paid["cost_per_conversion"] == pytest.approx(190.0)
    assert paid["roas"] == pytest.approx(60 / 190)


def test_integral_counts_are_integers_in_csv(client, auth, journeys) -> None:
    assert put_spend(client, auth, SPEND).status_code == 200
    out = start(client, auth, models=["last_touch", "linear"])
    text = client.get(f"/v1/attribution/runs/{out['run_id']}/table?format=csv", headers=auth)
    rows = list(csv.DictReader(io.StringIO(text.get_data(as_text=True))))
    cells = {(r["model"], r["dimension"], r["channel"]): r for r in rows}
    assert cells[("last_touch", "channel", "search")]["conversions"] == "1"
    assert cells[("last_touch", "channel", "search")]["spend"] == "160"
    assert cells[("last_touch", "channel", "search")]["roas"] == "0.375"
    assert cells[("linear", "channel", "search")]["conversions"] == "1.5"
    assert cells[("linear", "channel", "display")]["cost_per_conversion"] == ""
    assert cells[("linear", "channel", "display")]["roas"] == "0"
    assert rows[0]["run_id"] == out["run_id"] and rows[0]["date_from"] == "2024-03-01"


# ----------------------------------------------------------------- writing and reading
def test_put_is_idempotent_and_replaces_by_key(client, auth) -> None:
    assert put_spend(client, auth, SPEND).status_code == 200
    again = put_spend(client, auth, SPEND).get_json()
    assert (again["created"], again["replaced"], again["unchanged"]) == (0, 0, 6)
    changed = [{**SPEND[0], "amount": 110}, {**SPEND[4], "campaign": None}]
    counts = put_spend(client, auth, changed).get_json()
    assert (counts["created"], counts["replaced"], counts["unchanged"]) == (1, 1, 0)
    rows = client.get("/v1/spend", query_string={"date_to": "2024-03-01"}, headers=auth)
    amounts = {(r["channel"], r["campaign"]): r["amount"] for r in rows.get_json()}
    assert amounts == {("search", None): 110.0, ("email", None): 25.0}


def test_get_and_delete_by_date_range(client, auth) -> None:
    assert put_spend(client, auth, SPEND).status_code == 200
    march_2 = {"date_from": "2024-03-02", "date_to": "2024-03-02"}
    got = client.get("/v1/spend", query_string=march_2, headers=auth).get_json()
    assert got == [
        {"date": "2024-03-02", "channel": "email", "campaign": None, "amount": 35.0,
         "currency": "USD", "original_amount": 35.0, "original_currency": "USD", "rate": 1.0},
        {"date": "2024-03-02", "channel": "search", "campaign": None, "amount": 60.0,
         "currency": "USD", "original_amount": 50.0, "original_currency": "EUR", "rate": 1.2},
    ]  # fmt: skip
    deleted = client.delete("/v1/spend", query_string=march_2, headers=auth)
    assert deleted.get_json() == {"deleted": 2}
    left = client.get("/v1/spend", headers=auth).get_json()
    assert [r["date"] for r in left] == ["2024-03-01", "2024-03-01", "2024-03-05", "2024-04-01"]
    as_csv = client.get("/v1/spend?format=csv", headers=auth).get_data(as_text=True)
    assert as_csv.splitlines()[0] == (
        "date,channel,campaign,amount,currency,original_amount,original_currency,rate"
    )
    assert "2024-03-01,email,,25,USD,20,GBP,1.25" in as_csv.splitlines()


def test_delete_needs_both_ends_of_the_range(client, auth) -> None:
    assert put_spend(client, auth, SPEND).status_code == 200
    body = assert_problem(client.delete("/v1/spend", headers=auth), 422)
    assert {"/query/date_from", "/query/date_to"} <= set(pointers(body))
    assert len(client.get("/v1/spend", headers=auth).get_json()) == 6


@pytest.mark.parametrize(
    ("rows", "pointer"),
    [
        ([{**SPEND[1], "rate": None}], "/spend/0/rate"),
        ([{"date": "2024-03-01", "channel": "email", "amount": 1, "currency": "EUR"}],
         "/spend/0/rate"),
        ([{**SPEND[0], "rate": 2}], "/spend/0/rate"),
        ([SPEND[0], {**SPEND[0], "amount": 5}], "/spend/1"),
        ([{**SPEND[0], "amount": -1}], "/spend/0/amount"),
        ([{**SPEND[0], "amount": "1"}], "/spend/0/amount"),
        ([{**SPEND[0], "date": "2024-02-30"}], "/spend/0/date"),
        ([{**SPEND[0], "channel": ""}], "/spend/0/channel"),
        ([{**SPEND[0], "channel": "a\x01b"}], "/spend/0/channel"),
        ([{**SPEND[0], "currency": "usd"}], "/spend/0/currency"),
        ([{**SPEND[1], "rate": 0}], "/spend/0/rate"),
        ([SPEND[0], {**SPEND[2], "bogus": 1}], "/spend/1/bogus"),
    ],
    ids=["rate-null", "rate-missing", "rate-in-own-currency", "duplicate-key", "negative",
         "string-amount", "no-such-day", "empty-channel", "control-character",
         "lower-case-currency", "rate-zero", "unknown-field"],
)  # fmt: skip
def test_bad_rows_are_refused_and_nothing_is_written(client, auth, rows, pointer) -> None:
    body = assert_problem(put_spend(client, auth, [*rows, SPEND[3]]), 422)
    assert pointer in pointers(body), body
    assert client.get("/v1/spend", headers=auth).get_json() == []


# ----------------------------------------------------------------- CSV
CSV = "text/csv"


def put_csv(client: FlaskClient, auth: dict[str, str], text: str | bytes) -> Any:
    data = text.encode() if isinstance(text, str) else text
    return client.put("/v1/spend", data=data, content_type=CSV, headers=auth)


def test_the_example_csv_is_stored(client, auth) -> None:
    data = (ROOT / "examples" / "spend.csv").read_bytes()
    response = put_csv(client, auth, data)
    assert response.status_code == 200, response.get_json()
    stored = client.get("/v1/spend", headers=auth).get_json()
    assert response.get_json()["created"] == len(stored) == len(data.splitlines()) - 1
    assert "--data-binary @examples/spend.csv" in (ROOT / "README.md").read_text()


def test_csv_rows_are_the_json_rows(client, auth) -> None:
    text = (
        "date,channel,campaign,amount,currency,rate\r\n"
        "2024-03-01,search,,100,,\r\n"
        "2024-03-02,search,,50,EUR,1.2\r\n"
        "2024-03-05,display,launch,30,USD,\r\n"
    )
    assert put_csv(client, auth, "\ufeff" + text).status_code == 200
    got = client.get("/v1/spend", headers=auth).get_json()
    assert [(r["channel"], r["campaign"], r["amount"]) for r in got] == [
        ("search", None, 100.0), ("search", None, 60.0), ("display", "launch", 30.0)
    ]  # fmt: skip


HEADER = "date,channel,campaign,amount,currency,rate\n"
GOOD = "2024-03-01,search,,100,,\n"


@pytest.mark.parametrize(
    ("text", "pointer"),
    [
        (HEADER + GOOD + "2024-03-32,email,,5,,\n", "/1/date"),
        (HEADER + GOOD + "2024-03-02,email,,-5,,\n", "/1/amount"),
        (HEADER + GOOD + "2024-03-02,email,,five,,\n", "/1/amount"),
        (HEADER + GOOD + "2024-03-02,email,,nan,,\n", "/1/amount"),
        (HEADER + GOOD + "2024-03-02,,,5,,\n", "/1/channel"),
        (HEADER + GOOD + "2024-03-02,email,,5,EUR,\n", "/1/rate"),
        (HEADER + GOOD + "2024-03-02,email,,5,EURO,1\n", "/1/currency"),
        (HEADER + GOOD + GOOD, "/1"),
        (HEADER + GOOD + "2024-03-02,email,,5,,,extra\n", "/1"),
        (HEADER.replace("rate", "fx") + GOOD, "/header/fx"),
        ("date,channel\n2024-03-01,search\n", "/header/amount"),
        (HEADER, None),
        (HEADER.replace(",", ";") + GOOD.replace(",", ";"), "/header"),
        (b"date,channel,amount\n2024-03-01,se\xffarch,1\n", "/"),
    ],
    ids=["bad-date", "negative", "not-a-number", "nan", "no-channel", "no-rate",
         "bad-currency", "duplicate", "more-cells", "unknown-column", "missing-column",
         "header-only", "semicolons", "not-utf8"],
)  # fmt: skip
def test_csv_errors_name_the_row_and_column(client, auth, text, pointer) -> None:
    body = assert_problem(put_csv(client, auth, text), 422)
    if pointer is not None:
        assert pointer in pointers(body), body
    assert client.get("/v1/spend", headers=auth).get_json() == []


# ----------------------------------------------------------------- currency
def test_another_reporting_currency(client, auth, journeys) -> None:
    assert client.put("/v1/settings", json={"currency": "EUR"}, headers=auth).status_code == 200
    assert client.get("/v1/settings", headers=auth).get_json()["currency"] == "EUR"
    usd = {**SPEND[0], "currency": "USD"}
    body = assert_problem(put_spend(client, auth, [usd]), 422)  # not EUR: needs a rate
    assert pointers(body) == ["/spend/0/rate"] and "EUR" in body["errors"][0]["detail"]
    usd["rate"] = 0.5
    assert put_spend(client, auth, [usd]).get_json()["currency"] == "EUR"
    out = start(client, auth, models=["last_touch"])
    search = channel_rows(out["table"])[("last_touch", "search")]
    assert (search["spend"], search["currency"]) == (50.0, "EUR")


def test_the_currency_cannot_change_under_stored_spend(client, auth) -> None:
    assert client.get("/v1/settings", headers=auth).get_json()["currency"] == "USD"
    assert put_spend(client, auth, [SPEND[0]]).status_code == 200
    body = assert_problem(client.put("/v1/settings", json={"currency": "EUR"}, headers=auth), 409)
    assert "DELETE /v1/spend" in body["detail"] and pointers(body) == ["/currency"]
    assert client.get("/v1/settings", headers=auth).get_json()["currency"] == "USD"
    everything = {"date_from": "2000-01-01", "date_to": "2100-01-01"}
    assert client.delete("/v1/spend", query_string=everything, headers=auth).status_code == 200
    assert client.put("/v1/settings", json={"currency": "EUR"}, headers=auth).status_code == 200


# ----------------------------------------------------------------- comparison
# model -> channel -> (conversions, last touch's, value, last touch's), by hand above
COMPARISON = {
    "first_touch": {"search": (2.0, 1.0, 160.0, 60.0), "email": (1.0, 2.0, 40.0, 140.0)},
    "linear": {"search": (1.5, 1.0, 110.0, 60.0), "email": (1.5, 2.0, 90.0, 140.0)},
}


def check_comparison(rows: list[dict[str, Any]], models: list[str], run_id: str) -> None:
    seen = {(r["model"], r["channel"]): r for r in rows}
    assert set(seen) == {(m, c) for m in models for c in COMPARISON[m]}
    for model in models:
        for channel, (conv, lt_conv, value, lt_value) in COMPARISON[model].items():
            row = seen[(model, channel)]
            assert row["dimension"] == "channel" and row["run_id"] == run_id
            assert (row["conversions"], row["last_touch_conversions"]) == (conv, lt_conv)
            assert (row["value"], row["last_touch_value"]) == (value, lt_value)
            assert row["conversions_diff"] == pytest.approx(conv - lt_conv)
            assert row["value_diff"] == pytest.approx(value - lt_value)


def test_comparison_with_last_touch_by_hand(client, auth, journeys) -> None:
    out = start(client, auth, models=MODELS)
    url = f"/v1/attribution/runs/{out['run_id']}/comparison"
    check_comparison(client.get(url, headers=auth).get_json(), ["first_touch", "linear"],
                     out["run_id"])  # fmt: skip
    text = client.get(url, headers={**auth, "Accept": "text/csv"}).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [
        "run_id", "date_from", "date_to", "model", "dimension", "channel", "campaign",
        "conversions", "value", "last_touch_conversions", "last_touch_value",
        "conversions_diff", "value_diff",
    ]  # fmt: skip
    first_search = next(r for r in rows if (r["model"], r["channel"]) == ("first_touch", "search"))
    assert (first_search["conversions_diff"], first_search["value_diff"]) == ("1", "100")


def test_comparison_computes_last_touch_when_the_run_has_none(client, auth, journeys) -> None:
    out = start(client, auth, models=["linear"])
    url = f"/v1/attribution/runs/{out['run_id']}/comparison"
    check_comparison(client.get(url, headers=auth).get_json(), ["linear"], out["run_id"])
    assert client.delete("/v1/journeys/j4", headers=auth).status_code in (200, 204)
    body = assert_problem(client.get(url, headers=auth), 409)
    assert "last_touch" in body["detail"] and "POST /v1/attribution/runs" in body["detail"]
