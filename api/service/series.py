"""Daily series: a range's attribution table, spread over the days of the range.

The run's models are fitted once over the whole range, on the path sets a table run
over that range reads: unique paths from the per-day rollups (and dated client paths);
with a model that needs touch times, one path per journey for it and those journeys
merged into unique paths for the others. Each model's table is shared out over the
set's touches (``Credit.table_touch_split``), summed per path and channel, and each
path's share is landed on its days in proportion to the conversions it had on each
(its value on each, for value; its journeys, for a path that did not convert). Every
path's weights over its days add up to one, so the days of a channel add up to the
range's table for every model, up to float rounding.

Rows are keyed (day, model, channel). A campaign dimension would key the per-path
sums by (path, channel, campaign) from the touches' campaigns, and land them the same
way. Spend, when given per (day, channel), adds spend, cost per conversion and return
on ad spend to each row (:func:`series_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from attribution import PathSet
from attribution.run import prepare

from .. import store
from ..store import runs
from . import cost, zones
from .errors import FieldError, InvalidInput
from .runs import QUERY_POINTERS, TIMED_MODELS, RunPlan, plan_run
from .selection import read_selection, selection_warnings

COLUMNS = ("day", "model", "channel", "conversions", "value")
SPEND_COLUMNS = ("spend", "cpa", "roas")
MAX_DAYS = 1096
"""Longest range a series covers (three years)."""
EPOCH = date(2000, 1, 1)  # the store's day numbers count from here

Floats = NDArray[np.float64]
Spend = Mapping[tuple[date, str], float]


@dataclass(frozen=True)
class Days:
    """Per-day rows of a path set's paths: ``path`` (index into the set), ``day``
    (index into the range) and each row's weight in its path's conversions and in its
    path's value (each path's weights add up to one)."""

    path: NDArray[np.int64]
    day: NDArray[np.int64]
    conversions: Floats
    value: Floats

    @classmethod
    def of(cls, path_ids: NDArray[np.int64], rows: Mapping[str, Any], first: date) -> Days:
        """Weights of the store's per-day ``rows`` for the set of paths ``path_ids``
        (ascending)."""
        at = np.searchsorted(path_ids, rows["path_ids"])
        found = at < len(path_ids)
        found[found] = path_ids[at[found]] == rows["path_ids"][found]
        amounts = (np.asarray(rows[k])[found] for k in ("conversions", "nulls", "value"))
        day = rows["days"][found] - (first - EPOCH).days
        return cls.weighed(at[found], day, *amounts, n_paths=len(path_ids))

    @classmethod
    def weighed(
        cls,
        path: NDArray[np.int64],
        day: NDArray[np.int64],
        conversions: Floats,
        nulls: Floats,
        value: Floats,
        *,
        n_paths: int,
    ) -> Days:
        """Rows of (path, day) with their journeys' totals, weighed within each path:
        by conversions (by journeys where a path did not convert), and by value (by
        the conversion weights where a path has no value)."""
        order = np.lexsort((day, path))
        path, day = path[order], day[order]
        conv, nulls, value = conversions[order], nulls[order], value[order]
        n = n_paths
        by_conv = np.where(
            _sums(path, conv, n)[path] > 0, _within(path, conv, n), _within(path, conv + nulls, n)
        )
        by_value = np.where(_sums(path, value, n)[path] > 0, _within(path, value, n), by_conv)
        return cls(path, day, by_conv, by_value)

    def land(self, paths: PathSet, touch: Floats, weight: Floats, n_days: int) -> Floats:
        """Per-touch amounts summed per path and channel, landed on the days:
        an ``(n_days, n_channels)`` grid."""
        n_channels = paths.n_channels
        key = paths.path_index * n_channels + paths.tokens
        keys, inverse = np.unique(key, return_inverse=True)
        amount = np.bincount(inverse, touch, minlength=len(keys))
        entry_path, entry_channel = np.divmod(keys, n_channels)
        starts = np.searchsorted(self.path, np.arange(paths.n_paths + 1))
        counts = (starts[1:] - starts[:-1])[entry_path]
        entry = np.repeat(np.arange(len(keys)), counts)
        within = np.arange(len(entry)) - np.repeat(np.cumsum(counts) - counts, counts)
        row = starts[entry_path][entry] + within
        cell = self.day[row] * n_channels + entry_channel[entry]
        landed = np.bincount(cell, amount[entry] * weight[row], minlength=n_days * n_channels)
        return np.asarray(landed, dtype=np.float64).reshape(n_days, n_channels)


def _sums(path: NDArray[np.int64], amounts: Floats, n: int) -> Floats:
    return np.asarray(np.bincount(path, amounts, minlength=n), dtype=np.float64)


def _within(path: NDArray[np.int64], amounts: Floats, n: int) -> Floats:
    """Each row's part of its path's total (0 where the total is 0)."""
    totals = _sums(path, amounts, n)[path]
    return np.divide(amounts, totals, out=np.zeros(len(amounts)), where=totals > 0)


def series(
    db: store.Database, workspace_id: int, query: Mapping[str, Any], budget: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """The series rows for a query of :class:`~api.schemas.attribution.SeriesQuery`,
    and notes on what its selection left out; InvalidInput when its models are more
    work than ``budget`` (as a synchronous run's table would be)."""
    with db.transaction() as conn:
        runs.begin_snapshot(conn)
        plan = plan_run(query, runs.get_settings(conn, workspace_id), QUERY_POINTERS)
        first, last = check_plan(plan)
        if plan.selection.reads_journeys(plan.need_times):
            sets = _journey_sets(conn, workspace_id, plan, first)
        else:
            sets = _rollup_sets(conn, workspace_id, plan, first, last)
        notes = selection_warnings(
            conn, workspace_id, plan.selection, need_times=plan.need_times, paths=sets[True][0]
        )
    check_budget(plan, sets[False][0], budget)
    n_days = (last - first).days + 1
    grids = {}
    for model in plan.models:
        paths, days = sets[model in TIMED_MODELS]
        credit = plan.built[model].attribute(paths)
        conv, value = credit.table_touch_split(paths)
        grids[model] = (days.land(paths, conv, days.conversions, n_days),
                        days.land(paths, value, days.value, n_days))  # fmt: skip
    channels = sets[False][0].channel_names
    return series_rows(first, channels, grids), notes


Sets = dict[bool, tuple[PathSet, Days]]
"""The path set and its days each model reads: by whether it needs touch times."""


def _rollup_sets(conn: Any, workspace_id: int, plan: RunPlan, first: date, last: date) -> Sets:
    """Unique paths from the rollups, as a table run over the range reads them."""
    totals = store.load_totals(conn, workspace_id, date_from=first, date_to=last)
    rows = store.load_path_days(conn, workspace_id, first, last)
    raw = PathSet.from_arrays(**store.paths_of_totals(conn, workspace_id, totals))
    paths = _prepared(raw, plan)
    days = Days.of(totals["path_ids"], rows, first)
    return {False: (paths, days), True: (paths, days)}


def _journey_sets(conn: Any, workspace_id: int, plan: RunPlan, first: date) -> Sets:
    """One path per journey for the models that need touch times, and those merged
    into unique paths for the others, as a table run with ``time_decay`` reads them
    (a run with segment filters or a lookback window but no such model groups the
    same journeys in the database: the same unique paths, in another order); each
    journey on its day in the workspace's time zone."""
    raw = read_selection(conn, workspace_id, plan.selection, need_times=True)
    zone = ZoneInfo(zones.zone_of(conn, workspace_id))
    day = journey_days(raw, zone) - (first - EPOCH).days
    journeys = _prepared(raw, plan)
    unique = journeys.aggregate()
    amounts = (journeys.conversions, journeys.nulls, journeys.value)
    each = Days.weighed(np.arange(journeys.n_paths), day, *amounts, n_paths=journeys.n_paths)
    merged = Days.weighed(journeys.aggregated_index(), day, *amounts, n_paths=unique.n_paths)
    return {True: (journeys, each), False: (unique, merged)}


def _prepared(raw: PathSet, plan: RunPlan) -> PathSet:
    s = plan.selection
    return prepare(raw, collapse_repeats=s.collapse_repeats, channel_groups=s.channel_groups)


def journey_days(paths: PathSet, zone: tzinfo) -> NDArray[np.int64]:
    """Each journey's day (since 2000-01-01) in ``zone``: its conversion's, else its
    last touch's, as the store counts it."""
    assert paths.times is not None and paths.conversion_times is not None
    last = paths.times[paths.offsets[1:] - 1]
    at = np.where(np.isnan(paths.conversion_times), last, paths.conversion_times)
    days = [(datetime.fromtimestamp(t, zone).date() - EPOCH).days for t in at.tolist()]
    return np.asarray(days, dtype=np.int64)


def check_budget(plan: RunPlan, unique: PathSet, budget: int) -> None:
    """The models are fitted within the request: no more work than a synchronous run."""
    found = cost.estimate(plan.built, None, unique)
    if found.work > budget:
        detail = (
            f"This series is too much work for one request: {len(plan.models)} models over "
            f"{found.unique_paths} unique paths with {found.players} players is an estimated "
            f"{found.work:,} units, over the budget of {budget:,}. Ask for fewer models, "
            "channels or days."
        )
        raise InvalidInput(detail, [FieldError("/query/models", detail)])


def check_plan(plan: RunPlan) -> tuple[date, date]:
    """The range of a plan, or InvalidInput when it is longer than a series covers."""
    s = plan.selection
    assert s.date_from is not None and s.date_to is not None  # required by the query
    if (s.date_to - s.date_from).days >= MAX_DAYS:
        raise InvalidInput(
            f"A series covers at most {MAX_DAYS} days.",
            [FieldError("/query/date_to", f"At most {MAX_DAYS - 1} days after date_from.")],
        )
    return s.date_from, s.date_to


def series_rows(
    first: date,
    channels: Sequence[str],
    grids: Mapping[str, tuple[Floats, Floats]],
    spend: Spend | None = None,
) -> list[dict[str, Any]]:
    """One row per day x model x channel (days in order, then models as asked, then
    channels), from per-model ``(n_days, n_channels)`` conversion and value grids.
    With ``spend`` per (day, channel), each row also has ``spend``, ``cpa`` (spend per
    conversion) and ``roas`` (value per unit of spend), None where undefined."""
    rows = []
    n_days = next(iter(grids.values()))[0].shape[0] if grids else 0
    for d in range(n_days):
        day = first + timedelta(days=d)
        for model, (conv, value) in grids.items():
            for c, channel in enumerate(channels):
                row = {"day": day.isoformat(), "model": model, "channel": channel,
                       "conversions": float(conv[d, c]), "value": float(value[d, c])}  # fmt: skip
                if spend is not None:
                    row.update(_spend_columns(spend.get((day, channel), 0.0), row))
                rows.append(row)
    return rows


def _spend_columns(spent: float, row: Mapping[str, Any]) -> dict[str, float | None]:
    conversions, value = row["conversions"], row["value"]
    return {
        "spend": spent,
        "cpa": spent / conversions if conversions > 0 else None,
        "roas": value / spent if spent > 0 else None,
    }
