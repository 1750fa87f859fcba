"""Spend joined onto credit rows, worked by hand, for tables the engine may give:
channel rows, and campaign rows (channel x campaign, stage null) where a run has them."""

from __future__ import annotations

from typing import Any

import pytest

from api.service.credit import NOT_SET, OTHER, Spend, with_spend

PARAMETERS = {"models": ["linear"], "date_from": "2024-03-01", "date_to": "2024-03-31"}
SPEND = Spend("USD", {("search", "spring"): 40.0, ("search", "autumn"): 10.0,
                      ("search", None): 50.0, ("email", None): 5.0})  # fmt: skip


def row(dimension: str, channel: str, conversions: float, value: float, **extra: Any) -> dict:
    return {"model": "linear", "dimension": dimension, "channel": channel, "stage": None,
            "conversions": conversions, "value": value, "share": 1.0, **extra}  # fmt: skip


def test_campaign_rows_carry_their_campaign_spend() -> None:
    rows = [
        row("channel", "search", 2.0, 200.0, campaign=None),
        row("campaign", "search", 2.0, 200.0, campaign="spring"),
    ]
    out = with_spend(rows, "r1", PARAMETERS, SPEND)
    keyed = {(r["dimension"], r["channel"], r.get("campaign")): r for r in out}
    search = keyed[("channel", "search", None)]
    assert (search["spend"], search["cost_per_conversion"], search["roas"]) == (100.0, 50.0, 2.0)
    spring = keyed[("campaign", "search", "spring")]
    assert (spring["spend"], spring["cost_per_conversion"], spring["roas"]) == (40.0, 20.0, 5.0)
    # spend no journey touched: the email channel; the autumn campaign and spend without
    # a campaign, on search and on email, as campaign rows
    email = keyed[("channel", "email", None)]
    assert (email["conversions"], email["spend"], email["cost_per_conversion"], email["roas"]) == (
        0.0, 5.0, None, 0.0
    )  # fmt: skip
    untouched = {k: r["spend"] for k, r in keyed.items() if r["conversions"] == 0.0}
    assert untouched == {
        ("channel", "email", None): 5.0,
        ("campaign", "email", NOT_SET): 5.0,
        ("campaign", "search", NOT_SET): 50.0,
        ("campaign", "search", "autumn"): 10.0,
    }
    assert {keyed[k]["roas"] for k in untouched} == {0.0}
    assert len(out) == 6
    assert {r["run_id"] for r in out} == {"r1"} and {r["currency"] for r in out} == {"USD"}


def test_not_set_and_other_campaign_rows() -> None:
    """(not set) is spend sent without a campaign; (other) the channel's campaigns the
    table does not list, which are then not untouched."""
    rows = [
        row("channel", "search", 4.0, 400.0, campaign=None),
        row("campaign", "search", 2.0, 100.0, campaign="spring"),
        row("campaign", "search", 1.0, 200.0, campaign=OTHER),
        row("campaign", "search", 1.0, 100.0, campaign=NOT_SET),
    ]
    spend = Spend("USD", {("search", "spring"): 40.0, ("search", "autumn"): 10.0,
                          ("search", "winter"): 30.0, ("search", None): 50.0})  # fmt: skip
    out = with_spend(rows, "r1", PARAMETERS, spend)
    assert len(out) == 4  # nothing untouched
    got = {r.get("campaign"): (r["spend"], r["cost_per_conversion"], r["roas"]) for r in out}
    assert got == {
        None: (130.0, 32.5, 400 / 130),
        "spring": (40.0, 20.0, 2.5),
        OTHER: (40.0, 40.0, 5.0),
        NOT_SET: (50.0, 50.0, 2.0),
    }


def test_stage_rows_and_zero_spend() -> None:
    rows = [
        row("channel", "email", 0.0, 0.0),
        {**row("stage", None, 1.0, 10.0), "stage": "decision"},  # type: ignore[arg-type]
    ]
    out = with_spend(rows, "r1", PARAMETERS, Spend("EUR", {("email", None): 0.0}))
    email, stage = out
    assert (email["spend"], email["cost_per_conversion"], email["roas"]) == (0.0, None, None)
    assert stage["spend"] is None and stage["currency"] == "EUR"


@pytest.mark.parametrize("models", [["linear"], ["linear", "markov"]])
def test_untouched_channels_get_a_row_per_model(models) -> None:
    out = with_spend([], "r1", {**PARAMETERS, "models": models}, SPEND)
    assert sorted((r["model"], r["channel"]) for r in out) == sorted(
        (m, c) for m in models for c in ("email", "search")
    )
