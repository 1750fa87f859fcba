"""Per-application objects views reach through the app: settings, database, workspace."""

from __future__ import annotations

from flask import current_app, g

from .. import store
from ..config import Settings


def settings() -> Settings:
    return current_app.extensions["pathcredit.settings"]  # type: ignore[no-any-return]


def database() -> store.Database:
    return current_app.extensions["pathcredit.db"]  # type: ignore[no-any-return]


def workspace() -> store.Workspace:
    """The workspace the request's API key belongs to (set by api.http.auth)."""
    return g.workspace  # type: ignore[no-any-return]
