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

Rows are keyed (day, model, dimension, channel, campaign). With ``campaigns``, the
models are fitted on the campaign set a campaign run reads (one path per raw journey,
channel-campaign pairs as states, each channel's campaigns beyond its top N as
``(other)``, see :mod:`attribution.campaigns`), each journey landing on its stored
day; the per-path sums are then keyed by (path, channel-campaign pair) and landed the
same way, giving a ``campaign`` row per day for every pair of the range's table, and
the ``channel`` rows are their sums, as in the run's table. Spend, per (day, channel,
campaign), adds spend, cost per conversion and return on ad spend to each row, looked
up as the credit tables look it up (:class:`~.credit.Spend`, one day at a time).
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
from ..store import spend as spend_store
from . import cost, zones
from .credit import Spend as DaySpend
from .credit import untouched_rows
from .errors import FieldError, InvalidInput
from .runs import NO_CAMPAIGNS, QUERY_POINTERS, TIMED_MODELS, RunPlan, plan_run
from .selection import read_campaign_journeys, read_selection, selection_warnings
from .spend import reporting_currency

COLUMNS = ("day", "model", "dimension", "channel", "campaign", "conversions", "value")
SPEND_COLUMNS = ("spend", "cost_per_conversion", "roas")
MAX_DAYS = 1096
"""Longest range a series covers (three years)."""
EPOCH = date(2000, 1, 1)  # the store's day numbers count from here

Floats = NDArray[np.float64]
Key = tuple[str, str, str | None]
"""A row's (dimension, channel, campaign)."""


@dataclass(frozen=True)
class Days:
    """Per-day rows of a path set's paths: ``path`` (index into the set), ``day``
    (index into the range) and each row's weight in its path's conversions and in its
    path's value (each path's weights add up to one)."""

    path: NDArray[np.int64]
    day: NDArray[np.int64]
    conversions: Floats
    value: Floats
    n_days: int

    @classmethod
    def of(
        cls, path_ids: NDArray[np.int64], rows: Mapping[str, Any], first: date, n_days: int
    ) -> Days:
        """Weights of the store's per-day ``rows`` for the set of paths ``path_ids``
        (ascending)."""
        at = np.searchsorted(path_ids, rows["path_ids"])
        found = at < len(path_ids)
        found[found] = path_ids[at[found]] == rows["path_ids"][found]
        amounts = (np.asarray(rows[k])[found] for k in ("conversions", "nulls", "value"))
        day = rows["days"][found] - (first - EPOCH).days
        return cls.weighed(at[found], day, *amounts, n_paths=len(path_ids), n_days=n_days)

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
        n_days: int,
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
        return cls(path, day, by_conv, by_value, n_days)

    def land(
        self, paths: PathSet, touch: Floats, weight: Floats, column: NDArray[np.int64], n: int
    ) -> Floats:
        """Per-touch amounts summed per path and ``column`` (one per touch, ``n`` in
        all), landed on the days: an ``(n_days, n)`` grid for ``n_days`` days."""
        key = paths.path_index * n + column
        keys, inverse = np.unique(key, return_inverse=True)
        amount = np.bincount(inverse, touch, minlength=len(keys))
        entry_path, entry_column = np.divmod(keys, n)
        starts = np.searchsorted(self.path, np.arange(paths.n_paths + 1))
        counts = (starts[1:] - starts[:-1])[entry_path]
        entry = np.repeat(np.arange(len(keys)), counts)
        within = np.arange(len(entry)) - np.repeat(np.cumsum(counts) - counts, counts)
        row = starts[entry_path][entry] + within
        cell = self.day[row] * n + entry_column[entry]
        landed = np.bincount(cell, amount[entry] * weight[row], minlength=self.n_days * n)
        return np.asarray(landed, dtype=np.float64).reshape(self.n_days, n)


@dataclass(frozen=True)
class Layout:
    """The rows a series lists each day for each model, and where each touch's
    state lands: a ``channel`` row per channel, then, over a campaign set, a
    ``campaign`` row per channel-campaign pair of the set (the run table's order)."""

    keys: tuple[Key, ...]
    column: NDArray[np.int64]
    """Per state, its landing column: its channel, or its pair over a campaign set."""
    n_columns: int
    member: Floats | None
    """Over a campaign set, ``(n_pairs, n_channels)``: 1 where the pair is the channel's."""

    @classmethod
    def of(cls, paths: PathSet) -> Layout:
        names = paths.channel_names
        channels: list[Key] = [("channel", c, None) for c in names]
        width = paths.n_stage_columns
        if not paths.has_campaigns:
            column = np.arange(paths.n_states, dtype=np.int64) // width
            return cls(tuple(channels), column, len(names), None)
        assert paths.stage_names is not None  # a campaign set names its campaigns
        ci, si = np.nonzero(paths.state_present)
        column = np.full(paths.n_states, -1, dtype=np.int64)
        column[ci * width + si] = np.arange(len(ci))
        member = np.zeros((len(ci), len(names)))
        member[np.arange(len(ci)), ci] = 1.0
        pairs = [("campaign", names[c], paths.stage_names[s]) for c, s in zip(ci, si, strict=True)]
        return cls((*channels, *pairs), column, len(ci), member)

    def land(self, days: Days, paths: PathSet, touch: Floats, weight: Floats) -> Floats:
        """An ``(n_days, len(keys))`` grid: the amounts of each row's key per day."""
        landed = days.land(paths, touch, weight, self.column[paths.states], self.n_columns)
        if self.member is None:
            return landed
        return np.hstack([landed @ self.member, landed])


def _sums(path: NDArray[np.int64], amounts: Floats, n: int) -> Floats:
    return np.asarray(np.bincount(path, amounts, minlength=n), dtype=np.float64)


def _within(path: NDArray[np.int64], amounts: Floats, n: int) -> Floats:
    """Each row's part of its path's total (0 where the total is 0)."""
    totals = _sums(path, amounts, n)[path]
    return np.divide(amounts, totals, out=np.zeros(len(amounts)), where=totals > 0)


@dataclass(frozen=True)
class Answer:
    """A series: its rows (:data:`COLUMNS` then :data:`SPEND_COLUMNS`), notes on what
    its selection left out, and what it read: the workspace's data version, the range
    and the reporting currency of its spend."""

    rows: list[dict[str, Any]]
    notes: list[str]
    data_version: int
    date_from: date
    date_to: date
    currency: str


def series(db: store.Database, workspace_id: int, query: Mapping[str, Any], budget: int) -> Answer:
    """The series for a query of :class:`~api.schemas.attribution.SeriesQuery`;
    InvalidInput when its models are more work than ``budget`` (as a synchronous
    run's table would be)."""
    with db.transaction() as conn:
        runs.begin_snapshot(conn)
        version = runs.data_version(conn, workspace_id)
        settings = runs.get_settings(conn, workspace_id)
        plan = plan_run(query, settings, QUERY_POINTERS)
        first, last = check_plan(plan)
        sets = _sets(conn, workspace_id, plan, first, last)
        campaigns = plan.campaign_top_n is not None
        notes = selection_warnings(conn, workspace_id, plan.selection, need_times=plan.need_times,
                                   paths=sets[True][0], campaigns=campaigns)  # fmt: skip
        spent = spend_store.spend_by_day(conn, workspace_id, first, last)
    unique = sets[False][0]
    if campaigns and not unique.has_campaigns:
        notes.append(NO_CAMPAIGNS)
    check_budget(plan, unique, budget)
    layout = Layout.of(unique)
    grids = {}
    for model in plan.models:
        paths, days = sets[model in TIMED_MODELS]
        credit = plan.built[model].attribute(paths)
        conv, value = credit.table_touch_split(paths)
        grids[model] = (layout.land(days, paths, conv, days.conversions),
                        layout.land(days, paths, value, days.value))  # fmt: skip
    currency = reporting_currency(settings)
    keys = (*layout.keys, *untouched_keys(spent, plan, currency, layout.keys))
    extra = len(keys) - len(layout.keys)
    grids = {m: (_widened(c, extra), _widened(v, extra)) for m, (c, v) in grids.items()}
    spend = day_spend(spent, plan, currency, keys)
    rows = series_rows(first, keys, grids, spend)
    return Answer(rows, notes, version, first, last, currency)


def untouched_keys(
    spent: Mapping[tuple[date, str, str | None], float],
    plan: RunPlan,
    currency: str,
    keys: Sequence[Key],
) -> list[Key]:
    """Rows for spend in the range that no journey touched, as the credit tables add
    them: a channel without a row, and over a campaign set a campaign neither listed
    nor held by its channel's ``(other)``. Their credit is zero every day."""
    groups = plan.selection.channel_groups
    total: dict[tuple[str, str | None], float] = {}
    for (_, channel, campaign), amount in spent.items():
        key = (groups.get(channel, channel), campaign)
        total[key] = total.get(key, 0.0) + amount
    listed = frozenset((c, k) for _, c, k in keys if k is not None)
    rows = [{"model": "", "dimension": d, "channel": c, "campaign": k} for d, c, k in keys]
    found = untouched_rows(rows, "", DaySpend(currency, total, listed))
    return [(r["dimension"], r["channel"], r["campaign"]) for r in found]


def _widened(grid: Floats, extra: int) -> Floats:
    """A grid with ``extra`` zero columns for keys no journey touched."""
    if not extra:
        return grid
    return np.hstack([grid, np.zeros((grid.shape[0], extra))])


def day_spend(
    spent: Mapping[tuple[date, str, str | None], float],
    plan: RunPlan,
    currency: str,
    keys: Sequence[Key],
) -> dict[date, DaySpend]:
    """Each day's spend, under the run's channel grouping, for a series of ``keys``
    (its campaign rows decide which campaigns a channel's ``(other)`` holds)."""
    groups = plan.selection.channel_groups
    by_day: dict[date, dict[tuple[str, str | None], float]] = {}
    for (day, channel, campaign), amount in spent.items():
        grouped = by_day.setdefault(day, {})
        key = (groups.get(channel, channel), campaign)
        grouped[key] = grouped.get(key, 0.0) + amount
    listed = frozenset((c, k) for _, c, k in keys if k is not None)
    return {day: DaySpend(currency, by_key, listed) for day, by_key in by_day.items()}


Sets = dict[bool, tuple[PathSet, Days]]
"""The path set and its days each model reads: by whether it needs touch times."""


def _sets(conn: Any, workspace_id: int, plan: RunPlan, first: date, last: date) -> Sets:
    """The path sets a table run of the plan reads, with their days."""
    n_days = (last - first).days + 1
    top_n = plan.campaign_top_n
    if top_n is not None:
        found = _campaign_sets(conn, workspace_id, plan, top_n, first, n_days)
        if found is not None:
            return found
    if plan.selection.reads_journeys(plan.need_times):
        return _journey_sets(conn, workspace_id, plan, first, n_days)
    return _rollup_sets(conn, workspace_id, plan, first, last)


def _rollup_sets(conn: Any, workspace_id: int, plan: RunPlan, first: date, last: date) -> Sets:
    """Unique paths from the rollups, as a table run over the range reads them."""
    totals = store.load_totals(conn, workspace_id, date_from=first, date_to=last)
    rows = store.load_path_days(conn, workspace_id, first, last)
    raw = PathSet.from_arrays(**store.paths_of_totals(conn, workspace_id, totals))
    paths = _prepared(raw, plan)
    days = Days.of(totals["path_ids"], rows, first, (last - first).days + 1)
    return {False: (paths, days), True: (paths, days)}


def _journey_sets(conn: Any, workspace_id: int, plan: RunPlan, first: date, n_days: int) -> Sets:
    """One path per journey for the models that need touch times, and those merged
    into unique paths for the others, as a table run with ``time_decay`` reads them
    (a run with segment filters or a lookback window but no such model groups the
    same journeys in the database: the same unique paths, in another order); each
    journey on its day in the workspace's time zone."""
    raw = read_selection(conn, workspace_id, plan.selection, need_times=True)
    zone = ZoneInfo(zones.zone_of(conn, workspace_id))
    day = journey_days(raw, zone) - (first - EPOCH).days
    return _per_journey(_prepared(raw, plan), day, n_days)


def _campaign_sets(
    conn: Any, workspace_id: int, plan: RunPlan, top_n: int, first: date, n_days: int
) -> Sets | None:
    """The campaign set a campaign run reads, per journey and merged, each journey on
    its stored day; None when no journey of the selection carries a campaign."""
    found = read_campaign_journeys(conn, workspace_id, plan.selection, top_n,
                                   need_times=plan.need_times)  # fmt: skip
    if found is None:
        return None
    journeys, days = found
    return _per_journey(journeys, days - (first - EPOCH).days, n_days)


def _per_journey(journeys: PathSet, day: NDArray[np.int64], n_days: int) -> Sets:
    """A set of one path per journey with each journey's day (index into the range),
    and the same journeys merged into unique paths."""
    unique = journeys.aggregate()
    amounts = (journeys.conversions, journeys.nulls, journeys.value)
    n = journeys.n_paths
    each = Days.weighed(np.arange(n), day, *amounts, n_paths=n, n_days=n_days)
    merged = Days.weighed(journeys.aggregated_index(), day, *amounts, n_paths=unique.n_paths,
                          n_days=n_days)  # fmt: skip
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
    keys: Sequence[Key],
    grids: Mapping[str, tuple[Floats, Floats]],
    spend: Mapping[date, DaySpend] | None = None,
) -> list[dict[str, Any]]:
    """One row per day x model x key (days in order, then models as asked, then keys),
    from per-model ``(n_days, len(keys))`` conversion and value grids. With ``spend``
    per day, each row also has ``spend``, ``cost_per_conversion`` and ``roas`` (value
    per unit of spend), None where undefined."""
    rows = []
    n_days = next(iter(grids.values()))[0].shape[0] if grids else 0
    for d in range(n_days):
        day = first + timedelta(days=d)
        spent = None if spend is None else spend.get(day)
        for model, (conv, value) in grids.items():
            for k, (dimension, channel, campaign) in enumerate(keys):
                row = {"day": day.isoformat(), "model": model, "dimension": dimension,
                       "channel": channel, "campaign": campaign,
                       "conversions": float(conv[d, k]), "value": float(value[d, k])}  # fmt: skip
                if spend is not None:
                    row.update(_spend_columns(None if spent is None else spent.of_row(row), row))
                rows.append(row)
    return rows


def _spend_columns(spent: float | None, row: Mapping[str, Any]) -> dict[str, float | None]:
    """As in the credit tables: null without spend that day, null where undefined."""
    conversions, value = row["conversions"], row["value"]
    return {
        "spend": spent,
        "cost_per_conversion": spent / conversions
        if spent is not None and conversions > 0
        else None,
        "roas": value / spent if spent else None,
    }
