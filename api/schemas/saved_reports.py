"""Marshmallow schemas of saved reports and their table links."""

from __future__ import annotations

from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from ..service.saved_reports import NAME, NAME_RULE
from ..service.signing import MAX_TOKEN
from .attribution import AttributionIn
from .common import Whole
from .tables import TableQuery

MAX_LINK_SECONDS = 10 * 366 * 86_400

_NAME = fields.String(
    required=True,
    validate=Whole(NAME, error=f"Use {NAME_RULE}."),
    metadata={"description": f"Its name in URLs, unique in the workspace: {NAME_RULE}."},
)


class SavedReportIn(AttributionIn):
    """A name and the parameters of a run, exactly as `POST /v1/attribution` takes them."""

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "name": "march-markov",
        "models": ["last_touch", "markov"],
        "options": {"markov": {"order": 2}},
        "date_from": "2024-03-01",
        "date_to": "2024-03-31",
    }

    name = _NAME


class SavedReportOut(ma.Schema):
    name = fields.String(required=True)
    parameters = fields.Dict(
        required=True,
        metadata={"description": "The run body as saved; workspace defaults fill the rest."},
    )
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    run_id = fields.String(
        required=True, allow_none=True, metadata={"description": "The run that answered last."}
    )
    data_version = fields.Integer(
        required=True, allow_none=True, metadata={"description": "The data version it read."}
    )
    refreshed_at = fields.DateTime(
        required=True, allow_none=True, metadata={"description": "When that run finished."}
    )
    table_url = fields.String(required=True, metadata={"description": "The table to refresh."})


class SavedReportList(ma.Schema):
    saved_reports = fields.List(fields.Nested(SavedReportOut), required=True)


class SavedTableQuery(TableQuery):
    token = fields.String(
        validate=validate.Length(min=1, max=MAX_TOKEN),
        metadata={"description": "A table link's token, instead of an API key."},
    )


class TableLinkIn(ma.Schema):
    EXAMPLE: ClassVar[dict[str, Any]] = {"expires_in": 2_592_000}

    expires_in = fields.Integer(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=60, max=MAX_LINK_SECONDS),
        metadata={"description": "Seconds until the link stops working; absent or null: never."},
    )


class TableLinkOut(ma.Schema):
    link_id = fields.String(required=True)
    url = fields.String(required=True, metadata={"description": "The table as CSV, no key."})
    token = fields.String(required=True, metadata={"description": "The signed token in it."})
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True, allow_none=True)
    revoked_at = fields.DateTime(required=True, allow_none=True)


class TableLinkList(ma.Schema):
    links = fields.List(fields.Nested(TableLinkOut), required=True)
