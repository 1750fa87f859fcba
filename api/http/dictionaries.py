"""/v1/channels and /v1/stages: the workspace's dictionaries and funnel order."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Response
from flask.views import MethodView

from .. import store
from ..schemas.dictionaries import ChannelRow, StageRow, StagesIn
from ..schemas.tables import TableQuery
from . import tables
from .context import database, workspace
from .openapi import Blueprint

bp = Blueprint("dictionaries", __name__, url_prefix="/v1", description="Channels and stages")

CHANNEL_COLUMNS = ("code", "name", "created_at")
STAGE_COLUMNS = ("position", "code", "name")


@bp.route("/channels")
class Channels(MethodView):
    @bp.arguments(TableQuery, location="query")
    @tables.documented(bp, ChannelRow)
    @bp.problems(401)
    def get(self, query: dict[str, Any]) -> Response:
        """List the channels seen so far, with their codes.

        Channels are created by the journeys and paths that name them; a code never
        changes once given. JSON or CSV (`format`).
        """
        with database().transaction() as conn:
            rows = [asdict(c) for c in store.list_channels(conn, workspace().workspace_id)]
        return tables.render(rows, CHANNEL_COLUMNS, query=query, name="channels")


@bp.route("/stages")
class Stages(MethodView):
    @bp.arguments(TableQuery, location="query")
    @tables.documented(bp, StageRow)
    @bp.problems(401)
    def get(self, query: dict[str, Any]) -> Response:
        """List the funnel stages in order.

        The workspace's funnel, first stage first, with each stage's code. JSON or CSV
        (`format`). `PUT /v1/stages` sets it.
        """
        with database().transaction() as conn:
            rows = [asdict(s) for s in store.list_stages(conn, workspace().workspace_id)]
        return tables.render(rows, STAGE_COLUMNS, query=query, name="stages")

    @bp.arguments(StagesIn)
    @bp.arguments(TableQuery, location="query")
    @tables.documented(bp, StageRow)
    @bp.problems(400, 401, 409, 413, 415)
    def put(self, body: dict[str, Any], query: dict[str, Any]) -> Response:
        """Set the funnel: stage names in order.

        An entry with a `code` renames that stage; an entry without one keeps the stage
        of that name, or adds a new stage. A stage left out is removed, unless stored
        journeys or paths still carry it (409).
        """
        wanted = [(s["name"], s["code"]) for s in body["stages"]]
        with database().transaction() as conn:
            stages = store.replace_stages(conn, workspace().workspace_id, wanted)
        return tables.render([asdict(s) for s in stages], STAGE_COLUMNS, query=query, name="stages")
