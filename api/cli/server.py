"""Serving with gunicorn from inside ``pathcredit serve``.

The application is built in each worker after the fork (``preload_app`` off), so no
database connection crosses a fork. Workers inherit the BLAS pin of
:mod:`api.cli` through the environment, before numpy loads in them.

Each server gets a temporary directory of its own, removed when it stops: the
workers' metric files (prometheus-client's multiprocess mode) and gunicorn's control
socket live there, so two servers on one machine never share either.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import ThreadWorker

from ..config import Settings
from ..problems import PROBLEM_TYPE, of_status

LIMIT_REQUEST_LINE = 8190
"""Longest request line (method, target, version) in bytes: gunicorn's most. A
``GET /v1/attribution/table`` with ``channel_groups`` for 120 channels is about 6 KB."""
LIMIT_REQUEST_FIELDS = 100
LIMIT_REQUEST_FIELD_SIZE = 8190
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# What the HTTP server answers, by itself, to a request it cannot read.
_REJECTIONS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int, str], ...] = (
    (
        http_errors.LimitRequestLine,
        414,
        f"The request line is longer than {LIMIT_REQUEST_LINE} bytes.",
    ),
    (
        http_errors.LimitRequestHeaders,
        431,
        f"The request has more than {LIMIT_REQUEST_FIELDS} header fields, or one longer "
        f"than {LIMIT_REQUEST_FIELD_SIZE} bytes.",
    ),
    (
        (http_errors.InvalidRequestLine, http_errors.InvalidProxyLine),
        400,
        "The request line is malformed.",
    ),
    (http_errors.InvalidRequestMethod, 400, "The request method is malformed."),
    (http_errors.InvalidHTTPVersion, 400, "The HTTP version is not supported."),
    (
        (http_errors.InvalidHeader, http_errors.InvalidHeaderName, http_errors.ObsoleteFolding),
        400,
        "A header field is malformed.",
    ),
    (
        (
            http_errors.InvalidChunkSize,
            http_errors.ChunkMissingTerminator,
            http_errors.InvalidChunkExtension,
        ),
        400,
        "The chunked request body is malformed.",
    ),
    (
        (http_errors.InvalidSchemeHeaders, http_errors.InvalidH2CPreface),
        400,
        "The request could not be read.",
    ),
    (http_errors.ExpectationFailed, 417, "The expectation in `Expect` cannot be met."),
    (
        http_errors.UnsupportedTransferCoding,
        501,
        "The request's transfer coding is not supported.",
    ),
    (http_errors.ForbiddenProxyRequest, 403, "Requests from this proxy are not accepted."),
)


def rejection(exc: BaseException) -> tuple[int, str] | None:
    """Status and detail of a request the server refuses itself; None for its own faults."""
    for kinds, status, detail in _REJECTIONS:
        if isinstance(exc, kinds):
            return status, detail
    return None


def problem_bytes(status: int, detail: str, request_id: str) -> bytes:
    """A whole HTTP/1.1 response carrying the problem, closing the connection."""
    problem = of_status(status, detail)
    body = json.dumps(problem.body()).encode()
    head = [
        f"HTTP/1.1 {status} {problem.title}",
        "Connection: close",
        f"Content-Type: {PROBLEM_TYPE}",
        f"Content-Length: {len(body)}",
        "X-Content-Type-Options: nosniff",
        f"X-Request-ID: {request_id}",
        *(f"{k}: {v}" for k, v in problem.headers.items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class Worker(ThreadWorker):
    """gunicorn's threaded worker, answering what it refuses as problem+json and
    stopping at once on Ctrl-C."""

    _quitting = False

    def handle_quit(self, sig: int, frame: Any) -> None:
        # Ctrl-C sends SIGINT to every process of the terminal's group and the arbiter
        # then sends its workers SIGQUIT: the second handler ran inside the first one's
        # thread pool shutdown and waited forever on the lock the first held, until the
        # arbiter killed the worker after graceful_timeout.
        if self._quitting:
            return
        self._quitting = True
        super().handle_quit(sig, frame)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        from ..http import logs, metrics

        found = rejection(exc)
        if found is None:
            self.log.exception("Error handling request", exc_info=exc)
            status, detail = 500, "An unexpected error occurred; it has been logged."
        else:
            status, detail = found
        headers = dict(getattr(req, "headers", None) or ())
        rid = logs.request_id(headers.get("X-REQUEST-ID"))
        logs.log_request(
            method=getattr(req, "method", None) or "-",
            route=metrics.REJECTED,
            path=logs.redacted(getattr(req, "path", None) or "-", getattr(req, "query", "")),
            status=status,
            seconds=0.0,
            request_id=rid,
            remote_addr=(addr or ("",))[0] or None,
        )
        try:
            util.write_nonblock(client, problem_bytes(status, detail, rid))
        except Exception:
            self.log.debug("Failed to send error message.")


class JsonLogger(Logger):
    """gunicorn's own messages in the format of every other line (the root handler's).
    Its access log stays off: the application writes one line per request."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        root = logging.getLogger().handlers
        if root and root[0].formatter is not None:
            for handler in self.error_log.handlers:
                handler.setFormatter(root[0].formatter)


def child_exit(server: Any, worker: Any) -> None:
    """A worker's metric files stop counting towards live gauges when it exits."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


class Server(BaseApplication):
    def __init__(self, settings: Settings, run_dir: Path) -> None:
        self.settings = settings
        self.run_dir = run_dir
        super().__init__()

    def load_config(self) -> None:
        options = {
            "bind": f"{self.settings.host}:{self.settings.port}",
            "workers": self.settings.workers,
            "worker_class": Worker,
            "threads": self.settings.pool_size,
            # Bulk uploads of millions of journeys take longer than the default 30 s.
            "timeout": 900,
            "graceful_timeout": 10,
            "preload_app": False,
            "accesslog": None,
            "logger_class": JsonLogger,
            "loglevel": self.settings.log_level.lower(),
            "proc_name": "pathcredit",
            "limit_request_line": LIMIT_REQUEST_LINE,
            "limit_request_fields": LIMIT_REQUEST_FIELDS,
            "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
            "control_socket": str(self.run_dir / "gunicorn.ctl"),
            "child_exit": child_exit,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from ..app import create_app

        return create_app(self.settings)


@contextmanager
def run_directory() -> Iterator[Path]:
    """A private temporary directory for one server, named in PROMETHEUS_MULTIPROC_DIR
    for the workers it forks, removed with its contents when the server stops."""
    path = Path(tempfile.mkdtemp(prefix="pathcredit-"))
    metrics_dir = path / "metrics"
    metrics_dir.mkdir()
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = str(metrics_dir)
    owner = os.getpid()
    try:
        yield path
    finally:
        # A worker leaves through here too (gunicorn forks inside run()): only the
        # process that made the directory removes it.
        if os.getpid() == owner:
            if previous is None:
                os.environ.pop(MULTIPROC_ENV, None)
            else:
                os.environ[MULTIPROC_ENV] = previous
            shutil.rmtree(path, ignore_errors=True)


KEY_FILE = "default_api_key"


def show_new_key(workspace: str, key: str, data_dir: Path) -> None:
    """Hand over a workspace's first API key without writing it into a log.

    On a terminal it is printed there, once. Otherwise standard output is likely
    captured with the logs, so the key goes to ``<data_dir>/default_api_key`` (mode
    0600) and only that path is printed.
    """
    if sys.stdout.isatty():
        print(f"Created workspace {workspace!r}. Its API key (shown once):\n{key}", flush=True)
        return
    path = data_dir / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    print(
        f"Created workspace {workspace!r}. Its API key is in {path} (readable by its owner "
        "only): keep it elsewhere and delete the file.",
        file=sys.stderr,
        flush=True,
    )


def serve(settings: Settings) -> None:
    with run_directory() as run_dir:
        # prometheus-client picks its multiprocess mode when first imported: only now.
        from ..http import logs

        logs.configure(settings.log_format, settings.log_level)
        Server(settings, run_dir).run()
