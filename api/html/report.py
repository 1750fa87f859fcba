"""GET /report, the journey report as one HTML page, and POST /v1/report-links.

The page is self-contained: server-drawn SVG charts and inline styles, no script, no
asset from anywhere (its Content-Security-Policy says so), so it opens offline, prints,
and can be saved or mailed as one file. A browser cannot send an API key header, so a
report can also be opened from a signed link that carries the workspace, the
selection, the models and an expiry (:mod:`api.service.signing`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Response, g, render_template, url_for
from flask.views import MethodView
from markupsafe import Markup

from .. import store
from ..http.context import database, settings, workspace
from ..http.openapi import Blueprint
from ..problems import FieldError, InvalidInput, ServiceUnavailable, Unauthorized
from ..schemas.reports import ReportLinkIn, ReportLinkOut, ReportPageQuery
from ..service import reports, signing
from ..service.selection import Selection
from . import view as report_view

bp = Blueprint("report", __name__, description="The journey report as an HTML page.")

HTML = "text/html"
HEADERS = {
    # everything the page shows is inline: refuse to load anything else
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    # a signed link is a credential: keep it out of Referer headers and caches
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
}


@bp.route("/report")
class Report(MethodView):
    @bp.query_arguments(ReportPageQuery)
    @bp.response(200, {"type": "string"}, content_type=HTML, description="The report page.")
    @bp.problems(401, 422)
    @bp.doc(security=[{"apiKey": []}, {}])
    def get(self, query: dict[str, Any]) -> Response:
        """The journey report as one HTML page.

        Stage funnel, journey flow between stages (Sankey), attribution by channel for
        each model side by side, drop-off hot spots and stage removal effects, for one
        data selection (the parameters of the reports). Self-contained: no script and
        nothing fetched, so it can be saved or printed. Open it with an API key, or
        with a signed link's `token` alone (`POST /v1/report-links`), which carries the
        workspace, the selection and the models. `models` defaults to first touch, last
        touch, linear, position-based and Markov.
        """
        token = query.pop("token", None)
        if token is not None:
            return _signed_page(token, query)
        if "workspace" not in g:
            raise Unauthorized(
                "Send an API key as `Authorization: Bearer <key>`, or open a signed link: "
                "`POST /v1/report-links` (with a key) answers with its URL, which carries "
                "a `token` that opens this page without a key."
            )
        ws = workspace()
        models = tuple(query.pop("models", None) or report_view.DEFAULT_MODELS)
        with database().transaction() as conn:
            selection = reports.selection_of(conn, ws.workspace_id, query)
        return page(ws.workspace_id, ws.name, selection, models)


# The link's token opens the report: an OpenAPI link, for clients and stateful testing.
OPENS_REPORT = {
    "OpenReport": {
        "operationRef": "#/paths/~1report/get",
        "parameters": {"token": "$response.body#/token"},
        "description": "Open the report the link points to.",
    }
}


@bp.route("/v1/report-links")
class ReportLinks(MethodView):
    @bp.arguments(ReportLinkIn)
    @bp.response(200, ReportLinkOut)
    @bp.doc(responses={200: {"links": OPENS_REPORT}})
    @bp.problems(400, 401, 413, 415, 503)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Make a signed link to the HTML report.

        The link opens `GET /report` for this workspace without an API key, showing the
        selection and models given here (workspace defaults filled in now) until it
        expires (`expires_in` seconds, 7 days by default, at most 90). Links are not
        stored: changing `PATHCREDIT_SECRET_KEY` revokes them all. Without that
        setting, links are turned off (503).
        """
        secret = _secret()
        ws = workspace()
        expires = int(time.time()) + body.pop("expires_in")
        models = tuple(body.pop("models", None) or report_view.DEFAULT_MODELS)
        with database().transaction() as conn:
            selection = reports.selection_of(conn, ws.workspace_id, body)
        link = signing.Link(ws.workspace_id, ws.name, selection, models, expires)
        token = signing.sign(secret, link)
        if len(token) > signing.MAX_TOKEN:
            raise InvalidInput(
                f"This selection makes a link of {len(token)} characters, over the "
                f"{signing.MAX_TOKEN} a URL carries: group fewer channels.",
                [FieldError("/channel_groups", "Too large to carry in a link.")],
            )
        return {
            "url": url_for("report.Report", token=token, _external=True),
            "token": token,
            "expires_at": datetime.fromtimestamp(expires, UTC),
        }


def _signed_page(token: str, query: Mapping[str, Any]) -> Response:
    if query:
        raise InvalidInput("A signed link carries its own selection and models; send it alone.")
    try:
        link = signing.verify(_secret(unauthorized=True), token, time.time())
    except signing.LinkError as e:
        raise Unauthorized(str(e)) from e
    with database().transaction() as conn:
        found = store.find_workspace(conn, link.workspace)
    if found is None or found.workspace_id != link.workspace_id:
        raise Unauthorized("The report link's workspace no longer exists.")
    return page(link.workspace_id, link.workspace, link.selection, link.models)


def page(
    workspace_id: int, workspace_name: str, selection: Selection, models: Sequence[str]
) -> Response:
    """Load the selection and render the page."""
    loaded = reports.load(database(), workspace_id, selection)
    with reports.unchecked_floats():
        context = report_view.context(
            workspace_name,
            selection,
            loaded.paths,
            loaded.stages,
            models,
            datetime.now(UTC),
            loaded.notes,
        )
    context["charts"] = {k: Markup(v) for k, v in context["charts"].items()}
    html = render_template("report.html", **context)
    return Response(html, mimetype=HTML, headers=HEADERS)


def _secret(unauthorized: bool = False) -> str:
    secret = settings().secret_key
    if secret:
        return secret
    if unauthorized:
        raise Unauthorized("Report links are turned off on this server.")
    raise ServiceUnavailable("Report links are turned off: set PATHCREDIT_SECRET_KEY.")
