"""The application factory: the only place that wires the HTTP layer together."""

from __future__ import annotations

import logging
import os

from flask import Flask, Response, request

from . import store
from .config import Settings
from .html import docs, report
from .http import (
    attribution,
    auth,
    dictionaries,
    errors,
    events,
    journeys,
    limits,
    logs,
    meta,
    metrics,
    openapi,
    paths,
    reports,
    saved_reports,
    spend,
)
from .http import settings as settings_views
from .store import probes


def _security_headers(response: Response) -> Response:
    """On every response: no content sniffing, no framing; nothing an API key or a
    signed link opened is kept in shared caches (pages and assets that are the same
    for everyone set their own caching)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if "Cache-Control" not in response.headers and request.path.startswith("/v1/"):
        response.headers["Cache-Control"] = "private, no-store"
    return response


def create_app(settings: Settings | None = None) -> Flask:
    """Build the application. Opening no connection here keeps it safe to call before
    gunicorn forks: each process opens its own pool on first use."""
    settings = settings or Settings.from_env(os.environ)
    if settings.database_url is None:
        raise RuntimeError("DATABASE_URL is not set (`pathcredit serve` starts a database)")
    app = Flask(__name__, template_folder="html/templates")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["pathcredit.settings"] = settings
    db = app.extensions["pathcredit.db"] = store.Database(
        settings.database_url, max_size=settings.pool_size
    )
    app.extensions["pathcredit.probe_db"] = probes.probe_database(settings.database_url)
    openapi.configure(app)
    api = openapi.Api(app)
    app.extensions["pathcredit.api"] = api
    limits.document(api.spec)
    for bp in (
        journeys.bp,
        paths.bp,
        dictionaries.bp,
        meta.health,
        attribution.bp,
        settings_views.bp,
        spend.bp,
    ):
        api.register_blueprint(bp)
    api.register_blueprint(reports.bp)
    api.register_blueprint(saved_reports.bp)
    api.register_blueprint(events.bp)
    api.register_blueprint(report.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(meta.bp)
    metrics.register(app, api)
    auth.register(app)
    limits.register(app)  # counts what auth let through
    errors.register(app)
    app.after_request(_security_headers)
    # Outermost: the request id, the one log line and the metrics of every request.
    logs.register(app, on_done=lambda: metrics.sample_pool(db))
    logging.getLogger("api").setLevel(settings.log_level.upper())
    return app
