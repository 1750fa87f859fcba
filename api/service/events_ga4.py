"""GA4 BigQuery export rows -> events in the Segment shape the rest of the path reads.

One row of the export (``events_YYYYMMDD``), as NDJSON, is one event:

| GA4 field | event field |
|---|---|
| ``event_timestamp`` (microseconds since the epoch, UTC) | ``timestamp`` |
| ``user_pseudo_id`` / ``user_id`` | ``anonymousId`` / ``userId`` |
| ``event_name`` (``page_view`` becomes a page event) | ``event`` / ``name`` |
| ``event_params`` (key and typed value) | ``properties`` |
| ``page_location``, ``page_referrer`` parameters | ``context.page.url`` / ``referrer`` |
| ``collected_traffic_source`` (``manual_*``) | ``context.campaign`` |
| ``traffic_source`` (the user's first) | ``context.campaign`` of ``first_visit``, ``first_open`` |
| ``ecommerce.purchase_revenue``, ``transaction_id`` | ``properties.revenue``, ``order_id`` |
| ``device.category`` | ``context.device.type`` |

GA4 rows have no message id: the id is a hash of the fields that identify a row
(pseudo id, timestamp, name, bundle and index), so importing a file twice stores each
row once.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import FieldError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MANUAL = {
    "manual_source": "source",
    "manual_medium": "medium",
    "manual_campaign_name": "name",
    "manual_term": "term",
    "manual_content": "content",
}
FIRST_SOURCE = {"source": "source", "medium": "medium", "name": "name"}


def _param_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    for key in ("string_value", "int_value", "double_value", "float_value"):
        v = value.get(key)
        if v is not None:
            return v
    return None


def _params(row: dict[str, Any]) -> dict[str, Any]:
    params = row.get("event_params")
    out: dict[str, Any] = {}
    if isinstance(params, list):
        for p in params:
            if isinstance(p, dict) and isinstance(p.get("key"), str):
                out[p["key"]] = _param_value(p.get("value"))
    return out


def _time(value: Any) -> datetime | None:
    try:
        micros = int(value)
        return EPOCH + timedelta(microseconds=micros)
    except (TypeError, ValueError, OverflowError):
        return None


def to_event(row: Any) -> tuple[dict[str, Any] | None, list[FieldError]]:
    """One export row as an event; errors point into the row."""
    if not isinstance(row, dict):
        return None, [FieldError("", "Must be a JSON object (a GA4 export row).")]
    errors = []
    at = _time(row.get("event_timestamp"))
    if at is None:
        errors.append(FieldError("/event_timestamp", "Must be microseconds since 1970 (UTC)."))
    name = row.get("event_name")
    if not isinstance(name, str) or not name:
        errors.append(FieldError("/event_name", "Missing data for required field."))
    if row.get("user_pseudo_id") is None and row.get("user_id") is None:
        errors.append(FieldError("/user_pseudo_id", "Send user_pseudo_id or user_id (or both)."))
    if errors or at is None or not isinstance(name, str):
        return None, errors
    params = _params(row)
    properties = {k: v for k, v in params.items() if v is not None}
    ecommerce = row.get("ecommerce")
    if isinstance(ecommerce, dict):
        if ecommerce.get("purchase_revenue") is not None:
            properties["revenue"] = ecommerce["purchase_revenue"]
        if ecommerce.get("transaction_id") not in (None, "", "(not set)"):
            properties["order_id"] = ecommerce["transaction_id"]
    context: dict[str, Any] = {}
    page = {
        k: params[p]
        for k, p in (("url", "page_location"), ("referrer", "page_referrer"))
        if isinstance(params.get(p), str)
    }
    if page:
        context["page"] = page
    campaign = _campaign(row, name)
    if campaign:
        context["campaign"] = campaign
    device = row.get("device")
    if isinstance(device, dict) and isinstance(device.get("category"), str):
        context["device"] = {"type": device["category"]}
    event: dict[str, Any] = {
        "type": "page" if name == "page_view" else "track",
        "messageId": _message_id(row),
        "timestamp": at.isoformat(),
        "properties": properties,
        "context": context,
    }
    event["name" if name == "page_view" else "event"] = name
    for ours, theirs in (("anonymousId", "user_pseudo_id"), ("userId", "user_id")):
        if row.get(theirs) is not None:
            event[ours] = str(row[theirs])
    return event, []


def _campaign(row: dict[str, Any], name: str) -> dict[str, Any]:
    collected = row.get("collected_traffic_source")
    out: dict[str, Any] = {}
    if isinstance(collected, dict):
        out = {ours: collected[k] for k, ours in MANUAL.items() if collected.get(k)}
    if not out and name in ("first_visit", "first_open"):
        first = row.get("traffic_source")
        if isinstance(first, dict):
            out = {ours: first[k] for k, ours in FIRST_SOURCE.items() if first.get(k)}
            if out.get("source") == "(direct)":
                out = {}
    return out


def _message_id(row: dict[str, Any]) -> str:
    parts = [
        str(row.get(k, ""))
        for k in (
            "user_pseudo_id", "user_id", "event_timestamp", "event_name",
            "event_bundle_sequence_id", "batch_event_index",
        )
    ]  # fmt: skip
    return "ga4-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
