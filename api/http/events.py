"""/v1/events and /v1/event-rules: raw events in, journeys derived from them."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

import msgspec
from flask import request
from flask.views import MethodView

from .. import store
from ..problems import (
    BadRequest,
    FieldError,
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from ..schemas.events import EventRulesIn, EventRulesOut, EventWriteResult
from ..service import event_rules, events
from ..service.bulk import NDJSON_TYPES
from ..service.ingest import PLAIN
from ..store import events as event_store
from .context import database, settings, workspace
from .openapi import Blueprint

bp = Blueprint("events", __name__, url_prefix="/v1", description="Raw events and event rules")

CHUNK = 1 << 20


def _text(limit: int, description: str = "") -> dict[str, Any]:
    """A text field of an event: a string with no control characters, or an integer
    (read as its digits, as Segment's libraries may send numeric ids), or null (absent)."""
    text = {"type": "string", "minLength": 1, "maxLength": limit, "pattern": PLAIN}
    out: dict[str, Any] = {"anyOf": [text, {"type": "integer"}, {"type": "null"}]}
    return {**out, "description": description} if description else out


EVENT_FIELDS: dict[str, Any] = {
    "type": {"type": "string", "enum": list(events.TYPES)},
    "messageId": _text(events.MAX_TEXT),
    "anonymousId": _text(events.MAX_ID),
    "userId": _text(events.MAX_ID),
    "previousId": _text(events.MAX_ID, "alias: the id being linked"),
    "timestamp": {"type": "string", "format": "date-time"},
    "sentAt": {"type": "string", "format": "date-time"},
    "receivedAt": {"type": "string", "format": "date-time"},
    "event": _text(events.MAX_TEXT, "track: the event name"),
    "name": _text(events.MAX_TEXT, "page or screen: its name"),
    "properties": {"type": ["object", "null"]},
    "context": {
        "type": ["object", "null"],
        "description": "campaign (UTM name, source, medium, term, content), page (url, "
        "referrer, path), userAgent, device (type)",
    },
}


def _needs(kind: str, *names: str) -> dict[str, Any]:
    """An event of type ``kind`` carries ``names``."""
    return {
        "anyOf": [{"properties": {"type": {"not": {"enum": [kind]}}}}, {"required": list(names)}]
    }


EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "messageId", "timestamp"],
    "allOf": [
        {"anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}]},
        _needs("track", "event"),
        _needs("alias", "previousId", "userId"),
    ],
    "properties": EVENT_FIELDS,
    "additionalProperties": True,
}
EVENT_EXAMPLE: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "messageId": "m-1",
    "userId": "alice",
    "timestamp": "2024-03-04T19:40:00Z",
    "properties": {"revenue": 120},
    "context": {"campaign": {"source": "google", "medium": "cpc"}},
}
EVENTS_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["batch"],
                "properties": {
                    "batch": {
                        "type": "array",
                        "items": EVENT_SCHEMA,
                        "minItems": 1,
                        "maxItems": 10000,
                    },
                    "context": {
                        "type": "object",
                        "description": "Shared by the batch's events (theirs win)",
                    },
                    "sentAt": {"type": "string", "format": "date-time"},
                    "integrations": {"type": "object", "description": "Read and not kept"},
                    "writeKey": {"type": "string", "description": "Read and not kept"},
                },
                "additionalProperties": False,
            },
            "example": {"batch": [EVENT_EXAMPLE]},
        },
        "application/x-ndjson": {
            "schema": {"type": "string", "format": "binary", "description": "One event per line"},
            "example": json.dumps(EVENT_EXAMPLE) + "\n",
        },
    },
}


@bp.route("/events")
class Events(MethodView):
    @bp.doc(requestBody=EVENTS_BODY)
    @bp.response(200, EventWriteResult)
    @bp.problems(400, 401, 413, 415, 422)
    def post(self) -> dict[str, Any]:
        """Ingest raw events (Segment-style) and derive journeys from them.

        Send `{"batch": [event, ...]}` as `application/json` (at most
        `PATHCREDIT_MAX_BATCH` events, `PATHCREDIT_MAX_REQUEST_BYTES` of JSON), or one
        event per line as `application/x-ndjson` (up to `PATHCREDIT_MAX_BULK_BYTES`), in
        either case optionally with `Content-Encoding: gzip` (the limits apply to the
        decompressed body). An event is at most 32 KiB of JSON. Each event needs `type`
        (track, page, screen, identify, alias, group), `messageId`, `anonymousId` or
        `userId`, and `timestamp` with a time zone; a track needs `event`, an alias
        `previousId` and `userId`. Unknown fields are kept in the stored event. An event
        whose `messageId` was seen is skipped. One bad event rejects the request with
        every error listed, and nothing is written. Besides the bearer key, HTTP Basic
        with the key as user name and an empty password is accepted here. The journeys
        of every person the new events touch are derived again (see `/v1/event-rules`);
        their ids are `ev:u:<userId>:<n>` or `ev:a:<anonymousId>:<n>`.
        """
        ws = workspace().workspace_id
        conf = settings()
        if request.mimetype in NDJSON_TYPES:
            chunks = _body_chunks(conf.max_bulk_bytes)
            return events.import_stream(database(), ws, chunks, "segment", conf.max_errors)
        if request.mimetype != "application/json":
            raise UnsupportedMediaType("Send application/json or application/x-ndjson.")
        data = b"".join(_body_chunks(conf.max_request_bytes))
        if not data.strip():
            raise BadRequest("The request body is empty; send a JSON object.")
        try:
            body = msgspec.json.decode(data)
        except RecursionError:
            detail = "The request body nests arrays and objects too deeply to be read."
            raise InvalidInput(detail, [FieldError("/", detail)]) from None
        except (msgspec.MsgspecError, UnicodeDecodeError):
            raise BadRequest("The request body is not valid JSON.") from None
        return events.write_batch(database(), ws, body, conf.max_batch)


def _body_chunks(limit: int) -> Iterator[bytes]:
    """The request body, decompressed when sent with ``Content-Encoding: gzip``; over
    ``limit`` bytes (decompressed) is a 413."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        raise UnsupportedMediaType("Content-Encoding may be gzip or none.")
    request.max_content_length = limit
    stream = request.stream
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding != "identity" else None
    total = raw = 0
    # Not one read past the limit: werkzeug answers that with its own 413.
    while raw < limit and (chunk := stream.read(min(CHUNK, limit - raw))):
        raw += len(chunk)
        if inflate is not None:
            try:
                chunk = inflate.decompress(chunk, limit - total + 1)
                while inflate.unconsumed_tail and len(chunk) <= limit - total:
                    more = inflate.decompress(inflate.unconsumed_tail, limit - total + 1)
                    chunk += more
            except zlib.error:
                raise BadRequest("The body is not valid gzip.") from None
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
        yield chunk
    # werkzeug stops reading a body sent without a length (chunked) at the limit, as if
    # it ended there: one more byte means it is larger.
    if request.content_length is None and raw >= limit and request.environ["wsgi.input"].read(1):
        raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
    if inflate is not None and not inflate.eof:
        raise BadRequest("The gzip body ends early.")


@bp.route("/event-rules")
class EventRules(MethodView):
    @bp.response(200, EventRulesOut)
    @bp.problems(401)
    def get(self) -> dict[str, Any]:
        """Get the workspace's rules for deriving journeys from events.

        Every field is listed; those never set show the default: conversions
        (`Order Completed`, `purchase`; value from `revenue`, `value` or `total`), the
        default channel grouping (Direct, Organic Search, Paid Search, Organic Social,
        Paid Social, Email, Referral, Display, … in its order), stage rules onto the
        default funnel, a 30-minute session timeout and a 90-day lookback.
        """
        with database().transaction() as conn:
            stored = event_store.get_rules(conn, workspace().workspace_id)
        return event_rules.with_defaults(stored)

    @bp.arguments(EventRulesIn)
    @bp.response(200, EventRulesOut)
    @bp.problems(400, 401, 413, 415)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Replace the rules and derive every person's journeys again.

        Fields left out take the defaults. Channel conditions are regular expressions
        (checked here); stages must be stages of the workspace. The whole workspace is
        derived again in this request, in one transaction: its cost grows with the
        workspace's events (see the README).
        """
        ws = workspace().workspace_id
        with database().transaction() as conn:
            stages = [s.name for s in store.list_stages(conn, ws)]
            event_rules.check(body, stages)
            event_store.put_rules(conn, ws, body)
            people, counts, deleted = events.rederive(conn, ws)
            stored = event_store.get_rules(conn, ws)
        return {
            **event_rules.with_defaults(stored),
            "rederived": {
                "people": people,
                "created": counts.created,
                "replaced": counts.replaced,
                "unchanged": counts.unchanged,
                "deleted": deleted,
            },
        }
