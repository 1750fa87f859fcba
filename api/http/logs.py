"""One log line per request, request ids, and the log format of a server process.

:class:`Observed` wraps the WSGI application: it takes the client's ``X-Request-ID``
(or makes one), echoes it on every response, and when the last byte of the answer has
gone writes one line to the ``api.access`` logger and counts the request in
:mod:`api.http.metrics`. The application notes the route (URL rule) and workspace of a
request in its WSGI environ for that line. Query parameters that carry credentials are
redacted; headers are never logged.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_plus

from flask import Flask, Response, g, request
from pythonjsonlogger.json import JsonFormatter
from werkzeug.wsgi import ClosingIterator

from . import metrics

REQUEST_ID_HEADER = "X-Request-ID"
ROUTE = "pathcredit.route"
WORKSPACE = "pathcredit.workspace_id"
REQUEST_ID = "pathcredit.request_id"

_VALID_ID = re.compile(r"[\x21-\x7e]([\x20-\x7e]{0,126}[\x21-\x7e])?")
SECRET_PARAMETERS = frozenset(
    {"token", "key", "api_key", "apikey", "access_token", "password", "secret", "signature"}
)
"""Query parameters whose values are never logged (a report link's ``token``, ...)."""
_API_KEY = re.compile(r"pck_[A-Za-z0-9_\-]+")
REDACTED = "[redacted]"
MAX_LOGGED_PATH = 2048

access = logging.getLogger("api.access")
log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def request_id(given: str | None) -> str:
    """The client's id when it is 1-128 printable ASCII characters, else a new one."""
    if given and _VALID_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def redacted(path: str, query: str = "") -> str:
    """The path and query of a request with credentials replaced by ``[redacted]``."""
    if query:
        parts = []
        for item in query.split("&"):
            name, sep, _ = item.partition("=")
            if sep and unquote_plus(name).strip().lower() in SECRET_PARAMETERS:
                item = f"{name}={REDACTED}"
            parts.append(item)
        path = f"{path}?{'&'.join(parts)}"
    path = _API_KEY.sub(f"pck_{REDACTED}", path)
    return path if len(path) <= MAX_LOGGED_PATH else path[:MAX_LOGGED_PATH] + "..."


def target_of(environ: dict[str, Any]) -> str:
    """What the client asked for, as it sent it, redacted."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        path, _, query = str(raw).partition("#")[0].partition("?")
        return redacted(path, query)
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return redacted(path, environ.get("QUERY_STRING", ""))


def log_request(
    *,
    method: str,
    route: str,
    path: str,
    status: int,
    seconds: float,
    request_id: str,
    remote_addr: str | None,
    workspace_id: int | None = None,
) -> None:
    """Write the request's one line and count it."""
    duration_ms = round(seconds * 1000, 3)
    metrics.request_done(route, method, status, seconds)
    access.info(
        "%s %s %s %.1fms",
        method,
        path,
        status,
        duration_ms,
        extra={
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "workspace_id": workspace_id,
            "request_id": request_id,
            "remote_addr": remote_addr,
        },
    )


class Observed:
    """WSGI middleware: request ids, one log line and the metrics of every request."""

    def __init__(self, app: WSGIApp, on_done: Callable[[], None] = lambda: None) -> None:
        self.app = app
        self.on_done = on_done

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        rid = environ[REQUEST_ID] = request_id(environ.get("HTTP_X_REQUEST_ID"))
        status: list[int] = [500]

        def start(head: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(head.split(" ", 1)[0])
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((REQUEST_ID_HEADER, rid))
            return start_response(head, headers, exc_info)

        def done() -> None:
            try:
                log_request(
                    method=environ.get("REQUEST_METHOD", ""),
                    route=environ.get(ROUTE, metrics.UNMATCHED),
                    path=target_of(environ),
                    status=status[0],
                    seconds=time.perf_counter() - started,
                    request_id=rid,
                    remote_addr=environ.get("REMOTE_ADDR"),
                    workspace_id=environ.get(WORKSPACE),
                )
                self.on_done()
            except Exception:  # a log line must never break the answer
                log.exception("could not log a request")

        try:
            body = self.app(environ, start)
        except BaseException:
            done()
            raise
        return ClosingIterator(body, done)


def note_request(response: Response) -> Response:
    """After a request: its route and workspace, for its log line and metrics."""
    if request.url_rule is not None:
        request.environ[ROUTE] = request.url_rule.rule
    workspace = g.get("workspace")
    if workspace is not None:
        request.environ[WORKSPACE] = workspace.workspace_id
    return response


def register(app: Flask, on_done: Callable[[], None]) -> None:
    app.after_request(note_request)
    app.wsgi_app = Observed(app.wsgi_app, on_done)  # type: ignore[method-assign]


def formatter(log_format: str) -> logging.Formatter:
    """JSON lines (``json``) or plain lines (``text``)."""
    if log_format == "text":
        return logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
    )


def configure(log_format: str, level: str) -> None:
    """Every record of this process to standard error, in one format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
