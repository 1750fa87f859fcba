"""Rate limits per API key and per workspace, and the 429 answers of the spec.

Every request under ``/v1`` that an API key opened is counted against four budgets:
its key's and its workspace's, of reads (GET, HEAD) or of writes (everything else),
each a number of requests per fixed window (``PATHCREDIT_KEY_READS`` and the others,
:mod:`api.config`). The counters live in PostgreSQL (:mod:`api.store.limits`), so every
worker process and every machine counts together; counting is one upsert on the
request pool, after authentication.

A request over any budget is refused with 429 problem+json and ``Retry-After`` (the
seconds left in the window). Every counted response, refused or not, carries the
headers of draft-ietf-httpapi-ratelimit-headers (up to draft 07) for the budget closest
to its end: ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``
(seconds until the window ends).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from apispec import APISpec, BasePlugin
from flask import Flask, Response, g, request

from ..problems import TooManyRequests
from ..store import limits as store_limits
from ..store.workspaces import key_prefix
from . import metrics
from .context import database, settings

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
WORKSPACE = "workspace"


@dataclass(frozen=True)
class Standing:
    """Where a request left the budget closest to its end."""

    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        values = (self.limit, self.remaining, self.reset_seconds)
        return dict(zip(HEADERS, map(str, values), strict=True))


def register(app: Flask) -> None:
    """Count requests after authentication (register after :mod:`.auth`)."""
    app.before_request(_count)
    app.after_request(_headers)


def budgets(method: str) -> tuple[str, int, int]:
    """The budget a request of ``method`` counts against: its name, the key's limit and
    the workspace's."""
    s = settings()
    if method in READ_METHODS:
        return "reads", s.key_reads, s.workspace_reads
    return "writes", s.key_writes, s.workspace_writes


def _count() -> None:
    workspace = g.get("workspace")
    if workspace is None or not request.path.startswith("/v1/"):
        return
    count(workspace.workspace_id)


def count(workspace_id: int) -> None:
    """Count the request against its budgets; raise TooManyRequests past one. A view
    opened by a signed link instead of a key calls it once it knows the workspace."""
    budget, per_key, per_workspace = budgets(request.method)
    prefix = _key_prefix()
    limits = {WORKSPACE: per_workspace}
    if prefix is not None:
        limits[f"key:{prefix}"] = per_key
    limits = {subject: limit for subject, limit in limits.items() if limit > 0}
    if not limits:
        return
    window = settings().rate_window_seconds
    with database().transaction() as conn:
        counts = store_limits.count_requests(
            conn, workspace_id, sorted(limits, key=_order), budget, window
        )
    standings = [
        Standing(limit, max(0, limit - counts[s].hits), counts[s].reset_seconds)
        for s, limit in limits.items()
        if s in counts
    ]
    if not standings:
        return
    g.rate_limit = min(standings, key=lambda s: (s.remaining, s.limit))
    over = [(s, limits[s]) for s in limits if s in counts and counts[s].hits > limits[s]]
    if over:
        subject, limit = over[0]
        whose = "This workspace" if subject == WORKSPACE else "This API key"
        reset = max(1, counts[subject].reset_seconds)
        metrics.rate_limited(request.url_rule.rule if request.url_rule else metrics.UNMATCHED)
        raise TooManyRequests(
            f"{whose} has made its {limit} {budget} of the last {window} s "
            f"window; try again in {reset} s.",
            retry_after=reset,
        )


def _key_prefix() -> str | None:
    """The prefix of the key that opened the request: sent as a bearer token, or as
    the user name of Basic credentials (where a route takes them)."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    key = credentials.strip()
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(key, validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
    return key_prefix(key.strip())


def _order(subject: str) -> int:
    # The workspace's row first in every request: see the query.
    return 0 if subject == WORKSPACE else 1


def _headers(response: Response) -> Response:
    standing: Standing | None = g.get("rate_limit")
    if standing is not None:
        response.headers.update(standing.headers())
    return response


# ---------------------------------------------------------------------- spec
RATE_LIMITED = "RATE_LIMITED"
"""The spec's response component of a 429."""


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "integer", "minimum": 0}}


class RateLimitedResponses(BasePlugin):
    """Documents the 429 of every operation under ``/v1`` (where keys are counted)."""

    def init_spec(self, spec: APISpec) -> None:
        self.spec = spec

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not path or not path.startswith("/v1/") or not operations:
            return
        for operation in operations.values():
            operation.setdefault("responses", {})["429"] = RATE_LIMITED


def document(spec: APISpec) -> None:
    """Add the 429 response component and the plugin that refers to it (before the
    blueprints are registered)."""
    spec.components.response(
        RATE_LIMITED,
        {
            "description": (
                "A rate limit of the API key or the workspace, or the workspace's limit "
                "on runs under way, is reached."
            ),
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
            "headers": {
                "Retry-After": _header("Seconds until a request may succeed."),
                "RateLimit-Limit": _header("Requests of the nearest budget per window."),
                "RateLimit-Remaining": _header("Requests left of it in this window."),
                "RateLimit-Reset": _header("Seconds until the window ends."),
            },
        },
    )
    plugin = RateLimitedResponses()
    plugin.init_spec(spec)
    spec.plugins = (*spec.plugins, plugin)
