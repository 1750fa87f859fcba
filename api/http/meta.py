"""Health checks and the spec: routes outside /v1 that need no API key."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from .. import store
from ..problems import ServiceUnavailable
from ..schemas.common import Health, Readiness
from . import openapi

bp = Blueprint("meta", __name__)
health = openapi.Blueprint("health", __name__, description="Health checks (no API key)")


@health.route("/healthz")
@health.response(200, Health)
@health.doc(security=[])
def healthz() -> dict[str, Any]:
    """The process is up.

    Answers without touching the database, for liveness probes; `/readyz` checks the
    database too.
    """
    return {"status": "ok"}


@health.route("/readyz")
@health.response(200, Readiness)
@health.problems(503)
@health.doc(security=[])
def readyz() -> dict[str, Any]:
    """The database answers and every migration has been applied.

    Answers within a second: the check has a connection of its own, waits at most
    0.8 s for it and half a second for its query; a database that is down, unreachable
    or busy gives a 503 problem with `Retry-After`.
    """
    try:
        with current_app.extensions["pathcredit.probe_db"].transaction() as conn:
            waiting = [m.name for m in store.pending(conn)]
    except store.StoreError as e:
        raise ServiceUnavailable(f"The database is not ready: {e}") from e
    if waiting:
        raise ServiceUnavailable(
            f"{len(waiting)} migrations are pending; run `pathcredit migrate`."
        )
    return {"status": "ok", "database": "ok", "pending_migrations": []}


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(openapi.spec_dict(current_app))


@bp.get("/openapi.yaml")
def openapi_yaml() -> Response:
    return Response(openapi.spec_yaml(current_app), mimetype="application/yaml")
