"""Schemas of the workspace's dictionaries: channels and the funnel's stages."""

from __future__ import annotations

from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from .common import TEXT


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
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "stages": [
            {"name": "awareness"},
            {"name": "consideration"},
            {"name": "decision"},
            {"name": "retention"},
            {"name": "advocacy"},
        ]
    }
    stages = fields.List(
        fields.Nested(StageIn),
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={
            "uniqueItems": True,
            "description": "The funnel in order; names unique, and codes unique where given.",
        },
    )

    @ma.validates_schema
    def _unique(self, data: dict[str, Any], **kwargs: Any) -> None:
        names = [s["name"] for s in data["stages"]]
        codes = [s["code"] for s in data["stages"] if s["code"] is not None]
        if len(set(names)) != len(names):
            raise ma.ValidationError("Stage names must be unique.", "stages")
        if len(set(codes)) != len(codes):
            raise ma.ValidationError("Stage codes must be unique.", "stages")
