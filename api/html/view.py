"""What the HTML report shows: its numbers, charts and captions, from one selection's paths.

Kept apart from the view (``api/html/report.py``) so the page can be built from any
path set; every number comes from the same functions as the JSON reports
(:mod:`api.service.reports`) and the attribution table (``Credit.to_rows``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from attribution import Credit, PathSet, attribute

from ..service import credit as served
from ..service import reports as rt
from ..service.selection import Selection
from . import charts, flow_chart

DEFAULT_MODELS = ("first_touch", "last_touch", "linear", "position_based", "markov")
"""Models the report compares when the request names none: fast on any data set."""

HOT_SPOTS = 12
MOVES_SHOWN = 10
"""Moves the flow chart does not draw, listed under it (the rest under "All moves")."""
NO_STAGES = "The journeys in this selection carry no stages."


def context(
    workspace: str,
    selection: Selection,
    paths: PathSet,
    workspace_stages: Sequence[str],
    models: Sequence[str],
    now: datetime,
    notes: Sequence[str] = (),
    *,
    spend: served.Spend,
) -> dict[str, Any]:
    """Template variables of ``report.html``. ``notes`` say what the selection left out;
    the models' own warnings (sampled values, say) are shown with them. ``spend`` is
    the selection's, by channel."""
    order = rt.stage_order(paths, workspace_stages)
    staged = paths.has_stages and paths.n_paths > 0
    credit_rows, model_notes, errors = channel_credit(paths, models)
    moves = rt.stage_flow(paths) if staged else []
    return {
        "workspace": workspace,
        "period": period(selection),
        "generated": now.strftime("%Y-%m-%d %H:%M UTC"),
        "selection": describe(selection, models),
        "kpis": kpis(paths, order if staged else None),
        "warnings": [*notes, *model_notes],
        "no_stages": NO_STAGES,
        "charts": (stage_charts(paths, order, moves) if staged else {})
        | other_charts(paths, credit_rows, models),
        "models": [m.replace("_", " ") for m in models],
        "credit_table": credit_table(credit_rows, models, errors),
        "currency": spend.currency,
        "costs": costs(credit_rows, models, spend),
        "comparison": comparison(paths, credit_rows, models),
        "flow_moves": flow_tables(order, moves),
        "sources": sources(),
    }


def stage_charts(
    paths: PathSet, order: Sequence[str], moves: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """The funnel, the flow (``moves``: its stage transitions, repeats collapsed) and the
    stage removal effects."""
    return {
        "funnel": charts.funnel(rt.funnel(paths, order)),
        "flow": flow_chart.flow(order, moves, stays(paths)),
        "effects": charts.removal_effects(rt.stage_removal_effects(paths, order)),
    }


def stays(paths: PathSet) -> dict[str, float]:
    """Per stage, the moves from it to itself (a touch followed by another in the same
    stage), which the flow's collapsed moves leave out."""
    return {
        str(r["source"]): float(r["count"])
        for r in rt.transitions(paths, "stage")
        if r["source"] == r["target"]
    }


def flow_tables(order: Sequence[str], moves: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The flow's moves as table rows: those the chart counts but does not draw (back to
    an earlier stage, or into "no stage"), and every move, for the tables under it."""
    back = flow_chart.back_moves(order, moves)
    every = [
        {"source": flow_chart.node_name(m["source"]), "target": flow_chart.node_name(m["target"]),
         "count": float(m["count"])}
        for m in sorted(moves, key=lambda m: -float(m["count"]))
        if m["source"] != m["target"]
    ]  # fmt: skip
    return {
        "back": [_move(m) for m in back[:MOVES_SHOWN]],
        "back_more": len(back) - len(back[:MOVES_SHOWN]),
        "all": [_move(m) for m in every],
    }


def _move(m: Mapping[str, Any]) -> dict[str, Any]:
    return {**m, "text": charts.count(m["count"])}


def other_charts(
    paths: PathSet, credit_rows: Sequence[Mapping[str, Any]], models: Sequence[str]
) -> dict[str, str]:
    out: dict[str, str] = {}
    if paths.n_paths:
        out["dropoff"] = charts.dropoff(rt.dropoff(paths, limit=HOT_SPOTS))
    if any(r["conversions"] for r in credit_rows):
        out["credit"] = charts.credit(credit_rows, models)
    return out


def channel_credit(
    paths: PathSet, models: Sequence[str]
) -> tuple[list[dict[str, Any]], list[str], dict[tuple[str, str], float]]:
    """The attribution table's channel rows for each model (the selection is applied),
    each model's warnings, named by model, and the standard errors of sampled credit
    by (model, channel)."""
    if paths.n_paths == 0 or paths.total_conversions == 0:
        return [], [], {}
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    errors: dict[tuple[str, str], float] = {}
    for model in models:
        credit = attribute(paths, model)
        rows += [r for r in credit.to_rows() if r["dimension"] == "channel"]
        notes += [f"{model.replace('_', ' ')}: {w}" for w in credit.warnings]
        sampled = sampling_errors(credit)
        errors |= {(model, c): se for c, se in sampled.items()}
        if sampled:
            notes.append(_error_note(model, sampled))
    return rows, notes, errors


def sampling_errors(credit: Credit) -> dict[str, float]:
    """Per channel, a bound on the standard error of its sampled conversions: the sum of
    its grid entries' errors (the error of a sum is at most the sum of the errors).
    Empty when the model computed its credit exactly."""
    se = credit.details.get("standard_error")
    if se is None or np.shape(se) != np.shape(credit.conversions):
        return {}
    per_channel = np.asarray(se, dtype=np.float64).sum(axis=1)
    return dict(zip(credit.channel_names, per_channel.tolist(), strict=True))


def _error_note(model: str, errors: Mapping[str, float]) -> str:
    worst = max(errors, key=lambda c: (errors[c], c))
    return (
        f"{model.replace('_', ' ')}: its credit is sampled, so each channel's conversions "
        f"carry a standard error of up to \u00b1{errors[worst]:,.2f} ({worst}); the "
        "numbers table under the attribution chart gives each channel's."
    )


def credit_table(
    rows: Sequence[Mapping[str, Any]],
    models: Sequence[str],
    errors: Mapping[tuple[str, str], float] | None = None,
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Channel x model cells for the table under the chart; sampled credit with its
    standard error."""
    cells = {(r["channel"], r["model"]): float(r["conversions"]) for r in rows}
    errors = errors or {}
    return [
        (c, [_credit_cell(m, cells.get((c, m), 0.0), errors.get((m, c))) for m in models])
        for c in charts.channels_by_mean_share(rows)
    ]


def _credit_cell(model: str, value: float, error: float | None) -> dict[str, Any]:
    text = f"{value:,.1f}" if error is None else f"{value:,.1f} \u00b1 {error:,.2f}"
    return {"model": model, "value": value, "error": error, "text": text}


def costs(
    rows: Sequence[Mapping[str, Any]], models: Sequence[str], spend: served.Spend
) -> list[dict[str, Any]]:
    """Per channel with spend: the spend, and each model's cost per conversion and ROAS
    (the attribution table's columns); channels no journey touched included."""
    spent = spend.channels
    cells = {(r["model"], r["channel"]): r for r in rows}
    ranked = charts.channels_by_mean_share(rows)
    channels = [c for c in ranked if c in spent] + sorted(set(spent) - set(ranked))
    out = []
    for channel in channels:
        per_model = []
        for model in models:
            row = cells.get((model, channel)) or served.untouched(model, "channel", channel)
            got = served.spend_columns(row, spend)
            per_model.append({"model": model, "cpa": _money(got["cost_per_conversion"]),
                              "roas": _ratio(got["roas"])})  # fmt: skip
        out.append({"channel": channel, "spend": _money(spent[channel]), "models": per_model})
    return out


def comparison(
    paths: PathSet, rows: Sequence[Mapping[str, Any]], models: Sequence[str]
) -> dict[str, Any]:
    """Each model's conversions per channel minus last touch's (computed when the
    report does not show it), as the run comparison's ``conversions_diff``."""
    if not rows:
        return {"models": [], "channels": []}
    baseline = [r for r in rows if r["model"] == served.BASELINE]
    if not baseline:
        baseline = [r for r in attribute(paths, served.BASELINE).to_rows()
                    if r["dimension"] == "channel"]  # fmt: skip
    others = [m for m in models if m != served.BASELINE]
    diffs = {(r["model"], r["channel"]): r for r in served.compare(rows, baseline, {})}
    base = {r["channel"]: float(r["conversions"]) for r in baseline}
    channels = []
    for channel in charts.channels_by_mean_share(rows):
        cells = [_diff(diffs.get((m, channel)), m, channel) for m in others]
        channels.append({"channel": channel, "last_touch": _number(base.get(channel, 0.0)),
                         "cells": cells})  # fmt: skip
    return {"models": [m.replace("_", " ") for m in others], "channels": channels}


def _diff(row: Mapping[str, Any] | None, model: str, channel: str) -> dict[str, Any]:
    value = float(row["conversions_diff"]) if row else 0.0
    text = "0.0" if abs(value) < 0.05 else f"{value:+,.1f}".replace("-", "\u2212")
    return {"model": model, "channel": channel, "value": value, "text": text}


def _money(x: float | None) -> dict[str, Any]:
    return {"value": x, "text": charts.DASH if x is None else f"{x:,.2f}"}


def _ratio(x: float | None) -> dict[str, Any]:
    return {"value": x, "text": charts.DASH if x is None else f"{x:,.2f}\u00d7"}


def _number(x: float) -> dict[str, Any]:
    return {"value": x, "text": f"{x:,.1f}"}


def kpis(paths: PathSet, order: Sequence[str] | None) -> list[dict[str, Any]]:
    journeys = paths.total_conversions + paths.total_nulls
    rate = paths.total_conversions / journeys if journeys else None
    items: list[tuple[str, str, float | None, str]] = [
        ("journeys", "Journeys", journeys, charts.count(journeys)),
        ("conversions", "Conversions", paths.total_conversions,
         charts.count(paths.total_conversions)),
        ("conversion_rate", "Conversion rate", rate, charts.percent(rate)),
        ("value", "Conversion value", paths.total_value, f"{paths.total_value:,.0f}"),
    ]  # fmt: skip
    looping = None
    if order is not None:
        summary = {r["kind"]: r for r in rt.loop_summary(paths, order)}
        looping = summary["looping"]["journeys"] / journeys if journeys else None
    items.append(("looping_share", "Journeys looping back", looping, charts.percent(looping)))
    return [{"key": k, "label": label, "value": v, "text": t} for k, label, v, t in items]


def period(selection: Selection) -> str:
    start, end = selection.date_from, selection.date_to
    if start is None and end is None:
        return "all dates"
    if start is None:
        return f"up to {end}"
    if end is None:
        return f"from {start}"
    return f"{start} to {end}"


def describe(selection: Selection, models: Sequence[str]) -> list[tuple[str, str]]:
    """The selection as (name, value) pairs, only what differs from reading everything."""
    s = selection
    items = [("dates", period(s))]
    if s.attributes is not None:
        items.append(("attributes", json.dumps(s.attributes, sort_keys=True)))
    for name, value in (("device", s.device), ("campaign", s.campaign)):
        if value is not None:
            items.append((name, value))
    if s.channel_groups:
        groups = ", ".join(f"{k} \u2192 {v}" for k, v in sorted(s.channel_groups.items()))
        items.append(("channel groups", groups))
    if s.collapse_repeats:
        items.append(("repeats", "collapsed"))
    if s.lookback_days is not None:
        items.append(("lookback", f"{s.lookback_days} days"))
    items.append(("models", ", ".join(m.replace("_", " ") for m in models)))
    return items


def sources() -> list[tuple[str, str]]:
    names = ("funnel", "dropoff", "transitions", "stage-removal-effects", "paths", "loops")
    return [(n, f"/v1/reports/{n}") for n in names]
