"""The credit tables as served: the run's columns, the engine's, then spend's; and the
comparison of every model with last touch.

A served row is ``run_id, date_from, date_to`` (so a BI join needs no headers), the
engine's :data:`~attribution.ROW_COLUMNS`, then ``spend, cost_per_conversion, roas,
currency``. Spend is joined when the table is read, over the run's date range (all
time when it has none), so spend sent after a run shows without running it again.

It is looked up by channel (spend of every campaign summed), or by (channel,
campaign) on rows that name a campaign (the engine's ``(not set)`` is spend sent
without a campaign, its ``(other)`` the channel's campaigns the table does not list);
a run's channel groups apply to spend as to journeys. Rows of stages and of channels
within a stage carry no spend: spend is not split by stage. A channel with spend in
the range that no journey of the run touched still gets a channel row per model, with
no credit, cost per conversion null and ROAS 0, after the run's own rows; so does a
campaign, in a table with campaign rows.

``cost_per_conversion`` is spend over the row's conversions, ``roas`` its value over
spend; each is null where it would divide by zero. Conversion values are taken to be
in the reporting currency, named on every row. Spend is not filtered by a run's
segment filters: it has no segments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property
from typing import Any

from attribution import ROW_COLUMNS, get_model
from attribution.campaigns import NOT_SET, OTHER

from ..store import runs as run_store
from ..store import spend as spend_store
from .errors import Conflict
from .runs import plan_from_parameters
from .selection import load_selection
from .spend import reporting_currency

RUN_COLUMNS = ("run_id", "date_from", "date_to")
SPEND_COLUMNS = ("spend", "cost_per_conversion", "roas", "currency")
COLUMNS = (*RUN_COLUMNS, *ROW_COLUMNS, *SPEND_COLUMNS)
"""Columns of a served credit table, in order."""

KEY_COLUMNS = ("channel", "campaign") if "campaign" in ROW_COLUMNS else ("channel",)
COMPARED = ("conversions", "value")
COMPARISON_COLUMNS = (
    *RUN_COLUMNS,
    "model",
    "dimension",
    *KEY_COLUMNS,
    *COMPARED,
    *(f"last_touch_{c}" for c in COMPARED),
    *(f"{c}_diff" for c in COMPARED),
)
"""Columns of a run's comparison with last touch, in order."""
BASELINE = "last_touch"


@dataclass(frozen=True)
class Spend:
    """Spend over a run's range, per (channel, campaign) after channel grouping, and the
    (channel, campaign) pairs the table lists, for its ``(other)`` rows."""

    currency: str
    by_key: Mapping[tuple[str, str | None], float]
    listed: frozenset[tuple[str, str]] = frozenset()

    def listing(self, rows: Sequence[Mapping[str, Any]]) -> Spend:
        """This spend for a table of ``rows``."""
        pairs = {(r["channel"], r["campaign"]) for r in rows if r.get("campaign") is not None}
        return replace(self, listed=frozenset(pairs))

    def of_row(self, row: Mapping[str, Any]) -> float | None:
        """The row's spend: by channel and campaign, by channel, or none (stages)."""
        channel = row.get("channel")
        if channel is None or row.get("stage") is not None:
            return None
        campaign = row.get("campaign")
        if campaign is not None:
            return self.of_campaign(channel, campaign)
        if row.get("dimension") != "channel":
            return None
        return self.channels.get(channel)

    def of_campaign(self, channel: str, campaign: str) -> float | None:
        """Spend on a campaign row: its own; spend without a campaign for ``(not set)``;
        for ``(other)``, the channel's campaigns the table does not list."""
        if campaign == NOT_SET:
            return self.by_key.get((channel, None))
        if campaign != OTHER:
            return self.by_key.get((channel, campaign))
        folded = [a for (c, k), a in self.by_key.items() if c == channel and self.folded(c, k)]
        return sum(folded) if folded else None

    def folded(self, channel: str, campaign: str | None) -> bool:
        """Whether the ``(other)`` row of a channel holds this campaign's spend."""
        return campaign is not None and (channel, campaign) not in self.listed

    def label(self, campaign: str | None) -> str:
        """The campaign a campaign row names for spend under ``campaign``."""
        return NOT_SET if campaign is None else campaign

    @cached_property
    def channels(self) -> dict[str, float]:
        """Spend per channel, every campaign summed."""
        out: dict[str, float] = {}
        for (channel, _), amount in self.by_key.items():
            out[channel] = out.get(channel, 0.0) + amount
        return out


def run_range(parameters: Mapping[str, Any]) -> tuple[date | None, date | None]:
    """A run's date range, from its recorded parameters."""
    start, end = parameters.get("date_from"), parameters.get("date_to")
    return _day(start), _day(end)


def _day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def spend_of(
    conn: Any,
    workspace_id: int,
    parameters: Mapping[str, Any],
    settings: Mapping[str, Any] | None = None,
) -> Spend:
    """The spend a run's table shows: over its range, grouped as its channels.
    ``settings`` are the workspace's, when the caller has read them already."""
    date_from, date_to = run_range(parameters)
    totals = spend_store.spend_totals(conn, workspace_id, date_from, date_to)
    groups = parameters.get("channel_groups") or {}
    grouped: dict[tuple[str, str | None], float] = {}
    for (channel, campaign), amount in totals.items():
        key = (groups.get(channel, channel), campaign)
        grouped[key] = grouped.get(key, 0.0) + amount
    if settings is None:
        settings = run_store.get_settings(conn, workspace_id)
    return Spend(reporting_currency(settings), grouped)


def served_rows(
    conn: Any,
    workspace_id: int,
    run_id: str,
    parameters: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A run's stored rows as served (:data:`COLUMNS`), spend read now."""
    spend = spend_of(conn, workspace_id, parameters, settings)
    return with_spend(rows, run_id, parameters, spend)


def with_spend(
    rows: Sequence[Mapping[str, Any]], run_id: str, parameters: Mapping[str, Any], spend: Spend
) -> list[dict[str, Any]]:
    """Rows with the run's columns and spend's, and rows for spend no journey touched."""
    date_from, date_to = run_range(parameters)
    run = {"run_id": run_id, "date_from": date_from, "date_to": date_to}
    spend = spend.listing(rows)
    out = [{**run, **row, **spend_columns(row, spend)} for row in rows]
    for model in parameters["models"]:
        for row in untouched_rows(rows, model, spend):
            out.append({**run, **row, **spend_columns(row, spend)})
    return out


def untouched_rows(
    rows: Sequence[Mapping[str, Any]], model: str, spend: Spend
) -> list[dict[str, Any]]:
    """A model's rows for spend no journey touched: a channel row per channel without
    one, and, in a table with campaign rows, a campaign row per campaign that neither
    has one nor is in its channel's ``(other)``."""
    mine = [r for r in rows if r["model"] == model]
    credited = {r["channel"] for r in mine if r["dimension"] == "channel"}
    out = [untouched(model, "channel", c) for c in sorted(spend.channels) if c not in credited]
    for dimension in sorted({r["dimension"] for r in rows if r.get("campaign") is not None}):
        for channel, campaign in sorted(spend.by_key, key=lambda k: (k[0], k[1] or "")):
            label = spend.label(campaign)
            if (channel, label) in spend.listed:
                continue
            if spend.folded(channel, campaign) and (channel, OTHER) in spend.listed:
                continue
            out.append(untouched(model, dimension, channel, label))
    return out


def untouched(
    model: str, dimension: str, channel: str, campaign: str | None = None
) -> dict[str, Any]:
    """The row of a channel (or campaign) with spend that no journey touched."""
    row: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
    row.update(model=model, dimension=dimension, channel=channel)
    if campaign is not None:
        row["campaign"] = campaign
    row.update(conversions=0.0, value=0.0, share=0.0)
    return row


def spend_columns(row: Mapping[str, Any], spend: Spend) -> dict[str, Any]:
    amount = spend.of_row(row)
    if amount is None:
        return {"spend": None, "cost_per_conversion": None, "roas": None,
                "currency": spend.currency}  # fmt: skip
    conversions, value = float(row["conversions"]), float(row["value"])
    return {
        "spend": amount,
        "cost_per_conversion": amount / conversions if conversions > 0 else None,
        "roas": value / amount if amount > 0 else None,
        "currency": spend.currency,
    }


# ---------------------------------------------------------------------- comparison
def comparison(
    conn: Any, workspace_id: int, run: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Every model's credit per channel (and campaign) beside last touch's, and the
    difference (model minus last touch). A run without last touch has it computed on
    the run's selection, when the data has not changed since the run."""
    parameters = run["parameters"]
    if BASELINE in parameters["models"]:
        baseline: Sequence[Mapping[str, Any]] = [r for r in rows if r["model"] == BASELINE]
    else:
        baseline = last_touch(conn, workspace_id, run)
    date_from, date_to = run_range(parameters)
    head = {"run_id": run["run_id"], "date_from": date_from, "date_to": date_to}
    return compare(rows, baseline, head)


def compare(
    rows: Sequence[Mapping[str, Any]],
    baseline: Sequence[Mapping[str, Any]],
    head: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Rows of :data:`COMPARISON_COLUMNS` for the models other than last touch; a key
    last touch does not credit compares with 0."""
    base = {_key(r): r for r in baseline if _keyed(r)}
    out = []
    for row in rows:
        if row["model"] == BASELINE or not _keyed(row):
            continue
        other = base.get(_key(row))
        item = {**head, **{c: row.get(c) for c in ("model", "dimension", *KEY_COLUMNS)}}
        for c in COMPARED:
            mine, theirs = float(row[c]), float(other[c]) if other else 0.0
            item.update({c: mine, f"last_touch_{c}": theirs, f"{c}_diff": mine - theirs})
        out.append(item)
    return out


def _keyed(row: Mapping[str, Any]) -> bool:
    """Rows of channels (and campaigns), not of stages."""
    return row.get("channel") is not None and row.get("stage") is None


def _key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (row["dimension"], *(row.get(c) for c in KEY_COLUMNS))


def last_touch(conn: Any, workspace_id: int, run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Last touch's rows on the run's selection, computed now on the same data."""
    version = run_store.data_version(conn, workspace_id)
    if run["data_version"] != version:
        raise Conflict(
            f"Run {run['run_id']} has no last_touch model, and its data has changed since "
            "it ran, so last touch cannot be computed on the same data. Start a run with "
            'last_touch among its models (POST /v1/attribution/runs with "models": '
            f"{json.dumps([*run['parameters']['models'], BASELINE])})."
        )
    plan = plan_from_parameters(run["parameters"])
    paths = load_selection(conn, workspace_id, plan.selection, version=version)
    return get_model(BASELINE).attribute(paths).to_rows()
