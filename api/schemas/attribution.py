"""Marshmallow schemas of attribution runs, their tables and workspace defaults.

Model options are typed here for the spec and checked for range by the engine (its
constraints table), so an out-of-range option gets the engine's message with a
pointer at the option, e.g. ``/markov/order``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate
from webargs.fields import DelimitedList

from attribution import MODEL_NAMES, ROW_COLUMNS, model_class
from attribution.bootstrap import CONSTRAINTS, METHODS
from attribution.campaigns import DEFAULT_TOP_N, MAX_TOP_N, NOT_SET, OTHER
from attribution.markov import ORDERS
from attribution.params import Param
from attribution.result import DIMENSIONS

from .common import StrictBoolean, StrictInteger
from .selection import JSONObject, SelectionIn, SelectionQuery
from .spend import CURRENCY
from .tables import TableQuery


def param_schema(param: Param) -> dict[str, Any]:
    """The JSON schema of what an engine parameter accepts (its constraints table), so
    the spec shows the ranges the engine enforces."""
    if param.kind == "choice":
        return {"enum": list(param.choices)}
    if param.kind == "bool":
        return {"type": "boolean"}
    if param.kind == "seed":
        return {"minimum": 0}  # an integer field with allow_none: apispec adds the types
    out: dict[str, Any] = {"type": "integer" if param.kind == "int" else "number"}
    for bound, value, is_open in (
        ("minimum", param.low, param.open_low),
        ("maximum", param.high, param.open_high),
    ):
        if value is not None and abs(value) != float("inf"):
            key = f"exclusive{bound.title()}" if is_open else bound
            out[key] = int(value) if param.kind == "int" else value
    if param.choices:
        out = {"oneOf": [out, {"enum": list(param.choices)}]}
    if param.nullable:
        out = {"oneOf": [out, {"type": "null"}]}
    return out


def engine(model: str, name: str, description: str) -> dict[str, Any]:
    """Field metadata: the description and the engine's rule for option ``name``."""
    param = model_class(model)._constraints[name]
    return {"description": description, **param_schema(param)}


class OrderField(fields.Field[Any]):
    """An integer order, or ``"auto"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, float) and value.is_integer():  # JSON Schema's integer 2.0
            return int(value)
        raise ma.ValidationError('Must be an integer or "auto".')


def _seed(model: str) -> StrictInteger:
    return StrictInteger(
        allow_none=True,
        metadata=engine(model, "random_state", "Seed; null draws a fresh one."),
    )


class NoOptions(ma.Schema):
    """This model has no options."""


class LinearOptions(ma.Schema):
    per = fields.String(
        validate=validate.OneOf(["touch", "channel"]),
        metadata={"description": "Split equally per touch, or per distinct channel."},
    )


class PositionBasedOptions(ma.Schema):
    first_share = fields.Float(
        metadata=engine("position_based", "first_share", "Share of the first touch.")
    )
    last_share = fields.Float(
        metadata=engine("position_based", "last_share", "Share of the last touch.")
    )


class TimeDecayOptions(ma.Schema):
    half_life_days = fields.Float(
        metadata=engine("time_decay", "half_life_days", "A touch's weight halves per this.")
    )


class MarkovOptions(ma.Schema):
    order = OrderField(
        metadata=engine(
            "markov", "order", 'Touches per state, 1 to 4, or "auto" (cross-validated).'
        )
    )
    auto_orders = fields.List(
        StrictInteger(validate=validate.Range(min=min(ORDERS), max=max(ORDERS))),
        validate=validate.Length(min=1),
        metadata={"description": 'Orders "auto" tries, distinct.', "uniqueItems": True},
    )
    n_folds = StrictInteger(
        metadata=engine("markov", "n_folds", 'Cross-validation folds for "auto".')
    )
    random_state = _seed("markov")


class ShapleyOptions(ma.Schema):
    max_exact_players = StrictInteger(
        metadata=engine(
            "shapley", "max_exact_players", "Exact values up to this many channels, sampled above."
        )
    )
    n_samples = StrictInteger(
        metadata=engine("shapley", "n_samples", "Permutations sampled when not exact.")
    )
    random_state = _seed("shapley")


class ShapleyRateOptions(ma.Schema):
    max_players = StrictInteger(
        metadata=engine("shapley_rate", "max_players", "Most channels the game allows.")
    )


class ShapleyOrderedOptions(ma.Schema):
    max_position = StrictInteger(
        metadata=engine("shapley_ordered", "max_position", "Positions told apart.")
    )


class DataDrivenOptions(ma.Schema):
    alpha = fields.Float(
        metadata=engine("data_driven", "alpha", "L2 penalty of the conversion model's weights.")
    )
    repeats = StrictBoolean(
        metadata=engine("data_driven", "repeats", "Use touches per channel, not only presence.")
    )
    position = StrictBoolean(
        metadata=engine("data_driven", "position", "Use the first and last touch's channels.")
    )
    pairwise = StrictBoolean(
        metadata=engine("data_driven", "pairwise", "Add a weight per pair of channels.")
    )
    max_exact_players = StrictInteger(
        metadata=engine(
            "data_driven", "max_exact_players", "Exact per-path values up to this many players."
        )
    )
    n_samples = StrictInteger(
        metadata=engine("data_driven", "n_samples", "Permutations per path when not exact.")
    )
    n_folds = StrictInteger(
        metadata=engine("data_driven", "n_folds", "Folds of the held-out scores.")
    )
    random_state = _seed("data_driven")


OPTION_SCHEMAS: dict[str, type[ma.Schema]] = {
    "first_touch": NoOptions,
    "last_touch": NoOptions,
    "linear": LinearOptions,
    "position_based": PositionBasedOptions,
    "time_decay": TimeDecayOptions,
    "markov": MarkovOptions,
    "shapley": ShapleyOptions,
    "shapley_simple": NoOptions,
    "shapley_rate": ShapleyRateOptions,
    "shapley_ordered": ShapleyOrderedOptions,
    "data_driven": DataDrivenOptions,
}
"""Options schema of every registered model (a test checks it covers the registry)."""


def _accepts(name: str, param: Param) -> Callable[[Any], None]:
    """A field validator with the engine's own rule and words for option ``name``, so a
    value the spec refuses is refused whichever model it belongs to (the engine checks
    only the models a run names)."""

    def check(value: Any) -> None:
        if not param.accepts(value):
            raise ma.ValidationError(
                f"{name}={value!r} is not allowed: {name} must be {param.describe()}"
            )

    return check


def _check_with_the_engine(schema: type[ma.Schema], constraints: Mapping[str, Param]) -> None:
    for name, field in schema._declared_fields.items():
        key = {"replicates": "n_replicates", "seed": "random_state"}.get(name, name)
        if key in constraints:
            field.validators.append(_accepts(name, constraints[key]))


for _model, _schema in OPTION_SCHEMAS.items():
    _check_with_the_engine(_schema, model_class(_model)._constraints)


def _options(name: str) -> fields.Nested:
    return fields.Nested(OPTION_SCHEMAS[name], metadata={"description": f"Options of {name}."})


def _alias(name: str) -> fields.Nested:
    """The older place of a model's options in a run body, beside ``options``."""
    return fields.Nested(
        OPTION_SCHEMAS[name],
        metadata={
            "description": f"Older spelling of `options.{name}`; give one or the other.",
            "deprecated": True,
        },
    )


ModelOptionsIn = ma.Schema.from_dict(
    {name: _options(name) for name in OPTION_SCHEMAS}, name="ModelOptionsIn"
)
"""Options per model name, e.g. ``{"markov": {"order": 2}}``."""


class ConfidenceIn(ma.Schema):
    """Bootstrap confidence intervals on every row's conversions."""

    level = fields.Float(
        metadata={
            "description": "Confidence level, default 0.95.",
            **param_schema(CONSTRAINTS["level"]),
        }
    )
    replicates = StrictInteger(
        metadata={
            "description": "Bootstrap replicates, default 200.",
            **param_schema(CONSTRAINTS["n_replicates"]),
        }
    )
    method = fields.String(
        validate=validate.OneOf(METHODS),
        metadata={"description": "How path counts are resampled, default poisson."},
    )
    seed = StrictInteger(
        allow_none=True,
        metadata={"description": "Seed, default 0.", **param_schema(CONSTRAINTS["random_state"])},
    )


_check_with_the_engine(ConfidenceIn, CONSTRAINTS)


class CampaignsIn(ma.Schema):
    """Campaign credit: a `campaign` row per channel x campaign, for every model."""

    top_n = StrictInteger(
        validate=validate.Range(min=1, max=MAX_TOP_N),
        metadata={
            "description": f"Campaigns kept per channel, ranked by touches in the "
            f"selection; the rest of a channel's are `{OTHER}`. Default {DEFAULT_TOP_N}."
        },
    )


_CAMPAIGNS_HELP = (
    "Credit each channel x campaign pair (Markov states and Shapley players become the "
    f"pairs; touches without a campaign are `{NOT_SET}`); the channel rows are the sums "
    "of the campaign rows, and the table has no stage rows."
)


_MODELS = fields.List(
    fields.String(validate=validate.OneOf(MODEL_NAMES)),
    validate=validate.Length(min=1, max=len(MODEL_NAMES)),
    metadata={"description": "Models to run, in the order of the table."},
)


class AttributionIn(SelectionIn):
    """A run: models, their options under `options` (the shape the run echoes, the
    settings and the table URL take), the data selection and confidence intervals.
    Absent fields take the workspace defaults."""

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "models": ["last_touch", "linear", "markov"],
        "options": {"markov": {"order": 2}},
        "date_from": "2024-03-01",
        "date_to": "2024-03-31",
    }

    models = _MODELS
    options = fields.Nested(
        ModelOptionsIn,
        metadata={"description": 'Options per model, e.g. `{"markov": {"order": 2}}`.'},
    )
    confidence = fields.Nested(
        ConfidenceIn,
        allow_none=True,
        metadata={"description": "Compute bootstrap intervals; null turns a default off."},
    )
    campaigns = fields.Nested(
        CampaignsIn, allow_none=True, metadata={"description": f"{_CAMPAIGNS_HELP} Off when null."}
    )
    first_touch = _alias("first_touch")
    last_touch = _alias("last_touch")
    linear = _alias("linear")
    position_based = _alias("position_based")
    time_decay = _alias("time_decay")
    markov = _alias("markov")
    shapley = _alias("shapley")
    shapley_simple = _alias("shapley_simple")
    shapley_rate = _alias("shapley_rate")
    shapley_ordered = _alias("shapley_ordered")
    data_driven = _alias("data_driven")


class AttributionQuery(SelectionQuery, TableQuery):
    """A run as query parameters (objects JSON-encoded), for a refreshable table URL."""

    models = DelimitedList(
        fields.String(validate=validate.OneOf(MODEL_NAMES)),
        validate=validate.Length(min=1, max=len(MODEL_NAMES)),
        metadata={"description": "Comma-separated models, e.g. `last_touch,markov`."},
    )
    options = JSONObject(
        schema=ModelOptionsIn,
        metadata={"description": 'Options per model as JSON: `{"markov":{"order":2}}`.'},
    )
    confidence = JSONObject(
        schema=ConfidenceIn,
        metadata={"description": 'Bootstrap intervals as JSON: `{"replicates":200}`.'},
    )
    campaigns = JSONObject(
        schema=CampaignsIn,
        metadata={"description": f'{_CAMPAIGNS_HELP} As JSON: `{{"top_n":20}}`.'},
    )


class SeriesQuery(SelectionQuery, TableQuery):
    """A daily series as query parameters: a date range, models and their options."""

    date_from = fields.Date(
        required=True,
        metadata={"description": "First day of the series (ISO date, workspace time zone)."},
    )
    date_to = fields.Date(
        required=True,
        metadata={"description": "Last day of the series (at most 1096 days in all)."},
    )
    models = AttributionQuery._declared_fields["models"]
    options = AttributionQuery._declared_fields["options"]
    campaigns = AttributionQuery._declared_fields["campaigns"]


class SeriesRow(ma.Schema):
    """One day's credit of one channel (or channel x campaign) under one model."""

    day = fields.Date(required=True, metadata={"description": "In the workspace time zone."})
    model = fields.String(required=True, metadata={"enum": list(MODEL_NAMES)})
    dimension = fields.String(
        required=True,
        metadata={
            "enum": ["channel", "campaign"],
            "description": "`campaign` rows only with `campaigns`; a day's `channel` row "
            "is the sum of its `campaign` rows.",
        },
    )
    channel = fields.String(required=True)
    campaign = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": f"On `campaign` rows: the campaign, `{OTHER}` or `{NOT_SET}`; else null."
        },
    )
    conversions = fields.Float(
        required=True, metadata={"description": "Credited conversions landing on this day."}
    )
    value = fields.Float(
        required=True, metadata={"description": "Credited value landing on this day."}
    )
    spend = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Spend on the channel (campaign) that day; null without spend."},
    )
    cost_per_conversion = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Spend / credited conversions; null without either."},
    )
    roas = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Credited value / spend; null without spend."},
    )


class RunColumns(ma.Schema):
    """The run's id and date range, on every row so a BI join needs no headers."""

    run_id = fields.UUID(required=True, metadata={"description": "The run."})
    date_from = fields.Date(
        required=True, allow_none=True, metadata={"description": "The run's first date."}
    )
    date_to = fields.Date(
        required=True, allow_none=True, metadata={"description": "The run's last date."}
    )


class CreditRow(RunColumns):
    """One row of the tidy table: a model's credit for one key of one dimension, with
    the spend on it over the run's dates (read when the table is)."""

    model = fields.String(required=True, metadata={"enum": list(MODEL_NAMES)})
    dimension = fields.String(
        required=True,
        metadata={
            "description": "`channel`, `stage`, `channel_stage` or `campaign`.",
            "enum": list(DIMENSIONS),
        },
    )
    channel = fields.String(allow_none=True, metadata={"description": "Null in stage rows."})
    campaign = fields.String(
        allow_none=True, metadata={"description": "Set in campaign rows only."}
    )
    stage = fields.String(allow_none=True, metadata={"description": "Null in channel rows."})
    conversions = fields.Float(required=True)
    value = fields.Float(required=True)
    share = fields.Float(required=True, metadata={"description": "Of the dimension's total."})
    removal_effect = fields.Float(allow_none=True, metadata={"description": "Markov only."})
    ci_low = fields.Float(allow_none=True, metadata={"description": "Lower bound, conversions."})
    ci_high = fields.Float(allow_none=True, metadata={"description": "Upper bound, conversions."})
    spend = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Over the run's dates; null in stage rows and without spend."},
    )
    cost_per_conversion = fields.Float(
        required=True, allow_none=True, metadata={"description": "spend / conversions."}
    )
    roas = fields.Float(required=True, allow_none=True, metadata={"description": "value / spend."})
    currency = fields.String(
        required=True, metadata={"description": "The reporting currency of spend and value."}
    )


class ComparisonRow(RunColumns):
    """A model's credit for a channel beside last touch's, and the difference."""

    model = fields.String(required=True, metadata={"enum": list(MODEL_NAMES)})
    dimension = fields.String(required=True, metadata={"enum": list(DIMENSIONS)})
    channel = fields.String(required=True)
    if "campaign" in ROW_COLUMNS:  # the engine's campaign column, where it has one
        campaign = fields.String(required=True, allow_none=True)
    conversions = fields.Float(required=True, metadata={"description": "This model's."})
    value = fields.Float(required=True, metadata={"description": "This model's."})
    last_touch_conversions = fields.Float(required=True)
    last_touch_value = fields.Float(required=True)
    conversions_diff = fields.Float(
        required=True, metadata={"description": "conversions - last_touch_conversions."}
    )
    value_diff = fields.Float(required=True, metadata={"description": "value - last_touch_value."})


class Totals(ma.Schema):
    journeys = fields.Float(metadata={"description": "Converting plus non-converting."})
    conversions = fields.Float()
    value = fields.Float()
    conversion_rate = fields.Float(allow_none=True)


class Progress(ma.Schema):
    done = fields.Integer(metadata={"description": "Models finished."})
    total = fields.Integer(metadata={"description": "Models in the run."})


class RunSummary(ma.Schema):
    """A run without its table."""

    run_id = fields.String()
    status = fields.String(
        metadata={
            "description": "queued, running, succeeded or failed.",
            "enum": ["queued", "running", "succeeded", "failed"],
        }
    )
    progress = fields.Nested(Progress)
    parameters = fields.Dict(metadata={"description": "What ran, defaults applied."})
    data_version = fields.Integer(allow_none=True)
    totals = fields.Nested(Totals, allow_none=True)
    warnings = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    error = fields.Dict(allow_none=True, metadata={"description": "The problem, when failed."})
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class RunOut(RunSummary):
    """A run; ``table`` is set once it has succeeded."""

    table = fields.List(fields.Nested(CreditRow), allow_none=True)


class RunListQuery(ma.Schema):
    limit = fields.Integer(
        load_default=20, validate=validate.Range(min=1, max=100), metadata={"description": "1-100."}
    )
    cursor = fields.String(metadata={"description": "`next_cursor` of the previous page."})


class RunList(ma.Schema):
    runs = fields.List(fields.Nested(RunSummary))
    next_cursor = fields.String(allow_none=True, metadata={"description": "Null on the last page."})


class JourneyCreditQuery(ma.Schema):
    format = fields.String(
        validate=validate.OneOf(["csv", "ndjson"]),
        metadata={"description": "`csv` or `ndjson`; without it, `Accept` decides (CSV default)."},
    )
    model = fields.String(
        validate=validate.OneOf(MODEL_NAMES),
        metadata={"description": "Which of the run's models; its first by default."},
    )


class JourneyCreditRow(ma.Schema):
    journey_id = fields.String()
    channel = fields.String()
    stage = fields.String(allow_none=True)
    conversions = fields.Float()
    value = fields.Float()


class SettingsIn(ma.Schema):
    """Workspace defaults for attribution runs; a PUT replaces them all."""

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "models": ["last_touch", "linear", "markov"],
        "options": {"markov": {"order": 2}},
    }

    models = _MODELS
    options = fields.Nested(ModelOptionsIn, metadata={"description": "Options per model."})
    lookback_days = SelectionIn._declared_fields["lookback_days"]
    channel_groups = SelectionIn._declared_fields["channel_groups"]
    collapse_repeats = StrictBoolean()
    confidence = fields.Nested(ConfidenceIn, allow_none=True)
    time_zone = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={
            "description": "IANA time zone every day is counted in (conversion dates, "
            "rollup days, date ranges, series); `UTC` when left out. Changing it "
            "re-buckets the stored journeys (see the README on its cost)."
        },
    )
    currency = fields.String(
        validate=CURRENCY,
        metadata={"description": "Reporting currency of spend (ISO 4217), USD by default."},
    )


class TimeZoneChangeOut(ma.Schema):
    """A time zone change of a large workspace, running as a job."""

    change_id = fields.UUID(required=True)
    time_zone = fields.String(required=True, metadata={"description": "The zone asked for."})
    status = fields.String(
        required=True,
        validate=validate.OneOf(["queued", "running", "succeeded", "failed"]),
    )
    journeys_done = fields.Integer(required=True, metadata={"description": "Re-bucketed so far."})
    journeys_total = fields.Integer(required=True)
    error = fields.String(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(allow_none=True, required=True)


class SettingsOut(SettingsIn):
    updated_at = fields.DateTime(allow_none=True)
    time_zone = fields.String(
        required=True,
        metadata={"description": "The IANA time zone in effect (a change under way is not yet)."},
    )
    time_zone_change = fields.Nested(
        TimeZoneChangeOut,
        allow_none=True,
        required=True,
        metadata={
            "description": "The change of time zone under way (a job), or null; poll "
            "`GET /v1/settings/time-zone-changes/{change_id}`."
        },
    )
