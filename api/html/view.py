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

from attribution import PathSet, attribute

from ..service import reports as rt
from ..service.selection import Selection
from . import charts, flow_chart

DEFAULT_MODELS = ("first_touch", "last_touch", "linear", "position_based", "markov")
"""Models the report compares when the request names none: fast on any data set."""

HOT_SPOTS = 12
NO_STAGES = "The journeys in this selection carry no stages."


def context(
    workspace: str,
    selection: Selection,
    paths: PathSet,
    workspace_stages: Sequence[str],
    models: Sequence[str],
    now: datetime,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """Template variables of ``report.html``. ``notes`` say what the selection left out;
    the models' own warnings (sampled values, say) are shown with them."""
    order = rt.stage_order(paths, workspace_stages)
    staged = paths.has_stages and paths.n_paths > 0
    credit_rows, model_notes = channel_credit(paths, models)
    return {
        "workspace": workspace,
        "period": period(selection),
        "generated": now.strftime("%Y-%m-%d %H:%M UTC"),
        "selection": describe(selection, models),
        "kpis": kpis(paths, order if staged else None),
        "warnings": [*notes, *model_notes],
        "no_stages": NO_STAGES,
        "charts": (stage_charts(paths, order) if staged else {})
        | other_charts(paths, credit_rows, models),
        "models": [m.replace("_", " ") for m in models],
        "credit_table": credit_table(credit_rows, models),
        "sources": sources(),
    }


def stage_charts(paths: PathSet, order: Sequence[str]) -> dict[str, str]:
    funnel_rows = rt.funnel(paths, order)
    journeys = paths.total_conversions + paths.total_nulls
    return {
        "funnel": charts.funnel(funnel_rows, journeys),
        "flow": flow_chart.flow(order, rt.stage_flow(paths)),
        "effects": charts.removal_effects(rt.stage_removal_effects(paths, order)),
    }


def other_charts(
    paths: PathSet, credit_rows: Sequence[Mapping[str, Any]], models: Sequence[str]
) -> dict[str, str]:
    out: dict[str, str] = {}
    if paths.n_paths:
        out["dropoff"] = charts.dropoff(rt.dropoff(paths, limit=HOT_SPOTS))
    if any(r["conversions"] for r in credit_rows):
        out["credit"] = charts.credit(credit_rows, models)
    return out


def channel_credit(paths: PathSet, models: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The attribution table's channel rows for each model (the selection is applied),
    and each model's warnings, named by model."""
    if paths.n_paths == 0 or paths.total_conversions == 0:
        return [], []
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for model in models:
        credit = attribute(paths, model)
        rows += [r for r in credit.to_rows() if r["dimension"] == "channel"]
        notes += [f"{model.replace('_', ' ')}: {w}" for w in credit.warnings]
    return rows, notes


def credit_table(
    rows: Sequence[Mapping[str, Any]], models: Sequence[str]
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Channel x model cells for the table under the chart."""
    cells = {(r["channel"], r["model"]): float(r["conversions"]) for r in rows}
    channels = charts.channels_by_mean_share(rows)
    return [
        (c, [{"value": cells.get((c, m), 0.0), "text": f"{cells.get((c, m), 0.0):,.1f}"}
             for m in models])
        for c in channels
    ]  # fmt: skip


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
