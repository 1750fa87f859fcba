"""/v1/settings: the workspace's defaults for attribution runs, and its time zone."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

from flask.views import MethodView

from ..schemas.attribution import SettingsIn, SettingsOut, TimeZoneChangeOut
from ..service import runs as run_service
from ..service import zones
from ..store import runs
from .context import database, settings, workspace
from .openapi import Blueprint

bp = Blueprint(
    "settings", __name__, url_prefix="/v1", description="Workspace defaults for attribution runs."
)

BUILT_IN = run_service.BUILT_IN_SETTINGS


@bp.route("/settings")
class Settings(MethodView):
    @bp.response(200, SettingsOut)
    @bp.problems(401)
    def get(self) -> dict[str, Any]:
        """Get the workspace's defaults for attribution runs.

        Every setting is listed; those never set show the built-in default. A run
        request that leaves a field out takes it from here: `models`, each model's
        `options` (merged key by key with the request's), `lookback_days`,
        `channel_groups`, `collapse_repeats` and `confidence`. `time_zone` is the
        zone every day is counted in; `time_zone_change` a change of it under way.
        """
        ws = workspace().workspace_id
        with database().transaction() as conn:
            stored = runs.get_settings(conn, ws)
            return _out(conn, ws, stored)

    @bp.arguments(SettingsIn)
    @bp.response(200, SettingsOut)
    @bp.problems(400, 401, 413, 415, 422)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Replace the workspace's defaults for attribution runs.

        Fields left out go back to the built-in defaults (`time_zone` to `UTC`).
        Options are checked as a run would check them. A `lookback_days` default makes
        every run read raw journeys instead of the rollups (see the README on its
        cost). A new `time_zone` re-buckets the stored journeys: within this request
        for a small workspace, else as a job shown in `time_zone_change` (422 for a
        name outside the IANA database, or while another change is under way).
        """
        for model, options in (body.get("options") or {}).items():
            run_service.build_model(model, options, "/options")
        if body.get("confidence") is not None:
            run_service.check_confidence(body["confidence"])
        zone = body.pop("time_zone", zones.DEFAULT_ZONE)
        ws = workspace().workspace_id
        with database().transaction() as conn:
            zones.change_zone(conn, ws, zone, settings().rebucket_inline_journeys)
            stored = runs.put_settings(conn, ws, body)
            return _out(conn, ws, stored)


def _out(conn: Any, workspace_id: int, stored: dict[str, Any]) -> dict[str, Any]:
    change = zones.open_change(conn, workspace_id)
    return {
        **BUILT_IN,
        **stored,
        "time_zone": zones.zone_of(conn, workspace_id),
        "time_zone_change": None if change is None else dataclasses.asdict(change),
    }


@bp.route("/settings/time-zone-changes/<uuid:change_id>")
class TimeZoneChange(MethodView):
    @bp.response(200, TimeZoneChangeOut)
    @bp.problems(401, 404)
    def get(self, change_id: UUID) -> dict[str, Any]:
        """Get a change of the workspace's time zone.

        A large workspace's change runs as a job: `queued`, then `running` with
        `journeys_done` of `journeys_total` re-bucketed, then `succeeded` (the zone is
        in effect) or `failed` (the zone stays as it was; `error` says why). Writes of
        the workspace wait while it runs.
        """
        change = zones.get_change(database(), workspace().workspace_id, change_id)
        return dataclasses.asdict(change)
