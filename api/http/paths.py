"""/v1/paths: totals of paths that clients aggregated themselves."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from ..schemas.journeys import PathBatchIn, WriteResult
from ..service import paths
from .context import database, settings, workspace
from .openapi import Blueprint

bp = Blueprint("paths", __name__, url_prefix="/v1", description="Aggregated paths")


@bp.route("/paths")
class Paths(MethodView):
    @bp.arguments(PathBatchIn)
    @bp.response(200, WriteResult)
    @bp.problems(400, 401, 413, 415)
    def post(self, body: dict[str, Any]) -> dict[str, int]:
        """Store already-aggregated paths.

        Each path's totals (conversions, nulls, value) are set for its key: the date
        (optional), the channel path and the stage path (optional; one stage per
        channel). Sending a key again replaces its totals. Aggregated paths feed the
        same reads as ingested journeys; those without a date count only when no date
        range is asked for.
        """
        ws = workspace().workspace_id
        return paths.write_paths(database(), ws, body["paths"], settings().max_batch)
