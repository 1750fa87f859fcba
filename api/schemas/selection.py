"""The data selection as request fields: a JSON body or query parameters.

Both load into plain dicts that :func:`api.service.selection.selection_from` turns into
one ``Selection``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from ..service.ingest import TOO_DEEP
from ..service.selection import MAX_LOOKBACK_DAYS
from .common import StrictBoolean, StrictInteger, shallow


def no_nul(value: Any) -> None:
    """PostgreSQL text and jsonb cannot hold NUL characters; refuse them up front (in
    keys and values at any depth, level by level)."""
    level = [value]
    while level:
        if any("\x00" in v for v in level if isinstance(v, str)):
            raise ma.ValidationError("Must not contain NUL characters.")
        level = [
            x
            for v in level
            if isinstance(v, dict | list)
            for x in ([*v.keys(), *v.values()] if isinstance(v, dict) else v)
        ]


_NAME = fields.String(validate=[validate.Length(min=1, max=200), no_nul])
_TEXT: list[Callable[[Any], Any]] = [validate.Length(min=1), no_nul]


class JSONObject(fields.String):
    """A JSON object passed as one query-string value, e.g. ``{"plan":"pro"}``; its
    values are checked by ``values`` (a field) or the whole object by ``schema``."""

    def __init__(
        self,
        values: fields.Field[Any] | None = None,
        schema: type[ma.Schema] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.values = values
        self.schema = schema
        self.dict_field = None if values is None else fields.Dict(keys=_NAME, values=values)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            parsed = json.loads(text)
        except ValueError:
            raise ma.ValidationError("Not a valid JSON object.") from None
        except RecursionError:
            raise ma.ValidationError(TOO_DEEP) from None
        if not isinstance(parsed, dict):
            raise ma.ValidationError("Not a valid JSON object.")
        if self.schema is not None:
            return self.schema().load(parsed)
        if self.dict_field is not None:
            return self.dict_field.deserialize(parsed)
        return parsed


class FiltersIn(ma.Schema):
    """Segment filters: a journey matches when it matches every filter given."""

    attributes = fields.Dict(
        keys=fields.String(),
        validate=[shallow, no_nul],
        metadata={
            "description": "Journey attributes to match by containment: every key given "
            "must be present with that value (JSON values; nested objects match partially)."
        },
    )
    device = fields.String(
        validate=_TEXT,
        metadata={"description": "Keep journeys with at least one touch on this device."},
    )
    campaign = fields.String(
        validate=_TEXT,
        metadata={"description": "Keep journeys with at least one touch in this campaign."},
    )


class _DateRange(ma.Schema):
    date_from = fields.Date(
        metadata={"description": "First conversion date included (ISO date, workspace time zone)."}
    )
    date_to = fields.Date(
        metadata={"description": "Last conversion date included (ISO date, workspace time zone)."}
    )

    @ma.validates_schema
    def _ordered(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            raise ma.ValidationError("Must not be before date_from.", "date_to")


class SelectionIn(_DateRange):
    """The data a run reads, as JSON body fields. Absent fields take the workspace
    defaults (``GET /v1/settings``), then the built-in ones."""

    filters = fields.Nested(FiltersIn, metadata={"description": "Segment filters."})
    channel_groups = fields.Dict(
        keys=_NAME,
        values=_NAME,
        metadata={"description": "Raw channel name -> group name; grouped channels merge."},
    )
    collapse_repeats = StrictBoolean(
        metadata={"description": "Merge consecutive touches on the same channel and stage."}
    )
    lookback_days = StrictInteger(
        allow_none=True,
        validate=validate.Range(min=1, max=MAX_LOOKBACK_DAYS),
        metadata={
            "description": "Drop touches more than this many days before the conversion "
            "(the last touch for journeys that did not convert). Reads raw journeys; "
            "null turns a workspace default off."
        },
    )


class SelectionQuery(_DateRange):
    """The same selection as query parameters; objects are JSON-encoded strings."""

    attributes = JSONObject(
        validate=[shallow, no_nul],
        metadata={"description": 'Attributes to match, as JSON: `{"plan":"pro"}`.'},
    )
    device = fields.String(validate=_TEXT)
    campaign = fields.String(validate=_TEXT)
    channel_groups = JSONObject(
        values=_NAME,
        metadata={"description": 'Channel grouping as JSON: `{"google":"search"}`.'},
    )
    collapse_repeats = fields.Boolean()
    lookback_days = fields.Integer(validate=validate.Range(min=1, max=MAX_LOOKBACK_DAYS))
