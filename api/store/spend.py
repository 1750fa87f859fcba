"""Spend rows: written in batches, read and deleted by date range, summed per channel
and campaign for the credit tables. Queries live in ``sql/queries/spend.sql``.
Functions take ``conn`` first and never commit.

Amounts go in as :class:`~decimal.Decimal` and are stored as ``numeric``; sums come back
as floats, the type of every other number the tables carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg

from .sqlfiles import query

NO_CAMPAIGN = ""
"""The stored campaign of spend that has none (the key cannot hold NULL)."""


@dataclass(frozen=True)
class SpendRow:
    """One day's spend on a channel (and campaign), as sent."""

    day: date
    channel: str
    campaign: str | None
    amount: Decimal
    currency: str
    rate: Decimal


@dataclass(frozen=True)
class SpendCounts:
    created: int
    replaced: int
    unchanged: int


def put_spend(
    conn: psycopg.Connection, workspace_id: int, currency: str, rows: Sequence[SpendRow]
) -> SpendCounts:
    """Insert or replace ``rows`` (converted into ``currency``, the reporting one)."""
    params = {
        "workspace_id": workspace_id,
        "currency": currency,
        "days": [r.day for r in rows],
        "channels": [r.channel for r in rows],
        "campaigns": [r.campaign or NO_CAMPAIGN for r in rows],
        "amounts": [r.amount for r in rows],
        "currencies": [r.currency for r in rows],
        "rates": [r.rate for r in rows],
    }
    written = [bool(r[0]) for r in conn.execute(query("put_spend"), params).fetchall()]
    created = sum(written)
    replaced = len(written) - created
    return SpendCounts(created, replaced, len(rows) - len(written))


def list_spend(
    conn: psycopg.Connection, workspace_id: int, date_from: date | None, date_to: date | None
) -> list[dict[str, Any]]:
    """Stored rows in the range, by day, channel and campaign."""
    cur = conn.execute(query("list_spend"), _range(workspace_id, date_from, date_to))
    return [
        {
            "date": day,
            "channel": channel,
            "campaign": campaign or None,
            "amount": float(amount),
            "currency": currency,
            "original_amount": float(original),
            "original_currency": original_currency,
            "rate": float(rate),
        }
        for day, channel, campaign, amount, currency, original, original_currency, rate in cur
    ]


def delete_spend(
    conn: psycopg.Connection, workspace_id: int, date_from: date | None, date_to: date | None
) -> int:
    """Delete the rows in the range; how many."""
    return conn.execute(query("delete_spend"), _range(workspace_id, date_from, date_to)).rowcount


def spend_totals(
    conn: psycopg.Connection, workspace_id: int, date_from: date | None, date_to: date | None
) -> dict[tuple[str, str | None], float]:
    """Spend per (channel, campaign) over the range; campaign None for spend without one."""
    cur = conn.execute(query("spend_totals"), _range(workspace_id, date_from, date_to))
    return {(channel, campaign or None): float(total) for channel, campaign, total in cur}


def spend_by_day(
    conn: psycopg.Connection, workspace_id: int, date_from: date, date_to: date
) -> dict[tuple[date, str, str | None], float]:
    """Spend per (day, channel, campaign) over the range; campaign None for spend
    without one."""
    cur = conn.execute(query("spend_by_day"), _range(workspace_id, date_from, date_to))
    return {(day, channel, campaign or None): float(total) for day, channel, campaign, total in cur}


def spend_currencies(conn: psycopg.Connection, workspace_id: int) -> list[str]:
    """The reporting currencies the workspace's stored spend is in."""
    cur = conn.execute(query("spend_currencies"), {"workspace_id": workspace_id})
    return [r[0] for r in cur]


def _range(workspace_id: int, date_from: date | None, date_to: date | None) -> dict[str, Any]:
    return {"workspace_id": workspace_id, "date_from": date_from, "date_to": date_to}
