"""pathcredit's HTTP service: the Flask application factory.

Layers: views (``api/journeys.py``, ``api/paths.py``, ...) parse, call the store and
respond; ``api.store`` is the only code that talks SQL; ``attribution`` is the pure
numpy engine. Errors leave as ``application/problem+json`` (``api.errors``).
"""

from __future__ import annotations

import logging
import os

from flask import Flask

from .config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the application. Opening no connection here keeps it safe to call before
    gunicorn forks: each process opens its own pool on first use."""
    from . import (
        attribution,
        auth,
        dictionaries,
        docs,
        errors,
        journeys,
        meta,
        openapi,
        paths,
        report_page,
        reports,
        store,
    )
    from . import settings as settings_views

    settings = settings or Settings.from_env(os.environ)
    if settings.database_url is None:
        raise RuntimeError("DATABASE_URL is not set (`pathcredit serve` starts a database)")
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["pathcredit.settings"] = settings
    app.extensions["pathcredit.db"] = store.Database(
        settings.database_url, max_size=settings.pool_size
    )
    openapi.configure(app)
    api = openapi.Api(app)
    app.extensions["pathcredit.api"] = api
    for bp in (
        journeys.bp,
        paths.bp,
        dictionaries.bp,
        meta.health,
        attribution.bp,
        settings_views.bp,
    ):
        api.register_blueprint(bp)
    api.register_blueprint(reports.bp)
    api.register_blueprint(report_page.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(meta.bp)
    auth.register(app)
    errors.register(app)
    logging.getLogger("api").setLevel(settings.log_level.upper())
    return app
