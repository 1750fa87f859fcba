"""Schemas of spend: rows in, rows out, the date range of reads and deletions."""

from __future__ import annotations

from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from ..service import spend
from .common import AMOUNT, TEXT, Number, Whole
from .tables import TableQuery

CURRENCY = Whole(spend.CURRENCY, error="Not an ISO 4217 currency code (like EUR).")


class SpendRowIn(ma.Schema):
    """One day's spend on a channel, and campaign when given."""

    date = fields.Date(required=True, metadata={"description": "The day (ISO date)."})
    channel = fields.String(
        required=True, validate=TEXT, metadata={"description": "As journeys name it."}
    )
    campaign = fields.String(load_default=None, allow_none=True, validate=TEXT)
    amount = Number(required=True, validate=AMOUNT, metadata={"description": "Non-negative."})
    currency = fields.String(
        load_default=None,
        allow_none=True,
        validate=CURRENCY,
        metadata={"description": "ISO 4217 code; the reporting currency when absent."},
    )
    rate = Number(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0, max=spend.MAX_RATE, min_inclusive=False),
        metadata={
            "description": "Reporting-currency units per unit of `currency`; required "
            "when `currency` is not the reporting currency (no rates are fetched)."
        },
    )


class SpendIn(ma.Schema):
    """Spend rows; a row whose (date, channel, campaign) is stored replaces it."""

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "spend": [
            {"date": "2024-03-01", "channel": "paid_search", "campaign": "spring", "amount": 120},
            {"date": "2024-03-01", "channel": "email", "amount": 80, "currency": "EUR",
             "rate": 1.1},
        ]
    }  # fmt: skip

    spend = fields.List(
        fields.Nested(SpendRowIn),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "1 to `PATHCREDIT_MAX_BATCH` rows (10,000 by default)."},
    )


class _Range(ma.Schema):
    @ma.validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            raise ma.ValidationError("Must not be before date_from.", "date_to")


class SpendQuery(_Range, TableQuery):
    date_from = fields.Date(metadata={"description": "First day included (ISO date)."})
    date_to = fields.Date(metadata={"description": "Last day included (ISO date)."})


class SpendRangeQuery(_Range):
    """A range to delete: both ends required, so that a bare DELETE removes nothing
    by accident."""

    date_from = fields.Date(required=True, metadata={"description": "First day deleted."})
    date_to = fields.Date(required=True, metadata={"description": "Last day deleted."})


class SpendRow(ma.Schema):
    """A stored spend row."""

    date = fields.Date(required=True)
    channel = fields.String(required=True)
    campaign = fields.String(required=True, allow_none=True)
    amount = fields.Float(required=True, metadata={"description": "In `currency`."})
    currency = fields.String(required=True, metadata={"description": "The reporting currency."})
    original_amount = fields.Float(required=True, metadata={"description": "As sent."})
    original_currency = fields.String(required=True, metadata={"description": "As sent."})
    rate = fields.Float(required=True, metadata={"description": "amount / original_amount."})


class SpendWriteResult(ma.Schema):
    received = fields.Integer(required=True)
    created = fields.Integer(required=True)
    replaced = fields.Integer(required=True)
    unchanged = fields.Integer(required=True)
    currency = fields.String(required=True, metadata={"description": "Amounts stored in it."})


class SpendDeleted(ma.Schema):
    deleted = fields.Integer(required=True, metadata={"description": "Rows deleted."})
