"""/v1/saved-reports: named run parameters, their refreshable tables and table links.

Views parse and call :mod:`api.service.saved_reports`, which owns the refresh (cache,
claim, run); a table is served as the run table is, through the one renderer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from flask import Response, g, request, url_for
from flask.views import MethodView

from ..schemas.attribution import AttributionIn, ComparisonRow, CreditRow, SeriesRow
from ..schemas.saved_reports import (
    SavedReportIn,
    SavedReportList,
    SavedReportOut,
    SavedTableQuery,
    TableLinkIn,
    TableLinkList,
    TableLinkOut,
)
from ..service import credit, series
from ..service import runs as run_service
from ..service import saved_reports as service
from ..service.errors import FieldError, InvalidInput, NotFound, Unauthorized, Unavailable
from ..store import runs
from ..store import saved_reports as saved
from . import limits, tables
from .context import database, settings, workspace
from .openapi import Blueprint

bp = Blueprint(
    "saved_reports",
    __name__,
    url_prefix="/v1/saved-reports",
    description="Saved reports: run parameters by name, whose tables BI tools refresh.",
)

TABLE_ENDPOINT = "saved_reports.SavedReportTable"
"""Opens with an API key or with a table link's token (see :mod:`api.http.auth`)."""

REPORT_LINKS = {
    "GetSavedReportTable": {
        "operationId": "get_saved_report_table",
        "parameters": {"name": "$response.body#/name"},
        "description": "The report's table, run or from cache.",
    },
    "CreateTableLink": {
        "operationId": "create_table_link",
        "parameters": {"name": "$response.body#/name"},
        "description": "A link to the table that needs no API key.",
    },
}
OPENS_TABLE = {
    "OpenTable": {
        "operationId": "get_saved_report_table",
        "parameters": {"name": "$request.path.name", "token": "$response.body#/token"},
        "description": "Read the table with the link's token alone.",
    }
}


@bp.before_request
def _known_name() -> None:
    """A name no saved report can have names none: 404 before anything reads it."""
    name = (request.view_args or {}).get("name")
    if name is not None and not service.NAME.fullmatch(name):
        raise NotFound(f"no saved report {name!r} in this workspace")


@bp.route("")
class SavedReports(MethodView):
    @bp.response(200, SavedReportList)
    @bp.problems(401)
    def get(self) -> dict[str, Any]:
        """List the workspace's saved reports, by name.

        Each with its parameters as saved, the run that answered it last and the data
        version that run read (null before its first table).
        """
        with database().transaction() as conn:
            found = saved.list_all(conn, workspace().workspace_id)
        return {"saved_reports": [_out(r) for r in found]}

    @bp.arguments(SavedReportIn)
    @bp.response(201, SavedReportOut, headers={"Location": {"schema": {"type": "string"}}})
    @bp.doc(responses={201: {"links": REPORT_LINKS}})
    @bp.problems(400, 401, 409, 413, 415)
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Save run parameters under a name.

        `name` and the body of `POST /v1/attribution`, checked as a run checks it.
        Nothing runs yet: the first `GET /v1/saved-reports/{name}/table` does. Fields
        left out take the workspace defaults at each refresh. 409 when the name is
        taken.
        """
        name = body.pop("name")
        created = service.create(database(), workspace().workspace_id, name, _stored(body))
        return _out(created), {"Location": url_for("saved_reports.SavedReport", name=name)}


@bp.route("/<name>")
class SavedReport(MethodView):
    @bp.response(200, SavedReportOut)
    @bp.problems(401, 404)
    def get(self, name: str) -> dict[str, Any]:
        """Get a saved report: its parameters and the run that answered it last.

        404 for a name the workspace has not saved.
        """
        with database().transaction() as conn:
            return _out(saved.get(conn, workspace().workspace_id, name))

    @bp.arguments(AttributionIn)
    @bp.response(200, SavedReportOut)
    @bp.problems(400, 401, 404, 413, 415)
    def put(self, body: dict[str, Any], name: str) -> dict[str, Any]:
        """Replace a saved report's parameters.

        The body of `POST /v1/attribution` (without `name`). The next table request
        runs the new parameters; the BI views keep the last answer until then.
        """
        return _out(service.replace(database(), workspace().workspace_id, name, _stored(body)))

    @bp.response(204)
    @bp.problems(401, 404)
    def delete(self, name: str) -> None:
        """Delete a saved report and its table links.

        Its runs stay, like every run (`credit_v1`); it leaves `credit_latest_v1` and
        `series_latest_v1`.
        """
        with database().transaction() as conn:
            saved.delete(conn, workspace().workspace_id, name)


@bp.route("/<name>/table")
class SavedReportTable(MethodView):
    @bp.query_arguments(SavedTableQuery)
    @tables.documented(bp, CreditRow)
    @bp.problems(401, 404, 410, 422, 429, 503)
    @bp.doc(security=[{"apiKey": []}, {}])
    def get(self, query: dict[str, Any], name: str) -> Response:
        """Get a saved report's table, run again only when something it depends on changed.

        The run that answered last is served while the workspace's data version,
        the saved parameters and the workspace defaults they rely on are unchanged;
        otherwise the report runs again (the bounds of `POST /v1/attribution`), and
        that run becomes its answer and its rows in `credit_latest_v1`. Two requests
        at once start one run. `Pathcredit-Run` names the run, `Pathcredit-Cache` says
        `hit` or `miss`. Opens with an API key, or with a table link's `token` alone
        (`POST /v1/saved-reports/{name}/links`). The table's columns and formats are
        those of `GET /v1/attribution/runs/{run_id}/table`.
        """

        def served(conn: Any, workspace_id: int, run: dict[str, Any], rows: Rows) -> Rows:
            return credit.served_rows(conn, workspace_id, run["run_id"], run["parameters"], rows)

        return _run_table(query, name, served, credit.COLUMNS, f"saved-{name}")


@bp.route("/<name>/comparison")
class SavedReportComparison(MethodView):
    @bp.query_arguments(SavedTableQuery)
    @tables.documented(bp, ComparisonRow)
    @bp.problems(401, 404, 409, 410, 422, 429, 503)
    @bp.doc(security=[{"apiKey": []}, {}])
    def get(self, query: dict[str, Any], name: str) -> Response:
        """Get a saved report's comparison with last touch, refreshed as its table is.

        The rows of `GET /v1/attribution/runs/{run_id}/comparison` for the run that
        answers the report (run again when something it depends on changed). Opens
        with an API key or with one of the report's table links' `token`.
        """
        out = f"saved-{name}-comparison"
        return _run_table(query, name, credit.comparison, credit.COMPARISON_COLUMNS, out)


@bp.route("/<name>/series")
class SavedReportSeries(MethodView):
    @bp.query_arguments(SavedTableQuery)
    @tables.documented(bp, SeriesRow)
    @bp.problems(401, 404, 410, 422, 429)
    @bp.doc(security=[{"apiKey": []}, {}])
    def get(self, query: dict[str, Any], name: str) -> Response:
        """Get a saved report's daily series: `GET /v1/attribution/series` with the
        report's models, options, selection and campaigns (it needs a date range: 422
        without).

        Computed at each request from the data as it is, so it is always current; each
        answer replaces the report's rows in the BI view `series_latest_v1`. Opens with
        an API key or with one of the report's table links' `token`.
        """
        token = query.pop("token", None)
        workspace_id = _reader(token, name)
        with database().transaction() as conn:
            report = saved.get(conn, workspace_id, name)
        params = AttributionIn().load(report["parameters"])
        if params.get("date_from") is None or params.get("date_to") is None:
            detail = f"A series needs a date range: saved report {name!r} has none."
            raise InvalidInput(detail, [FieldError("/date_from", detail)])
        budget = settings().sync_work_budget
        answer = series.series(database(), workspace_id, params, budget)
        service.record_series(database(), workspace_id, report, answer)
        columns = (*series.COLUMNS, *series.SPEND_COLUMNS)
        response = tables.render(answer.rows, columns, query=query, name=f"saved-{name}-series")
        return tables.with_warnings(response, answer.notes)


@bp.route("/<name>/links")
class TableLinks(MethodView):
    @bp.response(200, TableLinkList)
    @bp.problems(401, 404, 503)
    def get(self, name: str) -> dict[str, Any]:
        """List a saved report's table links, revoked and expired ones included.

        Each with its id, URL, expiry and revocation time; a link's token is in its URL.
        """
        ws = workspace().workspace_id
        links = service.list_links(database(), ws, name, _secret())
        return {"links": [_link_out(name, link) for link in links]}

    @bp.arguments(TableLinkIn)
    @bp.response(201, TableLinkOut)
    @bp.doc(responses={201: {"links": OPENS_TABLE}})
    @bp.problems(400, 401, 404, 413, 415, 503)
    def post(self, body: dict[str, Any], name: str) -> dict[str, Any]:
        """Make a read-only link to a saved report's table.

        Its `url` answers the report's table as CSV without an API key, for
        connectors that cannot send headers (a spreadsheet's `IMPORTDATA`, some
        dashboards): the same refresh as with a key, `GET` only, this report only.
        It works until revoked (`DELETE .../links/{link_id}`), or until `expires_in`
        seconds have passed when given; then it answers 410. Links are signed with
        `PATHCREDIT_SECRET_KEY` (503 when it is unset); changing it revokes every link.
        """
        ws = workspace().workspace_id
        link = service.create_link(database(), ws, name, _secret(), body["expires_in"])
        return _link_out(name, link)


@bp.route("/<name>/links/<uuid:link_id>")
class TableLink(MethodView):
    @bp.response(204)
    @bp.problems(401, 404)
    def delete(self, name: str, link_id: UUID) -> None:
        """Revoke a table link: from now on it answers 410.

        Revoking is final; make a new link to share the table again.
        """
        service.revoke_link(database(), workspace().workspace_id, name, str(link_id))


Rows = list[dict[str, Any]]


def _run_table(
    query: dict[str, Any],
    name: str,
    rows_of: Callable[[Any, int, dict[str, Any], Rows], Rows],
    columns: Sequence[str],
    out: str,
) -> Response:
    """A table of the run that answers report ``name`` (refreshed first), built by
    ``rows_of`` from that run's stored rows, with the run's notes and cache headers."""
    token = query.pop("token", None)
    workspace_id, refreshed = _refreshed(token, name)
    with database().transaction() as conn:
        run = runs.get_run(conn, workspace_id, refreshed.run_id)
        rows = rows_of(conn, workspace_id, run, runs.run_rows(conn, workspace_id, run["run_id"]))
    response = tables.render(rows, columns, query=query, name=out)
    tables.with_warnings(response, run_service.table_notes(run))
    return _answered(response, refreshed, token)


def _refreshed(token: str | None, name: str) -> tuple[int, service.Refreshed]:
    """The workspace the request reads and the run answering its saved report now:
    what every sub-resource of a saved report serves from."""
    workspace_id = _reader(token, name)
    limits = settings()
    refreshed = service.refresh(
        database(),
        workspace_id,
        name,
        timeout=limits.run_timeout_seconds,
        budget=limits.sync_work_budget,
        max_runs=limits.max_runs,
    )
    return workspace_id, refreshed


def _answered(response: Response, refreshed: service.Refreshed, token: str | None) -> Response:
    response.headers["Pathcredit-Run"] = refreshed.run_id
    response.headers["Pathcredit-Cache"] = "hit" if refreshed.hit else "miss"
    if token is not None:  # the URL is a credential: keep it out of Referer headers
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _reader(token: str | None, name: str) -> int:
    """The workspace the request reads: its API key's, or its table token's."""
    if token is None:
        if "workspace" not in g:
            raise Unauthorized(
                "Send an API key as `Authorization: Bearer <key>`, or open a table link "
                "(`POST /v1/saved-reports/{name}/links`): its URL carries a `token`."
            )
        return workspace().workspace_id
    if "workspace" in g:
        detail = "Send an API key or a table link's token, not both."
        raise InvalidInput(detail, [FieldError("/query/token", detail)])
    secret = settings().secret_key
    if not secret:
        raise Unauthorized("Table links are turned off on this server.")
    workspace_id = service.open_link(database(), secret, token, name)
    limits.count(workspace_id)  # a link's reads count against its workspace's budget
    return workspace_id


def _secret() -> str:
    secret = settings().secret_key
    if not secret:
        raise Unavailable("Table links are turned off: set PATHCREDIT_SECRET_KEY.")
    return secret


def _stored(body: dict[str, Any]) -> dict[str, Any]:
    """A loaded run body as JSON, as saved."""
    return AttributionIn().dump(body)  # type: ignore[no-any-return]


def _out(report: dict[str, Any]) -> dict[str, Any]:
    url = url_for(TABLE_ENDPOINT, name=report["name"], _external=True)
    return {**report, "table_url": url}


def _link_out(name: str, link: dict[str, Any]) -> dict[str, Any]:
    url = url_for(TABLE_ENDPOINT, name=name, token=link["token"], format="csv", _external=True)
    return {**link, "url": url}
