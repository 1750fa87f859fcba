"""/v1/events and /v1/event-rules: raw events in, journeys derived from them."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import msgspec
from flask import request, url_for
from flask.views import MethodView

from ..problems import BadRequest, FieldError, InvalidInput, UnsupportedMediaType
from ..schemas.events import EventRulesIn, EventRulesOut, EventWriteResult, RederivationOut
from ..service import event_rules, events, rederive
from ..service.bulk import NDJSON_TYPES
from ..service.ingest import PLAIN
from ..store import events as event_store
from . import bodies
from .context import database, settings, workspace
from .openapi import Blueprint

bp = Blueprint("events", __name__, url_prefix="/v1", description="Raw events and event rules")


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
            chunks = bodies.chunks(conf.max_bulk_bytes)
            return events.import_stream(
                database(), ws, chunks, "segment", conf.max_errors, conf.held_events
            )
        if request.mimetype != "application/json":
            raise UnsupportedMediaType("Send application/json or application/x-ndjson.")
        data = b"".join(bodies.chunks(conf.max_request_bytes))
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
    @bp.alt_response(
        202,
        schema=EventRulesOut,
        headers={"Location": {"schema": {"type": "string"}}},
        description="Stored; the journeys are being derived again by a background job",
        success=True,
    )
    @bp.problems(400, 401, 413, 415)
    def put(self, body: dict[str, Any]) -> Any:
        """Replace the rules and derive every person's journeys again.

        Fields left out take the defaults. Channel conditions are regular expressions
        (checked here); stages must be stages of the workspace. In a workspace of at
        most `PATHCREDIT_REDERIVE_INLINE_EVENTS` events (100,000 by default) the
        journeys are derived again in this request, in the transaction that stores
        the rules: the answer is 200 with what changed in `rederived`, and the
        journeys are ready. In a larger one the rules are stored and the answer is 202
        at once, with `rederivation` and its `Location`: a job of the queue derives the
        journeys again, a step at a time, while events go on being written; poll it
        for `status` and `progress`. Changing the rules again supersedes it.
        """
        ws = workspace().workspace_id
        done = rederive.change_rules(database(), ws, body, settings().rederive_inline_events)
        out = event_rules.with_defaults(done["rules"])
        if "rederived" in done:
            return {**out, "rederived": done["rederived"]}
        found = done["rederivation"]
        location = url_for("events.Rederivation", rederivation_id=UUID(found["rederivation_id"]))
        return {**out, "rederivation": _rederivation_out(found)}, 202, {"Location": location}


@bp.route("/event-rules/rederivations/<uuid:rederivation_id>")
class Rederivation(MethodView):
    @bp.response(200, RederivationOut)
    @bp.problems(401, 404)
    def get(self, rederivation_id: UUID) -> dict[str, Any]:
        """Get a background re-derivation of the journeys: status and progress.

        Status is queued, running, succeeded, failed (`error` says why) or superseded
        (the rules changed again before it finished; the newer change derives the
        journeys). `progress` counts the workspace's ids (anonymousIds and userIds)
        done; `journeys` what happened to the journeys so far (a person whose ids fall
        in two steps is counted in both).
        """
        found = rederive.get(database(), workspace().workspace_id, str(rederivation_id))
        return _rederivation_out(found)


def _rederivation_out(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("rederivation_id", "status", "events", "people", "error", "created_at",
            "started_at", "finished_at")  # fmt: skip
    return {
        **{k: row[k] for k in keys},
        "progress": {"done": row["ids_done"], "total": row["ids_total"]},
        "journeys": {k: row[k] for k in ("created", "replaced", "unchanged", "deleted")},
    }
