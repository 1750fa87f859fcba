"""/v1/reports: journey analytics tables for one data selection.

Every report takes the selection attribution runs take (date range, segment filters,
channel groups, collapse_repeats, lookback) and answers a table with fixed columns,
as JSON or CSV through the one renderer. Views parse, load the selection's paths and
hand them to :mod:`api.report_tables`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
import numpy as np
from flask import Response
from flask.views import MethodView

from attribution import AttributionError, PathSet
from attribution import journeys as jr

from . import report_tables as rt
from . import store, tables
from .context import database, workspace
from .errors import InvalidInput
from .openapi import Blueprint
from .report_schemas import (
    ChannelRoleRow,
    DropoffQuery,
    DropoffRow,
    FunnelRow,
    LoopRow,
    LoopSummaryRow,
    PathsQuery,
    ReportQuery,
    StageEffectRow,
    StageEffectsQuery,
    TimingQuery,
    TimingRow,
    TopPathRow,
    TransitionRow,
    TransitionsQuery,
)
from .selection import Selection, load_selection, selection_from
from .store import runs

bp = Blueprint(
    "reports",
    __name__,
    url_prefix="/v1/reports",
    description="Journey reports: funnel, drop-off, loops, transitions, paths, timing.",
)


def query_arguments(blueprint: Blueprint, schema: type[ma.Schema]) -> Any:
    """Query parameters by ``schema``; unknown parameters are refused, not ignored."""
    return blueprint.arguments(schema, location="query", unknown=ma.RAISE)


@dataclass(frozen=True)
class Loaded:
    """A selection's paths and the workspace's funnel order."""

    paths: PathSet
    stages: list[str]

    @property
    def order(self) -> list[str]:
        return rt.stage_order(self.paths, self.stages)


def selection_of(conn: Any, workspace_id: int, query: Mapping[str, Any]) -> Selection:
    """The request's selection; what it leaves out comes from the workspace defaults
    (`GET /v1/settings`), as for attribution runs."""
    return selection_from(query, runs.get_settings(conn, workspace_id))


def load(query: Mapping[str, Any], *, need_times: bool = False) -> Loaded:
    ws = workspace().workspace_id
    with database().transaction() as conn:
        selection = selection_of(conn, ws, query)
        paths = load_selection(conn, ws, selection, need_times=need_times)
        stages = [s.name for s in store.list_stages(conn, ws)]
    return Loaded(paths, stages)


@contextmanager
def engine_errors() -> Iterator[None]:
    """The engine's refusals (no stages in the data, a bad option) as 422 problems.

    Client-aggregated paths may carry counts up to 10^15, fractions included, where
    the interval formulas can overflow or divide by zero. The results are then clipped
    or undefined (empty cells), which is the honest answer, so the floating-point
    warnings are not raised as errors.
    """
    try:
        with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
            yield
    except AttributionError as e:
        raise InvalidInput(str(e)) from e


def report(
    query: Mapping[str, Any],
    name: str,
    columns: Sequence[str],
    build: Callable[[Loaded], Sequence[Mapping[str, Any]]],
    *,
    need_times: bool = False,
) -> Response:
    """Load the request's selection, build the report's rows from it, render them."""
    loaded = load(query, need_times=need_times)
    with engine_errors():
        rows = build(loaded)
    return tables.render(rows, columns, query=query, name=name)


@bp.route("/transitions")
class Transitions(MethodView):
    @query_arguments(bp, TransitionsQuery)
    @tables.documented(bp, TransitionRow)
    @bp.problems(401, 422)
    def get(self, query: dict[str, Any]) -> Response:
        """Transition matrix between channels or stages.

        The order-1 Markov chain's transitions, one row per observed move: from
        `(start)` to each first touch, between consecutive touches, and from each last
        touch to `(conversion)` or `(null)` (no conversion). `count` weighs each move by
        the journeys that made it; `probability` divides it by all moves out of
        `source`, so each source's probabilities sum to 1. With `by=stage` the states are
        stages (needs stage data). Consecutive touches in the same state are self-moves
        unless `collapse_repeats` is set.
        """
        return report(
            query,
            "transitions",
            rt.TRANSITION_COLUMNS,
            lambda d: rt.transitions(d.paths, query["by"]),
        )


@bp.route("/paths")
class TopPaths(MethodView):
    @query_arguments(bp, PathsQuery)
    @tables.documented(bp, TopPathRow)
    @bp.problems(401, 422)
    def get(self, query: dict[str, Any]) -> Response:
        """Top paths.

        Unique channel paths (or stage paths with `by=stage`) with their journeys,
        conversions, nulls, conversion rate and value, ranked by `sort` (highest
        first; ties in path order) and cut to `limit`.
        """
        return report(
            query,
            "paths",
            rt.PATH_COLUMNS,
            lambda d: rt.top_paths(d.paths, query["by"], query["sort"], query["limit"]),
        )


@bp.route("/funnel")
class Funnel(MethodView):
    @query_arguments(bp, ReportQuery)
    @tables.documented(bp, FunnelRow)
    @bp.problems(401, 422)
    def get(self, query: dict[str, Any]) -> Response:
        """Stage funnel.

        One row per stage in the workspace's funnel order (`GET /v1/stages`): journeys
        that reached it, and of those how many moved on to a later stage, converted
        with their last touch there, dropped out there (last touch there, no
        conversion) or looped back to earlier stages. These four add up to `reached`.
        Step and cumulative rates compare with the previous stage and all journeys.
        """
        return report(query, "funnel", jr.FUNNEL_COLUMNS, lambda d: rt.funnel(d.paths, d.order))


@bp.route("/dropoff")
class Dropoff(MethodView):
    @query_arguments(bp, DropoffQuery)
    @tables.documented(bp, DropoffRow)
    @bp.problems(401, 422)
    def get(self, query: dict[str, Any]) -> Response:
        """Drop-off by stage and channel.

        Where journeys end without converting, by the stage and channel of their last
        touch, against the journeys passing through that stage and channel, with
        Wilson score intervals. Ranked by the interval's lower end, so a pair seen in
        one journey that dropped out (100%, but an interval from about 21%) does not
        outrank a well-measured 40%.
        """
        return report(
            query,
            "dropoff",
            jr.DROPOFF_COLUMNS,
            lambda d: rt.dropoff(d.paths, query["level"], query.get("limit")),
        )


@bp.route("/loops")
class Loops(MethodView):
    @query_arguments(bp, ReportQuery)
    @tables.documented(bp, LoopRow)
    @bp.problems(401, 422)
    def get(self, query: dict[str, Any]) -> Response:
        """Loops back to earlier stages.

        A step back is a touch in an earlier stage (in funnel order) than the touch
        before it. One row per (from stage, to stage) with `channel` null, summing over
        channels, then one per (from, to, channel of the step back): journeys with such
        a step, the steps, and the converting journeys among them.
        """
        return report(query, "loops", jr.LOOP_COLUMNS, lambda d: rt.loops(d.paths, d.order))


@bp.route("/loops/summary")
class LoopSummary(MethodView):
    @query_arguments(bp, ReportQuery)
    @tables.documented(bp, LoopSummaryRow)
    @bp.problems(401, 422)
    def get(self, query: dict[str, Any]) -> Response:
        """Looping against straight journeys.

        Two rows: journeys with at least one step back to an earlier stage
        (`looping`) and the rest (`straight`), with their conversions and conversion
        rates.
        """
        return report(
            query,
            "loop-summary",
            jr.LOOP_SUMMARY_COLUMNS,
            lambda d: rt.loop_summary(d.paths, d.order),
        )


@bp.route("/channel-roles")
class ChannelRoles(MethodView):
    @query_arguments(bp, ReportQuery)
    @tables.documented(bp, ChannelRoleRow)
    @bp.problems(401, 422)
    def get(self, query: dict[str, Any]) -> Response:
        """Channel roles: opener, assist, closer.

        Per channel, the converting journeys it opens (first touch), assists (any
        middle touch) and closes (last touch), the converting journeys it touches at
        all, and its assisted-to-last-touch ratio (assists / closes). A single-touch
        journey is opened and closed by its channel and has no assist.
        """
        return report(query, "channel-roles", jr.ROLE_COLUMNS, lambda d: rt.channel_roles(d.paths))


@bp.route("/timing")
class Timing(MethodView):
    @query_arguments(bp, TimingQuery)
    @tables.documented(bp, TimingRow)
    @bp.problems(401, 422)
    def get(self, query: dict[str, Any]) -> Response:
        """Time to conversion and between stages.

        Percentiles, in seconds, of the time from a journey's first touch to its
        conversion, and of the time from first entering each stage to first entering
        the next one in the funnel (journeys that entered both, in that order).
        Percentiles are real journeys' times (inverted empirical distribution). Reads
        raw journeys for their touch times; client-aggregated paths have none.
        """

        def build(d: Loaded) -> Sequence[Mapping[str, Any]]:
            order = d.order if d.paths.has_stages else None
            return rt.timing(d.paths, order, query["percentiles"])

        return report(query, "timing", jr.TIMING_COLUMNS, build, need_times=True)


@bp.route("/stage-removal-effects")
class StageRemovalEffects(MethodView):
    @query_arguments(bp, StageEffectsQuery)
    @tables.documented(bp, StageEffectRow)
    @bp.problems(401, 422)
    def get(self, query: dict[str, Any]) -> Response:
        """Markov removal effect of each stage.

        For each stage in funnel order: the relative drop in the probability of
        converting (and in expected conversion value) when every touch in that stage is
        removed from the Markov chain (states are channel-stage pairs), with the
        conversions and value the Markov model credits to the stage. The stage whose
        removal loses the most is the one conversions depend on most.
        """
        return report(
            query,
            "stage-removal-effects",
            rt.STAGE_EFFECT_COLUMNS,
            lambda d: rt.stage_removal_effects(d.paths, d.order, query["order"]),
        )
