"""/v1/paths: totals of paths that clients aggregated themselves."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from . import store
from .context import database, settings, workspace
from .errors import FieldError, InvalidInput
from .journeys import counts
from .openapi import Blueprint
from .schemas import PathBatchIn, WriteResult

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
        paths = body["paths"]
        limit = settings().max_batch
        if not paths or len(paths) > limit:
            raise InvalidInput(
                f"A batch holds 1 to {limit} paths.",
                [FieldError("/paths", f"Length must be between 1 and {limit}.")],
            )
        with database().transaction() as conn:
            coder = store.Coder(conn, workspace().workspace_id)
            rows = _code(coder, paths)
            coder.save()
            return counts(store.write_paths(conn, workspace().workspace_id, rows))


def _code(coder: store.Coder, paths: list[dict[str, Any]]) -> list[store.PathRow]:
    rows: list[store.PathRow] = []
    errors: list[FieldError] = []
    seen: dict[tuple[Any, ...], int] = {}
    for i, p in enumerate(paths):
        stage_codes = []
        for k, name in enumerate(p["stages"] or [None] * len(p["path"])):
            code = 0 if name is None else coder.stages.get(name)
            if code is None:
                errors.append(FieldError(f"/paths/{i}/stages/{k}", f"Unknown stage {name!r}."))
            stage_codes.append(code or 0)
        key = (p["date"], tuple(p["path"]), tuple(stage_codes))
        if seen.setdefault(key, i) != i:
            errors.append(
                FieldError(f"/paths/{i}", f"Same date, path and stages as path {seen[key]}.")
            )
        rows.append(
            store.PathRow(
                day=p["date"],
                channels=[coder.channel_code(c) for c in p["path"]],
                stages=stage_codes,
                conversions=p["conversions"],
                nulls=p["nulls"],
                value=p["value"],
            )
        )
    if errors:
        bad = len({e.pointer.split("/")[2] for e in errors})
        raise InvalidInput(f"{bad} of {len(paths)} paths are invalid; nothing was written.", errors)
    return rows
