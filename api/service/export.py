"""Per-journey credit of a stored run: one row per journey x channel (x stage).

The engine splits each path's conversions and value over its touches (``Credit``'s
per-touch split). A run over unique paths (the rollups, or grouped raw journeys) is
re-run on the same snapshot of the data, and each converted journey gets its path's
split scaled by its share of the path: ``1 / conversions of the path`` of the
conversion credit, and ``journey value / value of the path`` of the value credit. A
run over single journeys (time decay) gives each journey its own split directly.
Journeys that did not convert carry no credit and are left out. The run's data must
not have changed since it ran, or the split would not be the run's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from typing import Any

import numpy as np

from attribution import PathSet
from attribution.run import prepare

from .. import store
from ..store import runs
from .errors import Conflict
from .runs import RunPlan, plan_from_parameters
from .selection import Selection, read_selection

COLUMNS = ("journey_id", "channel", "stage", "conversions", "value")

CAMPAIGNS_NOTE = (
    "This run credits channel-campaign pairs; the per-journey split is that of the same "
    "run without campaigns (channels and stages)."
)

NO_JOURNEYS_NOTE = (
    "This run read only client-aggregated paths (POST /v1/paths): they have no journeys, "
    "so there is no per-journey credit."
)

Split = dict[int, list[tuple[str, str | None, float, float]]]


def journey_credit(
    db: store.Database, workspace_id: int, run: Mapping[str, Any], model: str
) -> tuple[Iterator[dict[str, Any]], str | None]:
    """The rows (a lazy iterator holding one snapshot open) and a note when empty by
    design, or when the run credited campaigns (the split leaves them out).

    Raises Conflict when the workspace's data changed after the run.
    """
    plan = plan_from_parameters(run["parameters"])
    stack = ExitStack()
    conn = stack.enter_context(db.transaction())
    try:
        runs.begin_snapshot(conn)
        if runs.data_version(conn, workspace_id) != run["data_version"]:
            raise Conflict(
                "The workspace's data changed after this run; start a new run to export "
                "per-journey credit."
            )
        s = plan.selection
        if not runs.any_journeys(conn, workspace_id, date_from=s.date_from, date_to=s.date_to):
            stack.close()
            return iter(()), NO_JOURNEYS_NOTE
        rows = _rows(conn, workspace_id, plan, model)
    except BaseException:
        stack.close()
        raise

    def stream() -> Iterator[dict[str, Any]]:
        with stack:
            yield from rows

    return stream(), None if plan.campaigns is None else CAMPAIGNS_NOTE


def _rows(conn: Any, workspace_id: int, plan: RunPlan, model: str) -> Iterator[dict[str, Any]]:
    s = plan.selection
    need_times = plan.need_times
    raw = read_selection(conn, workspace_id, s, need_times=need_times)
    prepared = prepare(raw, collapse_repeats=s.collapse_repeats, channel_groups=s.channel_groups)
    credit = plan.built[model].attribute(prepared)
    split = path_split(credit.touch_conversions, credit.touch_value, prepared)
    if need_times:
        return _journey_rows(raw, split)
    keys = _path_keys(conn, workspace_id, raw, split)
    return _matched_rows(conn, workspace_id, s, raw, split, keys)


def path_split(touch_conversions: Any, touch_value: Any, paths: PathSet) -> Split:
    """Per converting path: (channel, stage, conversions, value) summed over its touches."""
    key = paths.path_index * paths.n_states + paths.states
    uniq, inverse = np.unique(key, return_inverse=True)
    conv = np.bincount(inverse, touch_conversions, minlength=len(uniq))
    val = np.bincount(inverse, touch_value, minlength=len(uniq))
    path, state = np.divmod(uniq, paths.n_states)
    channel, stage = np.divmod(state, paths.n_stage_columns)
    stages = paths.stage_names
    split: Split = {}
    converting = paths.conversions[path] > 0
    for k in np.flatnonzero(converting).tolist():
        split.setdefault(int(path[k]), []).append(
            (
                paths.channel_names[channel[k]],
                None if stages is None else stages[stage[k]],
                float(conv[k]),
                float(val[k]),
            )
        )
    return split


def _journey_rows(raw: PathSet, split: Split) -> Iterator[dict[str, Any]]:
    ids = raw.path_ids or ()
    for p, entries in split.items():
        for channel, stage, conv, val in entries:
            yield _row(ids[p], channel, stage, conv, val)


def _path_keys(
    conn: Any, workspace_id: int, raw: PathSet, split: Split
) -> dict[tuple[tuple[int, ...], tuple[int, ...]], int]:
    """Stored (channel codes, stage codes) of each converting path -> its index."""
    channel_code = {c.name: c.code for c in store.list_channels(conn, workspace_id)}
    stage_code = {st.name: st.code for st in store.list_stages(conn, workspace_id)}
    ch = np.array([channel_code[n] for n in raw.channel_names], dtype=np.int64)[raw.tokens]
    if raw.stage_tokens is None or raw.stage_names is None:
        st = np.zeros(len(raw.tokens), dtype=np.int64)
    else:
        names = [stage_code.get(n, 0) for n in raw.stage_names]  # "(none)" is code 0
        st = np.array(names, dtype=np.int64)[raw.stage_tokens]
    keys = {}
    for p in split:
        a, b = int(raw.offsets[p]), int(raw.offsets[p + 1])
        keys[(tuple(ch[a:b].tolist()), tuple(st[a:b].tolist()))] = p
    return keys


def _matched_rows(
    conn: Any,
    workspace_id: int,
    s: Selection,
    raw: PathSet,
    split: Split,
    keys: Mapping[tuple[tuple[int, ...], tuple[int, ...]], int],
) -> Iterator[dict[str, Any]]:
    journeys = runs.converted_journeys(
        conn, workspace_id, filter=s.journey_filter(), lookback_days=s.lookback_days
    )
    for journey_id, value, channels, stages in journeys:
        p = keys.get((tuple(channels), tuple(stages)))
        if p is None:
            continue
        per_conversion = 1.0 / raw.conversions[p]
        value_share = value / raw.value[p] if raw.value[p] > 0 else 0.0
        for channel, stage, conv, val in split[p]:
            yield _row(journey_id, channel, stage, conv * per_conversion, val * value_share)


def _row(
    journey_id: str, channel: str, stage: str | None, conv: float, val: float
) -> dict[str, Any]:
    return {
        "journey_id": journey_id,
        "channel": channel,
        "stage": stage,
        "conversions": float(conv),
        "value": float(val),
    }
