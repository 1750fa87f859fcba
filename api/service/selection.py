"""Which data an attribution run or a report reads: the data selection.

A selection names a conversion date range, segment filters, a channel grouping,
whether to collapse repeated touches and a lookback window. It comes as a JSON body
(``SelectionIn``, filters nested under ``filters``) or as query parameters
(``SelectionQuery``, flat, objects JSON-encoded; both in :mod:`api.schemas.selection`);
both become one :class:`Selection`, and :func:`load_selection` turns it into the
engine's ``PathSet``.

How it reads, cheapest first:

- no filter, no lookback, no touch times: the per-day rollups (and client-aggregated
  paths), never the raw journeys;
- filters or a lookback window: the matching raw journeys, grouped into unique paths
  in the database (client-aggregated paths carry neither attributes nor touch times,
  so they are left out, with a warning);
- touch times (time-decay): one path per raw journey;
- campaign credit (``campaign_top_n``): one path per raw journey with each touch's
  campaign, mapped to channel-campaign states (each channel's campaigns beyond the
  top N by touches as ``(other)``) and grouped into unique paths with numpy.

Channel groups are applied last, then repeats collapsed, as the engine's ``prepare``
(a campaign set ranks each grouped channel's campaigns between the two).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from attribution import PathSet
from attribution.campaigns import campaign_paths
from attribution.run import prepare

from .. import store
from ..store.selections import (
    count_aggregated_paths,
    count_lookback_trim,
    load_campaign_journeys,
    load_selected_paths,
    workspace_extent,
)

SECONDS_PER_DAY = 86_400.0
MAX_LOOKBACK_DAYS = 3650


SELECTION_DEFAULTS = ("channel_groups", "collapse_repeats", "lookback_days")
"""Selection fields a workspace can set defaults for."""


@dataclass(frozen=True)
class Selection:
    """A resolved data selection (defaults applied)."""

    date_from: date | None = None
    date_to: date | None = None
    attributes: Mapping[str, Any] | None = None
    device: str | None = None
    campaign: str | None = None
    channel_groups: Mapping[str, str] = field(default_factory=dict)
    collapse_repeats: bool = False
    lookback_days: int | None = None
    from_settings: frozenset[str] = field(default=frozenset(), compare=False)
    """Which of the fields above came from the workspace defaults, not the request."""

    @property
    def has_filters(self) -> bool:
        return self.attributes is not None or self.device is not None or self.campaign is not None

    def reads_journeys(self, need_times: bool = False) -> bool:
        """Whether loading needs the raw journeys rather than the rollups."""
        return need_times or self.has_filters or self.lookback_days is not None

    def journey_filter(self) -> store.JourneyFilter:
        """The filter of the store's raw-journey reads: range and segment."""
        return store.JourneyFilter(
            date_from=self.date_from,
            date_to=self.date_to,
            attributes=self.attributes,
            device=self.device,
            campaign=self.campaign,
        )

    def parameters(self) -> dict[str, Any]:
        """JSON-ready, in the body form, every field present (for storing and hashing)."""
        filters = {
            k: v
            for k, v in (
                ("attributes", self.attributes),
                ("device", self.device),
                ("campaign", self.campaign),
            )
            if v is not None
        }
        return {
            "date_from": None if self.date_from is None else self.date_from.isoformat(),
            "date_to": None if self.date_to is None else self.date_to.isoformat(),
            "filters": filters,
            "channel_groups": dict(sorted(self.channel_groups.items())),
            "collapse_repeats": self.collapse_repeats,
            "lookback_days": self.lookback_days,
        }


def selection_from(data: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> Selection:
    """Build a :class:`Selection` from loaded ``SelectionIn`` or ``SelectionQuery``
    data; fields the request left out come from ``defaults``."""
    filters = dict(data.get("filters") or {})
    for key in ("attributes", "device", "campaign"):
        if key in data:
            filters[key] = data[key]
    merged = {k: v for k, v in (defaults or {}).items() if k in SELECTION_DEFAULTS}
    from_settings = frozenset(k for k, v in merged.items() if k not in data and v is not None)
    merged.update({k: data[k] for k in SELECTION_DEFAULTS if k in data})
    return Selection(
        date_from=data.get("date_from"),
        date_to=data.get("date_to"),
        attributes=filters.get("attributes"),
        device=filters.get("device"),
        campaign=filters.get("campaign"),
        channel_groups=dict(merged.get("channel_groups") or {}),
        collapse_repeats=bool(merged.get("collapse_repeats", False)),
        lookback_days=merged.get("lookback_days"),
        from_settings=from_settings,
    )


def load_selection(
    conn: Any,
    workspace_id: int,
    selection: Selection,
    *,
    need_times: bool = False,
    version: int | None = None,
    campaign_top_n: int | None = None,
) -> PathSet:
    """The selected paths, channel-grouped and repeat-collapsed, ready for a model.

    Without ``need_times`` the set holds unique paths; with it, one path per journey
    carrying touch times, conversion times and journey ids (``path_ids``).

    With ``campaign_top_n`` the set is a campaign set (states are channel-campaign
    pairs, see :mod:`attribution.campaigns`), unless no journey of the selection
    carries a campaign: then it is the set read without it (``has_campaigns`` says
    which).

    ``version`` is the workspace's data version read in the same snapshot: given, a
    selection of unique paths read before on that version comes from this process's
    memory, and the store is not read at all. A selection read from the rollups on an
    older version is brought up to date: when the write since changed only totals
    (same paths, same names), the held set takes the new totals and keeps everything
    derived from its touches.
    """
    if campaign_top_n is not None:
        found = _campaign_selection(conn, workspace_id, selection, campaign_top_n,
                                    need_times=need_times, version=version)  # fmt: skip
        if found is not None:
            return found
    if version is None or need_times:
        return _prepared(read_selection(conn, workspace_id, selection, need_times=need_times),
                         selection)  # fmt: skip
    key = (store.database_oid(conn), workspace_id, _key(selection))
    held = _recent.get(key)
    if held is not None and held.version == version:
        return held.paths
    if selection.reads_journeys():
        paths = _prepared(read_selection(conn, workspace_id, selection), selection)
        _recent.put(key, _Held(version, None, None, paths))
        return paths
    s = selection
    totals = store.load_totals(conn, workspace_id, date_from=s.date_from, date_to=s.date_to)
    names = store.dictionary_names(conn, workspace_id)
    if (
        held is not None
        and held.path_ids is not None
        and held.names == names
        and np.array_equal(held.path_ids, totals["path_ids"])
    ):
        paths = held.paths.with_counts(totals["conversions"], totals["nulls"], totals["value"])
    else:
        arrays = store.paths_of_totals(conn, workspace_id, totals)
        paths = _prepared(PathSet.from_arrays(**arrays), selection)
    _recent.put(key, _Held(version, totals["path_ids"], names, paths))
    return paths


def _campaign_selection(
    conn: Any,
    workspace_id: int,
    selection: Selection,
    top_n: int,
    *,
    need_times: bool,
    version: int | None,
) -> PathSet | None:
    """The campaign set of a selection (unique paths unless ``need_times``), from this
    process's memory when read before on ``version``; None without any campaign."""
    key = (store.database_oid(conn), workspace_id, f"{_key(selection)}|campaigns:{top_n}")
    held = None if need_times else _recent.get(key)
    if held is not None and held.version == version:
        return held.paths
    found = read_campaign_journeys(conn, workspace_id, selection, top_n, need_times=need_times)
    if found is None:
        return None
    paths = found[0]
    if need_times:
        return paths
    paths = paths.aggregate()
    if version is not None:
        _recent.put(key, _Held(version, None, None, paths))
    return paths


def read_campaign_journeys(
    conn: Any, workspace_id: int, selection: Selection, top_n: int, *, need_times: bool
) -> tuple[PathSet, np.ndarray] | None:
    """One campaign path per journey of a selection, channel-grouped, mapped to
    channel-campaign states and repeat-collapsed, with each journey's day (counted
    from 2000-01-01); None when no journey of the selection carries a campaign."""
    arrays = load_campaign_journeys(
        conn,
        workspace_id,
        filter=selection.journey_filter(),
        lookback_days=selection.lookback_days,
        with_times=need_times,
    )
    names, codes = arrays.pop("campaign_names"), arrays.pop("campaign_tokens")
    days = arrays.pop("days")
    if not names:
        return None
    paths = PathSet.from_arrays(**arrays)
    if selection.channel_groups:
        paths = paths.group_channels(selection.channel_groups)
    paths = campaign_paths(paths, names, codes, top_n)
    if selection.collapse_repeats:
        paths = paths.collapse_repeats()
    return paths, days


def _prepared(paths: PathSet, selection: Selection) -> PathSet:
    s = selection
    return prepare(paths, collapse_repeats=s.collapse_repeats, channel_groups=s.channel_groups)


def _key(selection: Selection) -> str:
    return json.dumps(selection.parameters(), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class _Held:
    """A selection's path set at a data version; for sets read from the rollups, the
    path ids and dictionary names it was built from (grouping and collapsing keep
    paths in order, so totals by path id are totals of the set's paths)."""

    version: int
    path_ids: np.ndarray | None
    names: tuple[Any, ...] | None
    paths: PathSet


class _Recent:
    """The latest path set of recent selections, by database, workspace and
    selection, the least recently used dropped first. Bounded by the touches held, so
    large workspaces keep one or two."""

    MAX_TOKENS = 30_000_000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: OrderedDict[tuple[Any, ...], _Held] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> _Held | None:
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], held: _Held) -> None:
        for value in vars(held.paths).values():  # shared by every run that reads it
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
        with self.lock:
            current = self.items.get(key)
            if current is None or current.version <= held.version:
                self.items[key] = held
            self.items.move_to_end(key)
            while len(self.items) > 1 and self._tokens() > self.MAX_TOKENS:
                self.items.popitem(last=False)

    def _tokens(self) -> int:
        return sum(len(h.paths.tokens) for h in self.items.values())

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


_recent = _Recent()


def read_selection(
    conn: Any, workspace_id: int, selection: Selection, *, need_times: bool = False
) -> PathSet:
    """The selected paths as stored, before grouping and collapsing. Path ``i`` here is
    path ``i`` of :func:`load_selection`'s result."""
    s = selection
    if need_times:
        arrays = store.load_journeys(conn, workspace_id, filter=s.journey_filter())
        if s.lookback_days is not None:
            arrays = trim_to_window(arrays, s.lookback_days)
    elif s.reads_journeys():
        arrays = load_selected_paths(
            conn, workspace_id, filter=s.journey_filter(), lookback_days=s.lookback_days
        )
    else:
        arrays = store.load_paths(conn, workspace_id, date_from=s.date_from, date_to=s.date_to)
    return PathSet.from_arrays(**arrays)


def selection_warnings(
    conn: Any,
    workspace_id: int,
    selection: Selection,
    *,
    need_times: bool = False,
    paths: PathSet | None = None,
    campaigns: bool = False,
) -> list[str]:
    """What a selection leaves out, said plainly, so no table or report is short or
    empty without a reason: client-aggregated paths it cannot use (a campaign read,
    ``campaigns``, reads raw journeys too), touches and journeys its lookback window
    drops, and, when ``paths`` is empty, why."""
    notes = _aggregated_note(conn, workspace_id, selection, need_times, campaigns)
    if selection.lookback_days is not None:
        notes += _lookback_note(conn, workspace_id, selection)
    if paths is not None and paths.total_conversions + paths.total_nulls == 0:
        notes.append(_empty_note(conn, workspace_id, selection))
    return notes


def _aggregated_note(
    conn: Any, workspace_id: int, selection: Selection, need_times: bool, campaigns: bool
) -> list[str]:
    if not (campaigns or selection.reads_journeys(need_times)):
        return []
    n = count_aggregated_paths(
        conn, workspace_id, date_from=selection.date_from, date_to=selection.date_to
    )
    if not n:
        return []
    return [
        f"{n} client-aggregated paths (POST /v1/paths) are left out: they carry no "
        f"segment, touch or campaign data, which {_needs(selection, need_times, campaigns)} "
        "needs."
    ]


def _needs(selection: Selection, need_times: bool, campaigns: bool) -> str:
    """What in a selection makes it read raw journeys, as the reader set it."""
    causes = ["the campaign breakdown"] if campaigns else []
    causes += _segment_terms(selection)
    if need_times:
        causes.append("touch times (time_decay, the timing report)")
    return " and ".join(causes) or "this selection"


def _segment_terms(selection: Selection) -> list[str]:
    """The selection's segment filters and lookback window, as the reader set them."""
    terms = [
        f"filter {name}={json.dumps(value)}"
        for name in ("attributes", "device", "campaign")
        if (value := getattr(selection, name)) is not None
    ]
    if (days := selection.lookback_days) is not None:
        terms.append(f"lookback_days={days}{_origin(selection, 'lookback_days')}")
    return terms


def _origin(selection: Selection, name: str) -> str:
    if name in selection.from_settings:
        return " (a workspace default from /v1/settings)"
    return ""


def _lookback_note(conn: Any, workspace_id: int, selection: Selection) -> list[str]:
    days = selection.lookback_days
    assert days is not None
    trim = count_lookback_trim(
        conn, workspace_id, filter=selection.journey_filter(), lookback_days=days
    )
    if not trim.touches_out:
        return []
    gone = f", and {trim.journeys_out} journeys with none left" if trim.journeys_out else ""
    return [
        f"lookback_days={days}{_origin(selection, 'lookback_days')} left out "
        f"{trim.touches_out} of {trim.touches} touches, those over {days} days before "
        f"their journey's conversion (or last touch){gone}."
    ]


def _empty_note(conn: Any, workspace_id: int, selection: Selection) -> str:
    extent = workspace_extent(conn, workspace_id)
    if not extent.journeys and not extent.paths:
        return "The selection is empty: the workspace holds no journeys or paths yet."
    limits = []
    if selection.date_from is not None or selection.date_to is not None:
        since = selection.date_from.isoformat() if selection.date_from else "the start"
        until = selection.date_to.isoformat() if selection.date_to else "the end"
        limits.append(f"days {since} to {until}")
    limits += _segment_terms(selection)
    held = f"{extent.journeys} journeys and {extent.paths} client-aggregated paths"
    span = f", days {extent.first_day} to {extent.last_day}" if extent.first_day else ""
    return (
        f"The selection is empty: nothing matches {', '.join(limits) or 'it'}; "
        f"the workspace holds {held}{span}."
    )


def trim_to_window(arrays: Mapping[str, Any], lookback_days: int) -> dict[str, Any]:
    """Drop touches older than ``lookback_days`` before each journey's conversion (its
    last touch when it did not convert), then journeys left without a touch."""
    offsets = np.asarray(arrays["offsets"], dtype=np.int64)
    times = np.asarray(arrays["times"], dtype=np.float64)
    n = len(offsets) - 1
    lengths = np.diff(offsets)
    owner = np.repeat(np.arange(n), lengths)
    conv_times = np.asarray(arrays["conversion_times"], dtype=np.float64)
    last = times[offsets[1:] - 1] if n else np.zeros(0)
    reference = np.where(np.isnan(conv_times), last, conv_times)
    keep = times >= reference[owner] - lookback_days * SECONDS_PER_DAY
    new_lengths = np.bincount(owner[keep], minlength=n)
    alive = new_lengths > 0
    out = dict(arrays)
    for key in ("tokens", "stage_tokens", "times"):
        if out.get(key) is not None:
            out[key] = np.asarray(out[key])[keep]
    for key in ("conversions", "nulls", "value", "conversion_times"):
        out[key] = np.asarray(out[key])[alive]
    out["offsets"] = np.concatenate([[0], np.cumsum(new_lengths[alive])]).astype(np.int64)
    if out.get("path_ids") is not None:
        out["path_ids"] = [p for p, a in zip(out["path_ids"], alive, strict=True) if a]
    return out
