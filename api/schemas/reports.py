"""Marshmallow schemas of the journey reports and the HTML report: queries and rows.

Query schemas add each report's own parameters to the shared selection
(:class:`~api.schemas.selection.SelectionQuery`) and the table format; row schemas document the
fixed columns, in order, for the spec (the rows themselves come from
:mod:`api.service.reports` through the one table renderer).
"""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, fields, validate

from attribution import MODEL_NAMES
from attribution.sequences import MAX_TOP

from ..service import reports as rt
from ..service.signing import MAX_TOKEN
from .common import StrictInteger
from .selection import SelectionIn, SelectionQuery
from .tables import TableQuery

MAX_PATHS = 1000
MAX_SEQUENCES = MAX_TOP
REPORT_MODELS = tuple(m for m in MODEL_NAMES if m != "time_decay")
"""Models the HTML report can compare: those that run on aggregated paths."""
MAX_LINK_SECONDS = 90 * 86_400


def _count(description: str) -> fields.Float:
    return fields.Float(required=True, metadata={"description": description})


def _rate(description: str) -> fields.Float:
    return fields.Float(required=True, allow_none=True, metadata={"description": description})


def _name(description: str, nullable: bool = False) -> fields.String:
    return fields.String(required=True, allow_none=nullable, metadata={"description": description})


# ---------------------------------------------------------------------- queries
class ReportQuery(SelectionQuery, TableQuery):
    """The data selection and the table format."""


class TransitionsQuery(ReportQuery):
    by = fields.String(
        load_default="channel",
        validate=validate.OneOf(["channel", "stage"]),
        metadata={"description": "Label states by `channel` or by `stage`."},
    )


class PathsQuery(TransitionsQuery):
    sort = fields.String(
        load_default="journeys",
        validate=validate.OneOf(rt.PATH_SORTS),
        metadata={"description": "Rank by this column, highest first."},
    )
    limit = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=MAX_PATHS),
        metadata={"description": "Paths returned."},
    )


class DropoffQuery(ReportQuery):
    level = fields.Float(
        load_default=0.95,
        validate=validate.Range(min=0.5, max=0.999),
        metadata={"description": "Confidence level of the Wilson intervals."},
    )
    limit = fields.Integer(
        validate=validate.Range(min=1, max=10_000),
        metadata={"description": "Rows returned, worst first (all without it)."},
    )


class TimingQuery(ReportQuery):
    percentiles = fields.List(
        fields.Float(validate=validate.Range(min=0, max=100)),
        load_default=lambda: [25.0, 50.0, 75.0, 90.0],
        validate=validate.Length(min=1, max=20),
        metadata={"description": "Percentiles to report (repeat the parameter)."},
    )


class StageEffectsQuery(ReportQuery):
    order = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=4),
        metadata={"description": "Order of the Markov chain."},
    )


class SequenceEffectsQuery(TransitionsQuery):
    order = fields.Integer(
        load_default=2,
        validate=validate.Range(min=1, max=4),
        metadata={"description": "Order of the Markov chain (2 or more remembers sequences)."},
    )
    top = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=MAX_SEQUENCES),
        metadata={"description": "Transitions evaluated, most steps first."},
    )


_MODELS = fields.List(
    fields.String(validate=validate.OneOf(REPORT_MODELS)),
    validate=validate.Length(min=1, max=6),
    metadata={"description": "Models compared side by side (repeat the parameter)."},
)


class ReportPageQuery(SelectionQuery):
    """The HTML report: a selection and models, or a signed link's token alone."""

    models = _MODELS
    token = fields.String(
        validate=validate.Length(min=1, max=MAX_TOKEN),
        metadata={
            "description": "A signed report link's token (from `POST /v1/report-links`); "
            "given alone, as the link carries its own selection and models."
        },
    )


class ReportLinkIn(SelectionIn):
    """What a signed report link shows, and for how long it works."""

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "models": ["last_touch", "markov"],
        "date_from": "2024-03-01",
        "date_to": "2024-03-31",
        "expires_in": 86400,
    }

    models = _MODELS
    expires_in = StrictInteger(
        load_default=7 * 86_400,
        validate=validate.Range(min=60, max=MAX_LINK_SECONDS),
        metadata={"description": "Seconds until the link stops working (at most 90 days)."},
    )


class ReportLinkOut(Schema):
    url = fields.String(required=True, metadata={"description": "The report's address."})
    token = fields.String(required=True, metadata={"description": "The signed token in it."})
    expires_at = fields.AwareDateTime(required=True, metadata={"description": "When it expires."})


# ---------------------------------------------------------------------- rows
class TransitionRow(Schema):
    source = _name("Channel or stage moved from, or `(start)`.")
    target = _name("Channel or stage moved to, or `(conversion)` / `(null)`.")
    count = _count("Moves, each weighted by its journeys.")
    probability = _count("count / all moves out of `source`.")


class TopPathRow(Schema):
    rank = fields.Integer(required=True, metadata={"description": "1 = first by `sort`."})
    path = _name("Channels (or stages) in touch order, joined by ` > `.")
    length = fields.Integer(required=True, metadata={"description": "Touches in the path."})
    journeys = _count("Journeys that took this path.")
    conversions = _count("Of them, journeys that converted.")
    nulls = _count("Of them, journeys that did not convert.")
    conversion_rate = _count("conversions / journeys.")
    value = _count("Conversion value of the path's journeys.")


class FunnelRow(Schema):
    stage = _name("Stage, in funnel order.")
    step = fields.Integer(required=True, metadata={"description": "1-based place in the funnel."})
    reached = _count("Journeys with a touch in the stage.")
    moved_on = _count("Reached, did not end here, and went on to a later stage.")
    converted = _count("Last touch here, and converted.")
    dropped_out = _count("Last touch here, and did not convert.")
    looped_back = _count("Did not end here and went back to earlier stages only.")
    converting = _count("Reached the stage and converted anywhere.")
    step_rate = _rate("Journeys that reached the previous stage and this one / the previous.")
    cumulative_rate = _rate("reached / all journeys.")
    conversion_rate = _rate("converting / reached.")


class DropoffRow(Schema):
    rank = fields.Integer(required=True, metadata={"description": "1 = worst (by ci_low)."})
    stage = _name("Stage of the last touch (null without stages).", nullable=True)
    channel = _name("Channel of the last touch.")
    passing = _count("Journeys with a touch in this stage and channel.")
    dropped_out = _count("Journeys whose last touch was here and that did not convert.")
    rate = _count("dropped_out / passing.")
    ci_low = _count("Lower end of the Wilson interval of rate.")
    ci_high = _count("Upper end of the Wilson interval of rate.")


class LoopRow(Schema):
    from_stage = _name("Stage of the touch before the step back.")
    to_stage = _name("Earlier stage stepped back to.")
    channel = _name("Channel of the step back; null sums over channels.", nullable=True)
    journeys = _count("Journeys with at least one such step.")
    steps = _count("Such steps (a journey can step back more than once).")
    conversions = _count("Converting journeys among `journeys`.")


class LoopSummaryRow(Schema):
    kind = _name("`looping` (at least one step back) or `straight`.")
    journeys = _count("Journeys of that kind.")
    conversions = _count("Of them, converting journeys.")
    conversion_rate = _rate("conversions / journeys.")


class ChannelRoleRow(Schema):
    channel = _name("Channel.")
    opens = _count("Converting journeys whose first touch is the channel.")
    assists = _count("Converting journeys with the channel on a middle touch.")
    closes = _count("Converting journeys whose last touch is the channel.")
    touched = _count("Converting journeys with the channel on any touch.")
    assist_ratio = _rate("assists / closes.")


class TimingRow(Schema):
    measure = _name("`time_to_conversion` or `stage_to_stage`.")
    from_stage = _name("Stage entered first (stage_to_stage).", nullable=True)
    to_stage = _name("Next stage in the funnel (stage_to_stage).", nullable=True)
    journeys = _count("Journeys measured.")
    percentile = _count("Percentile, 0 to 100.")
    seconds = _rate("The percentile, in seconds; null when no journey qualifies.")


class StageEffectRow(Schema):
    stage = _name("Stage, in funnel order.")
    removal_effect = _count("Relative drop in P(conversion) with the stage's touches removed.")
    value_removal_effect = _count("The same for expected conversion value.")
    conversions = _count("Conversions credited to the stage by the Markov model.")
    value = _count("Value credited to the stage by the Markov model.")
    share = _rate("The stage's share of credited conversions.")


class SequenceEffectRow(Schema):
    rank = fields.Integer(required=True, metadata={"description": "1 = most steps."})
    sequence = _name("`source > target`.")
    source = _name("Channel (or stage) of the first touch of the step.")
    target = _name("Channel (or stage) of the touch right after it.")
    steps = _count("Steps from `source` to `target`, weighted by journeys, repeats counted.")
    p_conversion = _count("P(conversion) of the chain: conversions / journeys.")
    p_conversion_cut = _count("P(conversion) with every such step sent to no conversion.")
    removal_effect = _count("1 - p_conversion_cut / p_conversion.")
    value_removal_effect = _count("The same for expected conversion value.")
