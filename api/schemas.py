"""Marshmallow schemas: the request and response shapes, and so the OpenAPI spec.

Input schemas raise on unknown fields (marshmallow's default) and are strict about
types: numbers must be JSON numbers, booleans JSON booleans, timestamps ISO 8601 with
a time zone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from attribution.paths import MIN_POSITIVE_COUNT

from .ingest import MAX_TEXT, MAX_TOUCHES, JourneyIn, TouchIn, raw_json

# Counts and values are summed in float64 across paths and resampled by the bootstrap;
# past 10^15 they stop being exact and overflow intermediate results, and no real
# workspace comes near that.
MAX_AMOUNT = 1e15
AMOUNT = validate.Range(min=0, max=MAX_AMOUNT)


def _whole_enough(count: float) -> None:
    # The engine refuses a positive count below MIN_POSITIVE_COUNT (value per
    # conversion overflows), so refuse it here, where the pointer names the field.
    if 0 < count < MIN_POSITIVE_COUNT:
        raise ma.ValidationError(f"Must be 0 or at least {MIN_POSITIVE_COUNT:g}.")


COUNT: list[Callable[[Any], Any]] = [AMOUNT, _whole_enough]

PLAIN = validate.Regexp(r"^[^\x00-\x1f\x7f]+$", error="Must not contain control characters.")
TEXT = [validate.Length(min=1, max=MAX_TEXT), PLAIN]


class Number(fields.Float):
    """A JSON number (not a numeric string, not a boolean), finite."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def _strict_bool(**kwargs: Any) -> fields.Boolean:
    return fields.Boolean(truthy={True}, falsy={False}, **kwargs)


class TouchpointIn(ma.Schema):
    channel = fields.String(required=True, validate=TEXT)
    timestamp = fields.AwareDateTime(required=True, format="iso")
    stage = fields.String(load_default=None, allow_none=True, validate=TEXT)
    campaign = fields.String(load_default=None, allow_none=True, validate=TEXT)
    device = fields.String(load_default=None, allow_none=True, validate=TEXT)

    @ma.post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> TouchIn:
        data["timestamp"] = data["timestamp"].isoformat()
        return TouchIn(**data)


class JourneyInSchema(ma.Schema):
    """A customer journey: ordered touchpoints and its outcome."""

    journey_id = fields.String(
        required=True,
        validate=TEXT,
        metadata={"description": "The client's id; re-sending replaces"},
    )
    customer_id = fields.String(load_default=None, allow_none=True, validate=TEXT)
    touchpoints = fields.List(
        fields.Nested(TouchpointIn),
        required=True,
        validate=validate.Length(min=1, max=MAX_TOUCHES),
    )
    converted = _strict_bool(load_default=False)
    value = Number(load_default=0.0, validate=AMOUNT)
    converted_at = fields.AwareDateTime(load_default=None, allow_none=True, format="iso")
    attributes = fields.Dict(
        keys=fields.String(),
        load_default=None,
        allow_none=True,
        metadata={"description": "Free-form segment attributes (a JSON object)"},
    )

    @ma.post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> JourneyIn:
        data["attributes"] = raw_json(data["attributes"])
        return JourneyIn(**data)


class JourneyBatchIn(ma.Schema):
    journeys = fields.List(fields.Nested(JourneyInSchema), required=True)


class TouchpointOut(ma.Schema):
    channel = fields.String()
    stage = fields.String(allow_none=True)
    timestamp = fields.AwareDateTime(format="iso")
    campaign = fields.String(allow_none=True)
    device = fields.String(allow_none=True)


class JourneyOut(ma.Schema):
    journey_id = fields.String()
    customer_id = fields.String(allow_none=True)
    touchpoints = fields.List(fields.Nested(TouchpointOut))
    converted = fields.Boolean()
    value = fields.Float()
    converted_at = fields.AwareDateTime(format="iso", allow_none=True)
    attributes = fields.Dict()


class WriteResult(ma.Schema):
    """What a write did: every record received is created, replaced or unchanged."""

    received = fields.Integer()
    created = fields.Integer()
    replaced = fields.Integer()
    unchanged = fields.Integer()


class CustomerDeleted(ma.Schema):
    customer_id = fields.String()
    deleted = fields.Integer(metadata={"description": "Journeys erased"})


class PathIn(ma.Schema):
    """A path a client aggregated itself, with its totals."""

    path = fields.List(
        fields.String(validate=TEXT),
        required=True,
        validate=validate.Length(min=1, max=MAX_TOUCHES),
    )
    stages = fields.List(
        fields.String(validate=TEXT, allow_none=True), load_default=None, allow_none=True
    )
    conversions = Number(required=True, validate=COUNT)
    nulls = Number(load_default=0.0, validate=COUNT)
    value = Number(load_default=0.0, validate=AMOUNT)
    date = fields.Date(load_default=None, allow_none=True)

    @ma.validates_schema
    def _totals(self, data: dict[str, Any], **kwargs: Any) -> None:
        stages = data.get("stages")
        if stages is not None and len(stages) != len(data["path"]):
            raise ma.ValidationError("Must have one entry per channel of path.", "stages")
        if data["conversions"] + data["nulls"] <= 0:
            raise ma.ValidationError("A path needs conversions or nulls.", "conversions")
        if data["value"] > 0 and data["conversions"] == 0:
            raise ma.ValidationError("A path without conversions has no value.", "value")


class PathBatchIn(ma.Schema):
    paths = fields.List(fields.Nested(PathIn), required=True)


class ChannelRow(ma.Schema):
    code = fields.Integer()
    name = fields.String()
    created_at = fields.AwareDateTime(format="iso")


class StageRow(ma.Schema):
    position = fields.Integer(metadata={"description": "1 = first stage of the funnel"})
    code = fields.Integer()
    name = fields.String()


class StageIn(ma.Schema):
    name = fields.String(required=True, validate=TEXT)
    code = fields.Integer(
        strict=True, load_default=None, metadata={"description": "Rename the stage with this code"}
    )


class StagesIn(ma.Schema):
    stages = fields.List(
        fields.Nested(StageIn), required=True, validate=validate.Length(min=1, max=100)
    )

    @ma.validates_schema
    def _unique(self, data: dict[str, Any], **kwargs: Any) -> None:
        names = [s["name"] for s in data["stages"]]
        codes = [s["code"] for s in data["stages"] if s["code"] is not None]
        if len(set(names)) != len(names):
            raise ma.ValidationError("Stage names must be unique.", "stages")
        if len(set(codes)) != len(codes):
            raise ma.ValidationError("Stage codes must be unique.", "stages")


class Health(ma.Schema):
    status = fields.String()


class Readiness(ma.Schema):
    status = fields.String()
    database = fields.String()
    pending_migrations = fields.List(fields.String())


class FieldErrorSchema(ma.Schema):
    pointer = fields.String(metadata={"description": "JSON pointer to the bad value"})
    detail = fields.String()


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.List(fields.Nested(FieldErrorSchema))
