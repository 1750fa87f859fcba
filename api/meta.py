"""Health checks and the spec: routes outside /v1 that need no API key."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from . import store
from .context import database
from .errors import ServiceUnavailable
from .openapi import spec_dict, spec_yaml

bp = Blueprint("meta", __name__)

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pathcredit API</title></head>
<body><h1>pathcredit API</h1>
<p>The OpenAPI description: <a href="/openapi.yaml">openapi.yaml</a>,
<a href="/openapi.json">openapi.json</a>.</p></body></html>
"""


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    """The database answers and every migration has been applied."""
    try:
        with database().transaction() as conn:
            waiting = [m.name for m in store.pending(conn)]
    except store.StoreError as e:
        raise ServiceUnavailable(f"The database is not ready: {e}") from e
    if waiting:
        raise ServiceUnavailable(
            f"{len(waiting)} migrations are pending; run `pathcredit migrate`."
        )
    return jsonify(status="ok", database="ok", pending_migrations=[])


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(spec_dict(current_app))


@bp.get("/openapi.yaml")
def openapi_yaml() -> Response:
    return Response(spec_yaml(current_app), mimetype="application/yaml")


@bp.get("/docs")
def docs() -> Response:
    return Response(DOCS_PAGE, mimetype="text/html")
