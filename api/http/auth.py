"""Bearer API key -> workspace, before every request that needs one."""

from __future__ import annotations

import base64
import binascii

from flask import Flask, g, request

from .. import store
from ..problems import Unauthorized
from .context import database

# Health checks, the spec and the docs page answer without a key.
PUBLIC_ENDPOINTS = frozenset(
    {
        "health.healthz",
        "health.readyz",
        "metrics.metrics",
        "meta.openapi_json",
        "meta.openapi_yaml",
        "docs.page",
        "docs.slash",
        "docs.asset",
    }
)
# The HTML report and saved reports' tables also open from a signed link: without a
# key, their views check the link.
KEY_OR_LINK_ENDPOINTS = frozenset(
    {
        "report.Report",
        "saved_reports.SavedReportTable",
        "saved_reports.SavedReportComparison",
        "saved_reports.SavedReportSeries",
    }
)
# Event pipelines send the key as an HTTP Basic user name with an empty password
# (Segment's write-key convention).
BASIC_ENDPOINTS = frozenset({"events.Events"})


def register(app: Flask) -> None:
    app.before_request(_authenticate)


def _authenticate() -> None:
    # Unknown URLs have no endpoint: let routing answer 404/405 without a key.
    if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
        return
    if _opens_with_a_link(request.endpoint) and "Authorization" not in request.headers:
        return
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() == "basic" and request.endpoint in BASIC_ENDPOINTS:
        key = _basic_user(key)
        scheme = "bearer"
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    with database().transaction() as conn:
        workspace = store.authenticate(conn, key)
    if workspace is None:
        raise Unauthorized("The API key is not valid or has been revoked.")
    g.workspace = workspace


def _basic_user(credentials: str) -> str:
    """The user name of HTTP Basic credentials ('' when they are not readable)."""
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[0].strip()


def _opens_with_a_link(endpoint: str | None) -> bool:
    """An endpoint (or its CSV twin) that a signed link opens without a key."""
    return endpoint is not None and endpoint.removesuffix("Csv") in KEY_OR_LINK_ENDPOINTS
