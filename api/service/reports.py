"""Journey reports as tidy rows: from a selection's paths to the tables the API returns.

The math is in :mod:`attribution` (funnel, drop-off, loops, channel roles, timing, the
Markov chain); this module picks the view of the paths each report needs (channels
only, stages only, repeats collapsed), fixes each table's columns and handles the
empty selection, so that the JSON and CSV endpoints and the HTML report print the
same numbers. No HTTP and no SQL here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attribution import MissingData, PathSet, get_model
from attribution import journeys as jr
from attribution.markov import transition_rows
from attribution.paths import NO_STAGE
from attribution.sequences import SEQUENCE_COLUMNS, sequence_effects

from .. import store
from ..store import runs
from .selection import Selection, load_selection, selection_from, selection_warnings

TRANSITION_COLUMNS = ("source", "target", "count", "probability")
PATH_COLUMNS = (
    "rank",
    "path",
    "length",
    "journeys",
    "conversions",
    "nulls",
    "conversion_rate",
    "value",
)
STAGE_EFFECT_COLUMNS = (
    "stage",
    "removal_effect",
    "value_removal_effect",
    "conversions",
    "value",
    "share",
)
SEQUENCE_EFFECT_COLUMNS = SEQUENCE_COLUMNS
PATH_SORTS = ("journeys", "conversions", "nulls", "value", "conversion_rate")
PATH_SEPARATOR = " > "

Rows = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Loaded:
    """A selection's paths and the workspace's funnel order."""

    paths: PathSet
    stages: list[str]
    notes: list[str] = field(default_factory=list)
    """What the selection left out, and why it is empty if it is."""

    @property
    def order(self) -> list[str]:
        return stage_order(self.paths, self.stages)


def selection_of(conn: Any, workspace_id: int, query: Mapping[str, Any]) -> Selection:
    """The request's selection; what it leaves out comes from the workspace defaults
    (`GET /v1/settings`), as for attribution runs."""
    return selection_from(query, runs.get_settings(conn, workspace_id))


def load(
    db: store.Database, workspace_id: int, selection: Selection, *, need_times: bool = False
) -> Loaded:
    """A selection's paths and the workspace's stages."""
    with db.transaction() as conn:
        runs.begin_snapshot(conn)
        return _load(conn, workspace_id, selection, need_times)


def table(
    db: store.Database,
    workspace_id: int,
    query: Mapping[str, Any],
    build: Callable[[Loaded], Rows],
    *,
    need_times: bool = False,
) -> Rows:
    """A report's rows: the request's selection loaded, then ``build`` over it."""
    return noted_table(db, workspace_id, query, build, need_times=need_times)[0]


def noted_table(
    db: store.Database,
    workspace_id: int,
    query: Mapping[str, Any],
    build: Callable[[Loaded], Rows],
    *,
    need_times: bool = False,
) -> tuple[Rows, list[str]]:
    """A report's rows, and what its selection left out (see :class:`Loaded`)."""
    with db.transaction() as conn:
        runs.begin_snapshot(conn)
        loaded = _load(conn, workspace_id, selection_of(conn, workspace_id, query), need_times)
    with unchecked_floats():
        return build(loaded), loaded.notes


def _load(conn: Any, workspace_id: int, selection: Selection, need_times: bool) -> Loaded:
    """In one snapshot (begun by the caller), so the data version keys the paths read."""
    version = runs.data_version(conn, workspace_id)
    paths = load_selection(conn, workspace_id, selection, need_times=need_times, version=version)
    stages = [s.name for s in store.list_stages(conn, workspace_id)]
    notes = selection_warnings(conn, workspace_id, selection, need_times=need_times, paths=paths)
    return Loaded(paths, stages, notes)


@contextmanager
def unchecked_floats() -> Iterator[None]:
    """Reports over client-aggregated paths, which may carry counts up to 10^15,
    fractions included, where the interval formulas can overflow or divide by zero.
    The results are then clipped or undefined (empty cells), which is the honest
    answer, so the floating-point warnings are not raised as errors."""
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        yield


def stage_order(paths: PathSet, workspace_stages: Sequence[str]) -> list[str]:
    """The workspace's stage order, plus "(none)" last when some touches carry no stage."""
    order = list(workspace_stages)
    if paths.stage_names is not None and NO_STAGE in paths.stage_names:
        order.append(NO_STAGE)
    return order


def by_channel(paths: PathSet) -> PathSet:
    """The same journeys with touches labelled by channel only."""
    return _labelled(paths, paths.channel_names, paths.tokens)


def by_stage(paths: PathSet) -> PathSet:
    """The same journeys with touches labelled by stage only (stage names as "channels")."""
    if paths.stage_names is None or paths.stage_tokens is None:
        raise MissingData("this report needs touch stages; the paths carry none")
    return _labelled(paths, paths.stage_names, paths.stage_tokens)


def _labelled(paths: PathSet, names: tuple[str, ...], tokens: Any) -> PathSet:
    """``paths``' journeys and totals with ``tokens`` (naming ``names``) as their touches."""
    return PathSet(
        channel_names=names,
        tokens=tokens,
        offsets=paths.offsets,
        conversions=paths.conversions,
        nulls=paths.nulls,
        value=paths.value,
    )


def relabel(paths: PathSet, by: str) -> PathSet:
    return by_stage(paths) if by == "stage" else by_channel(paths)


# ---------------------------------------------------------------------- transitions
def transitions(paths: PathSet, by: str = "channel") -> list[dict[str, Any]]:
    """The order-1 transition matrix: counts and probabilities between channels or stages.

    Nodes are channel (or stage) names and ``(start)``, ``(conversion)``, ``(null)``.
    ``count`` weighs each move by the journeys of its path; ``probability`` is the
    count over all moves out of ``source``.
    """
    if paths.n_paths == 0:
        return []
    return [
        {
            "source": r["from_channel"],
            "target": r["to_channel"],
            "count": r["count"],
            "probability": r["probability"],
        }
        for r in transition_rows(relabel(paths, by))
    ]


def stage_flow(paths: PathSet) -> list[dict[str, Any]]:
    """Moves between stages with repeats in one stage merged: the report's journey flow."""
    if paths.n_paths == 0 or not paths.has_stages:
        return []
    return transitions(by_stage(paths).collapse_repeats(), "channel")


# ---------------------------------------------------------------------- top paths
def top_paths(
    paths: PathSet, by: str = "channel", sort: str = "journeys", limit: int = 20
) -> list[dict[str, Any]]:
    """The most frequent (or converting, valuable …) unique paths, ranked.

    Paths are grouped on channels (or stages) alone; ties in the sort key go to the
    path listed first alphabetically, so the ranking is stable.
    """
    if paths.n_paths == 0:
        return []
    grouped = relabel(paths, by).aggregate()
    journeys = grouped.conversions + grouped.nulls
    rate = np.divide(grouped.conversions, journeys, out=np.zeros_like(journeys), where=journeys > 0)
    keys = {
        "journeys": journeys,
        "conversions": grouped.conversions,
        "nulls": grouped.nulls,
        "value": grouped.value,
        "conversion_rate": rate,
    }
    texts = [PATH_SEPARATOR.join(p) for p in grouped.paths_as_lists()]
    alphabetical = np.argsort(np.argsort(np.array(texts, dtype=object), kind="stable"))
    chosen = np.lexsort((alphabetical, -keys[sort]))[:limit]
    return [
        dict(
            zip(
                PATH_COLUMNS,
                (
                    rank + 1,
                    texts[i],
                    int(grouped.lengths[i]),
                    float(journeys[i]),
                    float(grouped.conversions[i]),
                    float(grouped.nulls[i]),
                    float(rate[i]),
                    float(grouped.value[i]),
                ),
                strict=True,
            )
        )
        for rank, i in enumerate(chosen.tolist())
    ]


# ---------------------------------------------------------------------- stage reports
def funnel(paths: PathSet, order: Sequence[str]) -> list[dict[str, Any]]:
    """The stage funnel (see :func:`attribution.journeys.funnel`); zeros with no journeys."""
    if paths.n_paths == 0:
        return [
            dict(zip(jr.FUNNEL_COLUMNS, (name, k + 1, *[0.0] * 6, None, None, None), strict=True))
            for k, name in enumerate(order)
        ]
    return jr.funnel(paths, order).to_rows()


def loops(paths: PathSet, order: Sequence[str]) -> list[dict[str, Any]]:
    if paths.n_paths == 0:
        return []
    return jr.loops(paths, order).to_rows()


def loop_summary(paths: PathSet, order: Sequence[str]) -> list[dict[str, Any]]:
    if paths.n_paths == 0:
        return [
            {"kind": k, "journeys": 0.0, "conversions": 0.0, "conversion_rate": None}
            for k in ("looping", "straight")
        ]
    return jr.loops(paths, order).summary_rows()


def dropoff(paths: PathSet, level: float = 0.95, limit: int | None = None) -> list[dict[str, Any]]:
    if paths.n_paths == 0:
        return []
    return jr.dropoff(paths, level).to_rows()[:limit]


def channel_roles(paths: PathSet) -> list[dict[str, Any]]:
    if paths.n_paths == 0:
        return []
    return jr.channel_roles(paths).to_rows()


def timing(
    journeys: PathSet, order: Sequence[str] | None, percentiles: Sequence[float]
) -> list[dict[str, Any]]:
    """Time to conversion and between stages; ``order`` None when journeys have no stages."""
    if journeys.n_paths == 0:
        return []
    return jr.timing(journeys, order, percentiles).to_rows()


def stage_removal_effects(
    paths: PathSet, order: Sequence[str], markov_order: int = 1
) -> list[dict[str, Any]]:
    """Per stage, in funnel order: the Markov removal effect of all its states, and credit."""
    if paths.n_paths == 0:
        return []
    if not paths.has_stages:
        raise MissingData("this report needs touch stages; the paths carry none")
    credit = get_model("markov", order=markov_order).attribute(paths)
    assert credit.removal_effects is not None and credit.value_removal_effects is not None
    names = list(credit.stage_names or ())
    conv, val = credit.by_stage()
    total = float(conv.sum())
    rows = []
    for stage in (s for s in order if s in names):
        k = names.index(stage)
        rows.append(
            dict(
                zip(
                    STAGE_EFFECT_COLUMNS,
                    (
                        stage,
                        float(credit.removal_effects["stage"][k]),
                        float(credit.value_removal_effects["stage"][k]),
                        float(conv[k]),
                        float(val[k]),
                        float(conv[k] / total) if total > 0 else None,
                    ),
                    strict=True,
                )
            )
        )
    return rows


# ---------------------------------------------------------------------- sequence effects
def sequence_removal_effects(
    paths: PathSet, by: str = "channel", markov_order: int = 2, top: int = 20
) -> list[dict[str, Any]]:
    """The top transitions "A then B" by steps, with the drop in conversion when each is
    cut from the order-``markov_order`` chain of channels (or stages)."""
    if paths.n_paths == 0:
        return []
    return sequence_effects(relabel(paths, by), order=markov_order, top=top).to_rows()
