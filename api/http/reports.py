"""/v1/reports: journey analytics tables for one data selection.

Every report takes the selection attribution runs take (date range, segment filters,
channel groups, collapse_repeats, lookback) and answers a table with fixed columns,
as JSON or CSV through the one renderer. Views parse and hand the query to
:mod:`api.service.reports`, which loads the selection and builds the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import Response
from flask.views import MethodView

from attribution import journeys as jr

from ..schemas.reports import (
    ChannelRoleRow,
    DropoffQuery,
    DropoffRow,
    FunnelRow,
    LoopRow,
    LoopSummaryRow,
    PathsQuery,
    ReportQuery,
    SequenceEffectRow,
    SequenceEffectsQuery,
    StageEffectRow,
    StageEffectsQuery,
    TimingQuery,
    TimingRow,
    TopPathRow,
    TransitionRow,
    TransitionsQuery,
)
from ..service import reports as rt
from ..service.reports import Loaded
from . import tables
from .context import database, workspace
from .openapi import Blueprint

bp = Blueprint(
    "reports",
    __name__,
    url_prefix="/v1/reports",
    description="Journey reports: funnel, drop-off, loops, transitions, paths, timing.",
)


def report(
    query: Mapping[str, Any],
    name: str,
    columns: Sequence[str],
    build: Callable[[Loaded], Sequence[Mapping[str, Any]]],
    *,
    need_times: bool = False,
) -> Response:
    """The report's rows for the request's selection, rendered."""
    ws = workspace().workspace_id
    rows, notes = rt.noted_table(database(), ws, query, build, need_times=need_times)
    return tables.with_warnings(tables.render(rows, columns, query=query, name=name), notes)


@bp.route("/transitions")
class Transitions(MethodView):
    @bp.query_arguments(TransitionsQuery)
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
    @bp.query_arguments(PathsQuery)
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
    @bp.query_arguments(ReportQuery)
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
    @bp.query_arguments(DropoffQuery)
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
    @bp.query_arguments(ReportQuery)
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
    @bp.query_arguments(ReportQuery)
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
    @bp.query_arguments(ReportQuery)
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
    @bp.query_arguments(TimingQuery)
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
    @bp.query_arguments(StageEffectsQuery)
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


@bp.route("/sequence-effects")
class SequenceEffects(MethodView):
    @bp.query_arguments(SequenceEffectsQuery)
    @tables.documented(bp, SequenceEffectRow)
    @bp.problems(401, 422)
    def get(self, query: dict[str, Any]) -> Response:
        """Removal effects of transitions ("A then B").

        The `top` transitions by steps (a touch of `target` right after a touch of
        `source`, weighted by journeys), each with the drop in the probability of
        converting when it is cut from the Markov chain of order `order`. Cutting "A then B" sends
        every chain move that makes that step to no conversion (null), as removing a
        channel does for moves into it: moves from a state whose last touch is A to
        the state the next touch, B, leads to, and moves from the start into a first
        state that holds A right before B. Every other probability is unchanged. At
        order 2 or more a state remembers the touches before it, so "A then B" and
        "B then A" differ. With `by=stage` the states are stages (needs stage data).
        """
        return report(
            query,
            "sequence-effects",
            rt.SEQUENCE_EFFECT_COLUMNS,
            lambda d: rt.sequence_removal_effects(
                d.paths, query["by"], query["order"], query["top"]
            ),
        )
