"""Schemas of raw events (the write result) and of the workspace's event rules.

Events themselves are free-form Segment-style objects checked by
:mod:`api.service.events` (unknown fields are kept, not refused); the spec describes
their known fields here.
"""

from __future__ import annotations

from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from .common import TEXT, StrictInteger

NAMES = fields.List(fields.String(validate=TEXT), validate=validate.Length(max=1000))


def pattern(description: str | None = None) -> fields.String:
    """A regular expression (checked by the service when the rules are compiled)."""
    metadata = {"description": description} if description else {}
    return fields.String(
        validate=validate.Length(min=1, max=1000), load_default=None, metadata=metadata
    )


class ConversionRulesIn(ma.Schema):
    events = fields.List(
        fields.String(validate=TEXT),
        validate=validate.Length(max=1000),
        metadata={"description": "Track event names that are conversions"},
    )
    value_properties = fields.List(
        fields.String(validate=TEXT),
        validate=validate.Length(max=20),
        metadata={"description": "Properties holding the value, first present wins"},
    )


class ChannelRuleIn(ma.Schema):
    """All given conditions must hold: each a regular expression matched against the
    whole field, ignoring case (an absent field is the empty string)."""

    channel = fields.String(required=True, validate=TEXT)
    source = pattern()
    medium = pattern()
    campaign = pattern()
    referrer_host = pattern()
    source_category = pattern("search, social, video or shopping (shipped lists)")
    click_id = pattern("gclid, msclkid, fbclid ...")

    @ma.post_dump
    def _drop_empty(self, data: dict[str, object], **kwargs: object) -> dict[str, object]:
        return {k: v for k, v in data.items() if v is not None}


class StageRuleIn(ma.Schema):
    stage = fields.String(required=True, validate=TEXT)
    events = NAMES
    path_prefixes = fields.List(
        fields.String(validate=validate.Length(min=1, max=1000)),
        validate=validate.Length(max=1000),
    )


class StageRulesIn(ma.Schema):
    rules = fields.List(fields.Nested(StageRuleIn), validate=validate.Length(max=1000))
    default = fields.String(
        allow_none=True, validate=TEXT, metadata={"description": "Stage of other sessions"}
    )
    after_conversion = fields.String(
        allow_none=True,
        validate=TEXT,
        metadata={"description": "Stage of other sessions once the person has converted"},
    )


class EventRulesIn(ma.Schema):
    """How events become journeys; a PUT replaces the rules, fields left out take the
    defaults."""

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "conversions": {"events": ["Order Completed"]},
        "session_timeout_minutes": 30,
        "lookback_days": 90,
    }

    conversions = fields.Nested(ConversionRulesIn)
    channels = fields.List(
        fields.Nested(ChannelRuleIn),
        validate=validate.Length(max=1000),
        metadata={"description": "Ordered; the first rule that matches names the channel"},
    )
    fallback_channel = fields.String(validate=TEXT)
    stages = fields.Nested(StageRulesIn)
    session_timeout_minutes = StrictInteger(validate=validate.Range(min=1, max=24 * 60))
    lookback_days = StrictInteger(validate=validate.Range(min=1, max=3650))


class JourneyChanges(ma.Schema):
    created = fields.Integer()
    replaced = fields.Integer()
    unchanged = fields.Integer()
    deleted = fields.Integer()


class RederivationProgress(ma.Schema):
    done = fields.Integer()
    total = fields.Integer(allow_none=True, metadata={"description": "Null until it starts"})


class RederivationOut(ma.Schema):
    """A background re-derivation of a workspace's journeys after its rules changed."""

    rederivation_id = fields.UUID()
    status = fields.String(
        validate=validate.OneOf(["queued", "running", "succeeded", "failed", "superseded"]),
        metadata={"description": "`superseded`: the rules changed again before it finished"},
    )
    events = fields.Integer(metadata={"description": "Events the workspace held when asked"})
    progress = fields.Nested(
        RederivationProgress,
        metadata={"description": "The workspace's ids (anonymousIds, userIds) done"},
    )
    people = fields.Integer(metadata={"description": "People derived again so far"})
    journeys = fields.Nested(JourneyChanges)
    error = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(format="iso")
    started_at = fields.AwareDateTime(format="iso", allow_none=True)
    finished_at = fields.AwareDateTime(format="iso", allow_none=True)


class Rederived(ma.Schema):
    people = fields.Integer()
    created = fields.Integer()
    replaced = fields.Integer()
    unchanged = fields.Integer()
    deleted = fields.Integer()


class EventRulesOut(EventRulesIn):
    rederived = fields.Nested(
        Rederived,
        metadata={"description": "After a PUT answered 200: people and journeys derived again"},
    )
    rederivation = fields.Nested(
        RederivationOut,
        metadata={"description": "After a PUT answered 202: the re-derivation to poll"},
    )


class EventWriteResult(ma.Schema):
    """What an event write did: events stored (new messageIds) and skipped, the people
    whose journeys were derived again and what happened to those journeys."""

    received = fields.Integer()
    stored = fields.Integer()
    duplicates = fields.Integer(metadata={"description": "Events whose messageId was seen"})
    people = fields.Integer()
    journeys = fields.Nested(JourneyChanges)
