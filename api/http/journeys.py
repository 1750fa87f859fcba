"""/v1/journeys and /v1/customers: ingestion, lookup and erasure of journeys."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView

from .. import store
from ..problems import UnsupportedMediaType
from ..schemas.journeys import (
    CustomerDeleted,
    CustomerJourneys,
    CustomerJourneysQuery,
    JourneyBatchIn,
    JourneyOut,
    WriteResult,
)
from ..service import bulk, ingest
from ..store.customers import customer_journeys
from . import bodies, cursors
from .context import database, settings, workspace
from .openapi import Blueprint

bp = Blueprint("journeys", __name__, url_prefix="/v1", description="Journeys and customers")


SENT = "$request.body#/journeys/0"
SENT_LINKS = {
    "GetSentJourney": {
        "operationId": "get_journey",
        "parameters": {"journey_id": f"{SENT}/journey_id"},
        "description": "The first journey of the batch, as stored.",
    },
    "DeleteSentJourney": {
        "operationId": "delete_journey",
        "parameters": {"journey_id": f"{SENT}/journey_id"},
        "description": "Delete the first journey of the batch.",
    },
    "EraseSentCustomer": {
        "operationId": "erase_customer",
        "parameters": {"customer_id": f"{SENT}/customer_id"},
        "description": "Erase the customer of the batch's first journey.",
    },
}
"""Follow-up calls on what a batch wrote: the ids are the client's own, from the body."""


@bp.route("/journeys")
class Journeys(MethodView):
    @bp.arguments(JourneyBatchIn)
    @bp.response(200, WriteResult)
    @bp.doc(responses={200: {"links": SENT_LINKS}})
    @bp.problems(400, 401, 413, 415)
    def post(self, body: dict[str, Any]) -> dict[str, int]:
        """Ingest a batch of journeys.

        Journeys are identified by the client's `journey_id`: sending one again replaces
        it (and moves its share of the rollups). The whole batch is validated first; any
        bad record rejects the batch with every error listed, and nothing is written.
        At most `PATHCREDIT_MAX_BATCH` journeys (10,000 by default) per request; use
        `/v1/journeys/bulk` for files.
        """
        ws = workspace().workspace_id
        return ingest.write_batch(database(), ws, body["journeys"], settings().max_batch)


BULK_BODY = {
    "required": True,
    "content": {
        "application/x-ndjson": {
            "schema": {"type": "string", "format": "binary", "description": "One journey per line"},
            "example": (
                '{"journey_id": "j-3001", "touchpoints": [{"channel": "email", '
                '"timestamp": "2024-03-07T09:00:00Z"}], "converted": true, "value": 30}\n'
            ),
        },
        "text/csv": {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": "One touchpoint per row",
            },
            "example": (
                "journey_id,timestamp,channel,stage,converted,value\n"
                "j-2001,2024-03-05T09:00:00Z,referral,awareness,true,45\n"
                "j-2001,2024-03-06T21:10:00Z,email,decision,,\n"
            ),
        },
    },
}


@bp.route("/journeys/bulk")
class JourneysBulk(MethodView):
    @bp.doc(requestBody=BULK_BODY)
    @bp.response(200, WriteResult)
    @bp.problems(401, 413, 415, 422)
    def post(self) -> dict[str, int]:
        """Ingest a file of journeys (NDJSON or CSV), streamed.

        Send `Content-Type: application/x-ndjson` with one journey per line, in the
        shape `POST /v1/journeys` takes, or `Content-Type: text/csv` with one touchpoint
        per row and a header naming the columns (`journey_id`, `timestamp` and `channel`
        required; `customer_id`, `stage`, `campaign`, `device`, `converted`, `value`,
        `converted_at`, `attributes` optional), the rows of a journey together; its
        journey-level fields are read from its first row. The whole file is written in
        one transaction, or not at all: errors list the bad records by 0-based record
        index (line of NDJSON, data row of CSV). The body may be sent with
        `Content-Encoding: gzip`; the size limit applies after decompression.
        """
        kind = bulk.format_of(request.mimetype)
        if kind is None:
            raise UnsupportedMediaType("Send application/x-ndjson or text/csv.")
        chunks = bodies.chunks(settings().max_bulk_bytes)
        written = bulk.import_stream(
            database(), workspace().workspace_id, kind, chunks, settings().max_errors
        )
        return ingest.write_result(written)


JOURNEY_LINKS = {
    "DeleteJourney": {
        "operationId": "delete_journey",
        "parameters": {"journey_id": "$response.body#/journey_id"},
        "description": "Delete this journey.",
    },
}


@bp.route("/journeys/<journey_id:journey_id>", merge_slashes=False)
class Journey(MethodView):
    @bp.response(200, JourneyOut)
    @bp.doc(responses={200: {"links": JOURNEY_LINKS}})
    @bp.problems(401, 404)
    def get(self, journey_id: str) -> dict[str, Any]:
        """Get one journey as stored (touchpoints in time order).

        The journey as ingested, with its touchpoints sorted by time, its conversion
        and the day it counts on in the rollups. 404 when the workspace has no journey
        with this id.
        """
        with database().transaction() as conn:
            return store.get_journey(conn, workspace().workspace_id, journey_id)

    @bp.response(204)
    @bp.problems(401, 404)
    def delete(self, journey_id: str) -> None:
        """Delete one journey and its share of the rollups.

        The journey and its contribution to every rollup go in one transaction; later
        runs and tables no longer count it. 404 when there is no such journey.
        """
        with database().transaction() as conn:
            store.delete_journey(conn, workspace().workspace_id, journey_id)


@bp.route("/customers/<id:customer_id>", merge_slashes=False)
class Customer(MethodView):
    @bp.response(200, CustomerDeleted)
    @bp.problems(401)
    def delete(self, customer_id: str) -> dict[str, Any]:
        """Erase every journey of a customer and their share of the rollups.

        For erasure requests: every journey carrying this customer id, and its share
        of the rollups, goes in one transaction. Answers how many journeys were
        erased (0 when none carried the id).
        """
        with database().transaction() as conn:
            deleted = store.delete_customer(conn, workspace().workspace_id, customer_id)
        return {"customer_id": customer_id, "deleted": deleted}


@bp.route("/customers/<id:customer_id>/journeys", merge_slashes=False)
class CustomerJourneyList(MethodView):
    @bp.arguments(CustomerJourneysQuery, location="query")
    @bp.response(200, CustomerJourneys)
    @bp.problems(401, 404, 422)
    def get(self, query: dict[str, Any], customer_id: str) -> dict[str, Any]:
        """List a customer's journeys with their touches, built from events or sent.

        The customer is a person: this id and every anonymousId or userId linked to it
        by events (`ids`). Their journeys, those derived from events (`origin: events`)
        and those sent as journeys with one of those ids as `customer_id` (`origin:
        sent`), come oldest first: by the time of their first touch, then by
        `journey_id` (bytewise). Pages hold `limit` journeys; pass `next_cursor` as
        `cursor` for the next page. 404 when no journey and no event carries the id.
        """
        limit = query["limit"]
        with database().transaction() as conn:
            ids, found = customer_journeys(
                conn, workspace().workspace_id, customer_id, limit + 1,
                cursors.decode(query.get("cursor")),
            )  # fmt: skip
        page = found[:limit]
        more = len(found) > limit
        return {
            "customer_id": customer_id,
            "ids": ids,
            "journeys": [{**j, "origin": _origin(j)} for j, _ in page],
            "next_cursor": cursors.encode(page[-1][1], page[-1][0]["journey_id"]) if more else None,
        }


def _origin(journey: dict[str, Any]) -> str:
    derived = journey["attributes"].get("origin") == "events"
    return "events" if derived and journey["journey_id"].startswith("ev:") else "sent"
