"""/v1/spend: advertising spend per day, channel and campaign, in and out."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView

from ..problems import FieldError, InvalidInput
from ..schemas.spend import (
    SpendDeleted,
    SpendIn,
    SpendQuery,
    SpendRangeQuery,
    SpendRow,
    SpendWriteResult,
)
from ..service import spend
from ..store import spend as spend_store
from . import tables
from .context import database, settings, workspace
from .openapi import Blueprint, read_body

bp = Blueprint(
    "spend", __name__, url_prefix="/v1", description="Spend, for cost per conversion and ROAS."
)

COLUMNS = tuple(SpendRow._declared_fields)
CSV_EXAMPLE = (
    "date,channel,campaign,amount,currency,rate\n"
    "2024-03-01,paid_search,spring,120,,\n"
    "2024-03-01,email,,80,EUR,1.1\n"
)
SPEND_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": SpendIn, "example": SpendIn.EXAMPLE},
        "text/csv": {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": "One row per day, channel and campaign, with a header",
            },
            "example": CSV_EXAMPLE,
        },
    },
}


@bp.route("/spend")
class Spend(MethodView):
    @bp.query_arguments(SpendQuery)
    @tables.documented(bp, SpendRow)
    @bp.problems(401)
    def get(self, query: dict[str, Any]) -> Response:
        """Get stored spend in a date range, as JSON or CSV.

        One row per day, channel and campaign, by day: the amount in the reporting
        currency and the amount, currency and rate it was sent with. Both ends of the
        range are optional.
        """
        with database().transaction() as conn:
            rows = spend_store.list_spend(
                conn, workspace().workspace_id, query.get("date_from"), query.get("date_to")
            )
        return tables.render(rows, COLUMNS, query=query, name="spend")

    @bp.doc(requestBody=SPEND_BODY)
    @bp.response(200, SpendWriteResult)
    @bp.problems(400, 401, 409, 413, 415, 422)
    def put(self) -> dict[str, Any]:
        """Store spend rows, replacing those with the same date, channel and campaign.

        Send `{"spend": [...]}` as `application/json`, or `text/csv` with a header
        naming the columns (`date`, `channel` and `amount` required; `campaign`,
        `currency` and `rate` optional). Amounts are in the workspace's reporting
        currency (`currency` in `/v1/settings`, USD unless set); a row in another
        currency needs `rate`, the reporting-currency units one of its units is worth,
        and is stored converted, its original amount kept. Sending a row again replaces
        it, so a batch can be sent twice. One bad row rejects the batch with every
        error listed (CSV errors by 0-based data row and column), and nothing is
        written. At most `PATHCREDIT_MAX_BATCH` rows per request.
        """
        ws, limit = workspace().workspace_id, settings().max_batch
        if request.mimetype in spend.CSV_TYPES:
            rows = spend.read_csv(read_body(request), limit)
            return spend.write(database(), ws, rows, spend.in_csv)
        body = bp.ARGUMENTS_PARSER.parse(SpendIn(), request, location="json")
        if len(body["spend"]) > limit:
            detail = f"At most {limit} rows per request; send more in several."
            raise InvalidInput(detail, [FieldError("/spend", detail)])
        return spend.write(database(), ws, body["spend"])

    @bp.query_arguments(SpendRangeQuery)
    @bp.response(200, SpendDeleted)
    @bp.problems(401)
    def delete(self, query: dict[str, Any]) -> dict[str, Any]:
        """Delete spend in a date range.

        Both ends are required and included, so that a request without them deletes
        nothing; answers how many rows went. Tables read afterwards no longer show the
        spend (it is joined when they are read).
        """
        with database().transaction() as conn:
            deleted = spend_store.delete_spend(
                conn, workspace().workspace_id, query["date_from"], query["date_to"]
            )
        return {"deleted": deleted}
