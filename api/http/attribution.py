"""/v1/attribution: attribution runs, their tidy tables and per-journey credit.

Views parse, call the run service (:mod:`api.service.runs`) or the store, and respond;
the run service owns the engine calls and the time limit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from flask import Response, request, url_for
from flask.views import MethodView

from ..schemas.attribution import (
    AttributionIn,
    AttributionQuery,
    ComparisonRow,
    CreditRow,
    JourneyCreditQuery,
    JourneyCreditRow,
    RunList,
    RunListQuery,
    RunOut,
    RunSummary,
    SeriesQuery,
    SeriesRow,
)
from ..schemas.tables import TableQuery
from ..schemas.validation import ValidateIn, ValidationOut
from ..service import credit, export, heartbeat, series, validation
from ..service import runs as run_service
from ..service.errors import Conflict, FieldError, InvalidInput
from ..service.tables import CSV_TYPE, NDJSON_TYPE
from ..store import runs
from . import cursors, tables
from .context import database, settings, workspace
from .openapi import Blueprint

bp = Blueprint(
    "attribution",
    __name__,
    url_prefix="/v1/attribution",
    description="Attribution runs: models over a data selection, stored with their tables.",
)

NOTE_HEADER = "Pathcredit-Note"


def _run_links(pointer: str) -> dict[str, Any]:
    """Links from a response that holds a run (its id at ``pointer``) to the run's
    follow-up calls; a link's model is the run's first."""
    run_id = f"$response.body#{pointer}/run_id"
    return {
        "GetRun": {
            "operationId": "get_run",
            "parameters": {"run_id": run_id},
            "description": "Poll the run.",
        },
        "GetRunTable": {
            "operationId": "get_run_table",
            "parameters": {"run_id": run_id},
            "description": "The run's tidy table, as JSON or CSV.",
        },
        "GetRunComparison": {
            "operationId": "get_run_comparison",
            "parameters": {"run_id": run_id},
            "description": "Each model's credit per channel beside last touch's.",
        },
        "GetRunJourneys": {
            "operationId": "get_run_journeys",
            "parameters": {
                "run_id": run_id,
                "model": f"$response.body#{pointer}/parameters/models/0",
            },
            "description": "The run's credit per journey, for its first model.",
        },
    }


RUN_LINKS = _run_links("")


@bp.route("")
class Attribution(MethodView):
    @bp.arguments(AttributionIn)
    @bp.response(200, RunOut)
    @bp.doc(responses={200: {"links": RUN_LINKS}})
    @bp.problems(400, 401, 413, 415, 503)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Run attribution models and return the run with its table.

        Credits conversions and value of the selected data with each model named in
        `models`, with their options under `options` (e.g.
        `"options": {"markov": {"order": 2}}`, the shape the run echoes and
        `/v1/settings` and the table URL take; options under the model's own name at the
        top level are still read, but not both in one request).
        Fields left out take the workspace defaults (`GET /v1/settings`). The run is
        stored; it must finish within the service's time limit
        (`PATHCREDIT_RUN_TIMEOUT_SECONDS`), else the answer is a 503 problem: start
        long runs with `POST /v1/attribution/runs` instead. Work is estimated first
        (unique paths of the selection, models, bootstrap replicates, and the
        coalitions of Shapley's players); a run over the synchronous budget
        (`PATHCREDIT_SYNC_WORK_BUDGET`) is refused with 422: start it in the
        background, which has no such bound. A workspace with `PATHCREDIT_MAX_RUNS`
        runs unfinished gets 429 with `Retry-After`.
        """
        plan = run_service.plan_run(body, _defaults())
        ws = workspace().workspace_id
        timeout = settings().run_timeout_seconds
        run_id = run_service.run_sync(database(), ws, plan, timeout, **_run_limits())
        return _run_out(run_id, with_table=True)


@bp.route("/validate")
class Validate(MethodView):
    @bp.arguments(ValidateIn)
    @bp.response(200, ValidationOut)
    @bp.problems(400, 401, 413, 415)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Score the models that predict conversion on held-out journeys.

        Deals the selected journeys to `n_folds` folds (seeded; a journey is never in
        two folds), fits each model on the other folds and scores its conversion
        probability for the journeys held out: Markov chains of each order in
        `orders` and the data-driven model, by log-loss, Brier score and ROC AUC,
        each pooled over every held-out journey with an interval across folds.
        Models that only share out credit are listed under `not_scored` with the
        reason. `markov` with `order: "auto"` picks the order with the lowest
        log-loss here (same folds and seed). The selection is read as a run reads
        it. Runs in the request: a selection whose unique paths times folds exceed
        2,500,000 is refused with 422.
        """
        plan = validation.plan_validation(body, _defaults())
        return validation.run_validation(database(), workspace().workspace_id, plan)


@bp.route("/runs")
class Runs(MethodView):
    @bp.arguments(RunListQuery, location="query")
    @bp.response(200, RunList)
    @bp.doc(responses={200: {"links": _run_links("/runs/0")}})
    @bp.problems(401)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List attribution runs, newest first.

        Pages hold `limit` runs (tables left out); pass `next_cursor` as `cursor`
        for the next page.
        """
        after = _decode_cursor(query.get("cursor"))
        with database().transaction() as conn:
            heartbeat.sweep(conn, workspace().workspace_id)
            found = runs.list_runs(
                conn, workspace().workspace_id, limit=query["limit"] + 1, after=after
            )
        page = found[: query["limit"]]
        more = len(found) > query["limit"]
        return {
            "runs": [_summary(r) for r in page],
            "next_cursor": _encode_cursor(page[-1]) if more else None,
        }

    @bp.arguments(AttributionIn)
    @bp.response(202, RunSummary, headers={"Location": {"schema": {"type": "string"}}})
    @bp.doc(responses={202: {"links": RUN_LINKS}})
    @bp.problems(400, 401, 413, 415)
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Start an attribution run in the background.

        Takes the same body as `POST /v1/attribution` and answers at once with the
        queued run and its `Location`; poll it for `status` (queued, running,
        succeeded, failed) and `progress` (models done of total). The run is a job
        of the service's queue, executed by a worker process with no time limit;
        one that loses its worker or the database is tried again (back to queued),
        and a failed run says why in `error`. A workspace with `PATHCREDIT_MAX_RUNS`
        runs queued or running gets 429 with `Retry-After`.
        """
        plan = run_service.plan_run(body, _defaults())
        ws = workspace().workspace_id
        run_id = run_service.run_async(database(), ws, plan, max_runs=settings().max_runs)
        location = url_for("attribution.Run", run_id=UUID(run_id))
        return _run_out(run_id, with_table=False), {"Location": location}


@bp.route("/runs/<uuid:run_id>")
class Run(MethodView):
    @bp.response(200, RunOut)
    @bp.doc(responses={200: {"links": {k: v for k, v in RUN_LINKS.items() if k != "GetRun"}}})
    @bp.problems(401, 404)
    def get(self, run_id: UUID) -> dict[str, Any]:
        """Get an attribution run: status, progress, parameters, totals and table.

        `table` is null until the run has succeeded; a failed run carries the
        problem that stopped it in `error`.
        """
        return _run_out(str(run_id), with_table=True)


@bp.route("/runs/<uuid:run_id>/table")
class RunTable(MethodView):
    @bp.arguments(TableQuery, location="query")
    @tables.documented(bp, CreditRow)
    @bp.problems(401, 404, 409)
    def get(self, query: dict[str, Any], run_id: UUID) -> Response:
        """Get a run's tidy table as JSON or CSV.

        One row per model x dimension (`channel`, `stage`, `channel_stage`) x key,
        columns in a fixed order: run_id, date_from, date_to (the run's), model,
        dimension, channel, stage, conversions, value, share, removal_effect, ci_low,
        ci_high, spend, cost_per_conversion, roas, currency. Spend is read with the
        table, over the run's dates (all dates when it has none), so spend sent after
        the run shows; channel rows carry it, stage rows do not, and a channel with
        spend that no journey touched gets a row per model with no credit and ROAS 0.
        `?format=csv` or `Accept: text/csv` gives RFC 4180 CSV with a header row.
        """
        run, rows = _succeeded_run(str(run_id))
        response = tables.render(rows, credit.COLUMNS, query=query, name=f"attribution-{run_id}")
        return tables.with_warnings(response, run_service.table_notes(run))


@bp.route("/runs/<uuid:run_id>/comparison")
class RunComparison(MethodView):
    @bp.arguments(TableQuery, location="query")
    @tables.documented(bp, ComparisonRow)
    @bp.problems(401, 404, 409)
    def get(self, query: dict[str, Any], run_id: UUID) -> Response:
        """Compare each model's credit per channel with last touch's, as JSON or CSV.

        One row per model (last touch left out) x channel row of the run's table:
        the model's conversions and value, last touch's, and the differences (model
        minus last touch), so a positive `conversions_diff` is credit last touch
        does not give. A channel last touch does not credit compares with 0. A run
        without last touch among its models has it computed on the run's selection
        when its data has not changed since (else 409: run it with last_touch).
        """
        ws = workspace().workspace_id
        with database().transaction() as conn:
            run = runs.get_run(conn, ws, str(run_id))
            _check_succeeded(run)
            rows = credit.comparison(conn, ws, run, runs.run_rows(conn, ws, str(run_id)))
        name = f"comparison-{run_id}"
        response = tables.render(rows, credit.COMPARISON_COLUMNS, query=query, name=name)
        return tables.with_warnings(response, run_service.table_notes(run))


@bp.route("/series")
class Series(MethodView):
    @bp.arguments(SeriesQuery, location="query")
    @tables.documented(bp, SeriesRow)
    @bp.problems(401, 422)
    def get(self, query: dict[str, Any]) -> Response:
        """Get a daily series of attribution credit as JSON or CSV.

        One row per day x model x channel over `date_from` to `date_to` (days in the
        workspace time zone). Each model is fitted once over the whole range, on the
        paths a table run over that range reads; each path's share of the table lands
        on the days its journeys converted, so a channel's days add up to the range's
        table. With `campaigns` (as in `POST /v1/attribution`), the models credit
        channel x campaign pairs and each day also has a `campaign` row per pair of
        the range's table, its `channel` rows being their sums. Spend, cost per
        conversion and ROAS are those of the day (of the day's campaign, on campaign
        rows). 422 for a range of more than 1096 days, or models over the synchronous
        work budget (`PATHCREDIT_SYNC_WORK_BUDGET`).
        """
        budget = settings().sync_work_budget
        answer = series.series(database(), workspace().workspace_id, query, budget)
        columns = (*series.COLUMNS, *series.SPEND_COLUMNS)
        response = tables.render(answer.rows, columns, query=query, name="series")
        return tables.with_warnings(response, answer.notes)


@bp.route("/table")
class Table(MethodView):
    @bp.arguments(AttributionQuery, location="query")
    @tables.documented(bp, CreditRow)
    @bp.problems(401, 503)
    def get(self, query: dict[str, Any]) -> Response:
        """Get an attribution table for query parameters, from cache when possible.

        The same parameters as `POST /v1/attribution`, as query parameters (objects
        JSON-encoded). Identical parameters on unchanged data reuse the stored run;
        any write to the workspace's journeys, paths or stages makes the next request
        run again. The `Pathcredit-Run` header names the run, `Pathcredit-Cache`
        says `hit` or `miss`. A refreshable URL for BI tools. A run that must be
        computed has the synchronous bounds of `POST /v1/attribution`. Rows have the
        columns of the run table, spend read at each request (a cache hit shows
        today's spend).
        """
        ws = workspace().workspace_id
        # one transaction: this is the hot path of BI refreshes
        with database().transaction() as conn:
            defaults = runs.get_settings(conn, ws)
            plan = run_service.plan_run(query, defaults, run_service.QUERY_POINTERS)
            cached = runs.cached_table(conn, ws, plan.parameters_hash())
            if cached is not None:
                served = credit.served_rows(
                    conn, ws, cached[0], plan.parameters(), cached[1], defaults
                )
                cached = cached[0], served
        if cached is None:
            run_id = run_service.run_sync(
                database(),
                ws,
                plan,
                settings().run_timeout_seconds,
                run_service.QUERY_POINTERS,
                **_run_limits(),
            )
            with database().transaction() as conn:
                rows = runs.run_rows(conn, ws, run_id)
                cached = run_id, credit.served_rows(conn, ws, run_id, plan.parameters(), rows)
            hit = "miss"
        else:
            hit = "hit"
        with database().transaction() as conn:
            notes = run_service.table_notes(runs.get_run(conn, ws, cached[0]))
        response = tables.render(cached[1], credit.COLUMNS, query=query, name="attribution")
        tables.with_warnings(response, notes)
        response.headers["Pathcredit-Run"] = cached[0]
        response.headers["Pathcredit-Cache"] = hit
        return response


@bp.route("/runs/<uuid:run_id>/journeys")
class RunJourneys(MethodView):
    @bp.arguments(JourneyCreditQuery, location="query")
    @bp.response(200, JourneyCreditRow(many=True), content_type=NDJSON_TYPE)
    @bp.alt_response(
        200,
        schema={"type": "string", "description": "RFC 4180 CSV with a header row"},
        content_type=CSV_TYPE,
        success=True,
    )
    @bp.problems(401, 404, 409)
    def get(self, query: dict[str, Any], run_id: UUID) -> Response:
        """Stream a run's credit per journey and channel, as CSV or NDJSON.

        One row per converted journey x channel x stage: journey_id, channel, stage,
        conversions, value. Each journey gets its path's split (the model's
        per-touch split of the path) scaled by its share of the path: one over the
        path's conversions, and its value over the path's value, so a journey's rows
        add up to its conversion and value. For split models (heuristics, Shapley
        simple and ordered) the journeys' rows also add up to the channel table; Markov
        and Shapley credit is not a sum of path splits. Only for runs whose
        data has not changed since (else 409). A run over client-aggregated paths
        alone has no journeys: the answer is empty, with a `Pathcredit-Note` header.
        CSV unless `?format=ndjson` or `Accept: application/x-ndjson`.
        """
        run = _get_run(str(run_id))
        if run["status"] != "succeeded":
            raise Conflict(f"Run {run_id} is {run['status']}; it has no credit yet.")
        model = query.get("model") or run["parameters"]["models"][0]
        if model not in run["parameters"]["models"]:
            detail = f"model={model!r} is not one of this run's models."
            raise InvalidInput(detail, [FieldError("/query/model", detail)])
        rows, note = export.journey_credit(database(), workspace().workspace_id, run, model)
        ndjson = _wants_ndjson(query)
        response = tables.stream(rows, export.COLUMNS, ndjson=ndjson, name=f"journeys-{run_id}")
        if note:
            response.headers[NOTE_HEADER] = note
        return response


# ---------------------------------------------------------------------- helpers
def _run_limits() -> dict[str, Any]:
    return {"budget": settings().sync_work_budget, "max_runs": settings().max_runs}


def _defaults() -> dict[str, Any]:
    with database().transaction() as conn:
        return runs.get_settings(conn, workspace().workspace_id)


def _get_run(run_id: str) -> dict[str, Any]:
    with database().transaction() as conn:
        return runs.get_run(conn, workspace().workspace_id, run_id)


def _succeeded_run(run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A succeeded run and its table as served (spend read now)."""
    ws = workspace().workspace_id
    with database().transaction() as conn:
        heartbeat.sweep(conn, ws)
        run = runs.get_run(conn, ws, run_id)
        _check_succeeded(run)
        rows = runs.run_rows(conn, ws, run_id)
        return run, credit.served_rows(conn, ws, run_id, run["parameters"], rows)


def _check_succeeded(run: dict[str, Any]) -> None:
    if run["status"] != "succeeded":
        raise Conflict(f"Run {run['run_id']} is {run['status']}; its table is not ready.")


def _run_out(run_id: str, *, with_table: bool) -> dict[str, Any]:
    ws = workspace().workspace_id
    with database().transaction() as conn:
        heartbeat.sweep(conn, ws)
        run = runs.get_run(conn, ws, run_id)
        table = None
        if with_table and run["status"] == "succeeded":
            rows = runs.run_rows(conn, ws, run_id)
            table = credit.served_rows(conn, ws, run_id, run["parameters"], rows)
    return {**_summary(run), "table": table}


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in run.items() if k not in ("models_done", "models_total")}
    out["progress"] = {"done": run["models_done"], "total": run["models_total"]}
    return out


def _encode_cursor(run: dict[str, Any]) -> str:
    return cursors.encode(run["created_at"], str(run["run_id"]))


def _decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    key = cursors.decode(cursor)
    if key is None:
        return None
    try:
        return key[0], str(UUID(key[1]))
    except ValueError:
        raise cursors.bad_cursor() from None


def _wants_ndjson(query: dict[str, Any]) -> bool:
    chosen = query.get("format")
    if chosen:
        return bool(chosen == "ndjson")
    best = request.accept_mimetypes.best_match([CSV_TYPE, NDJSON_TYPE])
    return best == NDJSON_TYPE
