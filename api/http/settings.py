"""/v1/settings: the workspace's defaults for attribution runs."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from ..schemas.attribution import SettingsIn, SettingsOut
from ..service import runs as run_service
from ..service import spend
from ..store import runs
from .context import database, workspace
from .openapi import Blueprint

bp = Blueprint(
    "settings", __name__, url_prefix="/v1", description="Workspace defaults for attribution runs."
)

BUILT_IN = {**run_service.BUILT_IN_SETTINGS, "currency": spend.DEFAULT_CURRENCY}


@bp.route("/settings")
class Settings(MethodView):
    @bp.response(200, SettingsOut)
    @bp.problems(401)
    def get(self) -> dict[str, Any]:
        """Get the workspace's defaults for attribution runs.

        Every setting is listed; those never set show the built-in default. A run
        request that leaves a field out takes it from here: `models`, each model's
        `options` (merged key by key with the request's), `lookback_days`,
        `channel_groups`, `collapse_repeats` and `confidence`. `currency` is the
        reporting currency of spend, cost per conversion and ROAS (ISO 4217).
        """
        with database().transaction() as conn:
            stored = runs.get_settings(conn, workspace().workspace_id)
        return {**BUILT_IN, **stored}

    @bp.arguments(SettingsIn)
    @bp.response(200, SettingsOut)
    @bp.problems(400, 401, 409, 413, 415)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Replace the workspace's defaults for attribution runs.

        Fields left out go back to the built-in defaults. Options are checked as a
        run would check them. A `lookback_days` default makes every run read raw
        journeys instead of the rollups (see the README on its cost). The reporting
        `currency` cannot change while spend is stored in another (409): delete the
        spend first, or send the currency it is in.
        """
        for model, options in (body.get("options") or {}).items():
            run_service.build_model(model, options, "/options")
        if body.get("confidence") is not None:
            run_service.check_confidence(body["confidence"])
        ws = workspace().workspace_id
        with database().transaction() as conn:
            spend.check_currency_change(conn, ws, body.get("currency", spend.DEFAULT_CURRENCY))
            stored = runs.put_settings(conn, ws, _plain(body))
        return {**BUILT_IN, **stored}


def _plain(body: dict[str, Any]) -> dict[str, Any]:
    """Settings as stored JSON (only what was given)."""
    return {k: v for k, v in body.items()}
