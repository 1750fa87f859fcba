"""Schemas of journeys, customers and client-aggregated paths.

The journey record itself is declared once, in :mod:`api.service.ingest` (``JourneyIn``):
these schemas describe the same record for the JSON routes and the spec, load into it,
and a test holds the two to the same fields and limits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from ..service.ingest import MAX_DEPTH, MAX_OFFSET, MAX_TOUCHES, JourneyIn, TouchIn, raw_json
from .common import AMOUNT, COUNT, COUNT_SCHEMA, TEXT, Number, shallow, strict_bool


def _offset_in_range(value: datetime) -> None:
    """Touch times are stored as they came, and PostgreSQL reads offsets up to 15:59."""
    if abs(value.utcoffset() or timedelta(0)) > MAX_OFFSET:
        raise ma.ValidationError("Offset out of range: at most 15:59 from UTC.")


class TouchpointIn(ma.Schema):
    channel = fields.String(required=True, validate=TEXT)
    timestamp = fields.AwareDateTime(
        required=True,
        format="iso",
        validate=_offset_in_range,
        metadata={"description": "With a time zone; its offset at most 15:59 from UTC."},
    )
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
    converted = strict_bool(load_default=False)
    value = Number(load_default=0.0, validate=AMOUNT)
    converted_at = fields.AwareDateTime(load_default=None, allow_none=True, format="iso")
    attributes = fields.Dict(
        keys=fields.String(),
        load_default=None,
        allow_none=True,
        validate=shallow,
        metadata={
            "description": "Free-form segment attributes (a JSON object, arrays and "
            f"objects nested at most {MAX_DEPTH} levels deep)"
        },
    )

    @ma.post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> JourneyIn:
        data["attributes"] = raw_json(data["attributes"])
        return JourneyIn(**data)


class JourneyBatchIn(ma.Schema):
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "journeys": [
            {
                "journey_id": "j-1001",
                "customer_id": "c-17",
                "touchpoints": [
                    {
                        "channel": "paid_search",
                        "stage": "awareness",
                        "timestamp": "2024-03-01T10:00:00Z",
                    },
                    {
                        "channel": "email",
                        "stage": "consideration",
                        "timestamp": "2024-03-03T08:15:00Z",
                    },
                    {
                        "channel": "direct",
                        "stage": "decision",
                        "timestamp": "2024-03-04T19:40:00+01:00",
                    },
                ],
                "converted": True,
                "value": 89.9,
                "attributes": {"region": "emea"},
            }
        ]
    }
    journeys = fields.List(
        fields.Nested(JourneyInSchema),
        required=True,
        metadata={
            "minItems": 1,
            "description": "1 to `PATHCREDIT_MAX_BATCH` journeys (10,000 by default).",
        },
    )


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
    day = fields.Date(
        metadata={
            "description": "The day it counts on in the rollups, in the workspace's time "
            "zone: its conversion date, or its last touch's date when it did not convert."
        }
    )


class CustomerJourneysQuery(ma.Schema):
    limit = fields.Integer(
        load_default=100,
        validate=validate.Range(min=1, max=1000),
        metadata={"description": "Journeys per page, 1-1000 (100 by default)."},
    )
    cursor = fields.String(metadata={"description": "`next_cursor` of the previous page."})


class CustomerJourneyOut(JourneyOut):
    origin = fields.String(
        validate=validate.OneOf(["events", "sent"]),
        metadata={"description": "`events`: derived from raw events; `sent`: ingested as is."},
    )


class CustomerJourneys(ma.Schema):
    customer_id = fields.String()
    ids = fields.List(
        fields.String(),
        metadata={"description": "The person's ids: this one and every id linked to it."},
    )
    journeys = fields.List(fields.Nested(CustomerJourneyOut))
    next_cursor = fields.String(allow_none=True, metadata={"description": "Null on the last page."})


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

    JSON_SCHEMA: ClassVar[dict[str, Any]] = {
        "description": "A path a client aggregated itself, with its totals: it needs "
        "conversions or nulls, value needs conversions, and `stages` (when given) has one "
        "entry per channel of `path`.",
        "allOf": [
            {
                "anyOf": [
                    {
                        "required": ["conversions"],
                        "properties": {"conversions": {"exclusiveMinimum": 0}},
                    },
                    {"required": ["nulls"], "properties": {"nulls": {"exclusiveMinimum": 0}}},
                ]
            },
            {
                "anyOf": [
                    {"properties": {"value": {"maximum": 0}}},
                    {"properties": {"conversions": {"exclusiveMinimum": 0}}},
                ]
            },
        ],
    }

    path = fields.List(
        fields.String(validate=TEXT),
        required=True,
        validate=validate.Length(min=1, max=MAX_TOUCHES),
    )
    stages = fields.List(
        fields.String(validate=TEXT, allow_none=True), load_default=None, allow_none=True
    )
    conversions = Number(required=True, validate=COUNT, metadata=COUNT_SCHEMA)
    nulls = Number(load_default=0.0, validate=COUNT, metadata=COUNT_SCHEMA)
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
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "paths": [
            {
                "path": ["paid_search", "email"],
                "stages": ["awareness", "decision"],
                "conversions": 12,
                "nulls": 340,
                "value": 1075.0,
                "date": "2024-03-01",
            }
        ]
    }
    paths = fields.List(
        fields.Nested(PathIn),
        required=True,
        metadata={
            "minItems": 1,
            "description": "1 to `PATHCREDIT_MAX_BATCH` paths (10,000 by default).",
        },
    )
