"""Serving with gunicorn from inside ``pathcredit serve``.

The application is built in each worker after the fork (``preload_app`` off), so no
database connection crosses a fork. Workers inherit the BLAS pin of
:mod:`api.cli` through the environment, before numpy loads in them.

Each server gets a temporary directory of its own, removed when it stops: the
workers' metric files (prometheus-client's multiprocess mode) and gunicorn's control
socket live there, so two servers on one machine never share either.

Slow clients do not hold threads: each worker reads request heads, and bodies of at
most 64 KiB, in its main loop, without a thread, until they are whole or their time is
up (408); only then does a thread take the request. Larger bodies are read by a thread,
at most ``threads - 1`` of them at once per worker (others wait in the main loop, then
503), with an idle timeout and a minimum average rate (408).
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import shutil
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from gunicorn.http import errors as http_errors
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import TConn, ThreadWorker

from ..config import Settings
from ..problems import PROBLEM_TYPE, RequestTimeout, of_status
from ..service.tables import json_text

LIMIT_REQUEST_LINE = 8190
"""Longest request line (method, target, version) in bytes: gunicorn's most. A
``GET /v1/attribution/table`` with ``channel_groups`` for 120 channels is about 6 KB."""
LIMIT_REQUEST_FIELDS = 100
LIMIT_REQUEST_FIELD_SIZE = 8190
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
HEAD_BUFFER = 64 * 1024
"""The most of a request head read without a thread: a longer one is refused, 414 when
no line has ended yet (the request line), else 431."""
SMALL_BODY = 64 * 1024
"""Bodies up to this size are read in the main loop with the head; larger ones, and
chunked ones, by a thread."""
STREAMED = -1
LINGER_SECONDS = 2.0
LINGER_BYTES = 65536

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
    if isinstance(exc, RequestTimeout):
        return exc.status, exc.detail
    for kinds, status, detail in _REJECTIONS:
        if isinstance(exc, kinds):
            return status, detail
    return None


@dataclass(frozen=True)
class ReadLimits:
    """How long a client may take to send its request (see the module's docstring)."""

    head_seconds: float = 10.0
    body_idle_seconds: float = 10.0
    body_min_rate: int = 4096
    streams: int = 1
    """Threads of one worker that may read large bodies at once."""

    @classmethod
    def of(cls, settings: Settings) -> ReadLimits:
        return cls(
            head_seconds=settings.head_timeout_seconds,
            body_idle_seconds=settings.body_idle_seconds,
            body_min_rate=settings.body_min_rate,
            streams=max(1, settings.pool_size - 1),
        )


def body_length(head: bytes) -> int | None:
    """The length of the body a request head announces: None for none, STREAMED for a
    chunked body or one whose sender waits for ``100 Continue``. A malformed length is
    left to gunicorn's parser, which refuses it."""
    length: int | None = None
    for line in head.split(b"\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return STREAMED
        if name == b"expect" and value.strip().lower() == b"100-continue":
            return STREAMED
        if name == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return None
    return length


def head_end(buffer: bytes | bytearray) -> int:
    """Where a request head ends in ``buffer`` (after its blank line), or -1."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := buffer.find(sep)) >= 0]
    return min(ends) if ends else -1


class PacedUnreader(SocketUnreader):
    """A connection's reads in a thread: none may wait longer than the idle timeout,
    and a body must keep up the minimum average rate once it has taken that long."""

    def __init__(self, sock: socket.socket, limits: ReadLimits) -> None:
        super().__init__(sock)
        self.limits = limits
        self.failed = False
        self.start()

    def start(self) -> None:
        """A request begins: its reads are timed from now."""
        self.started = time.monotonic()
        self.received = 0

    def chunk(self, size_hint: int | None = None) -> bytes:
        limits = self.limits
        self.sock.settimeout(limits.body_idle_seconds)
        try:
            data: bytes = super().chunk(size_hint)
        except TimeoutError:
            self.failed = True
            raise RequestTimeout(
                f"No bytes of the request arrived for {limits.body_idle_seconds:g} s."
            ) from None
        self.received += len(data)
        elapsed = time.monotonic() - self.started
        if elapsed > limits.body_idle_seconds and self.received < limits.body_min_rate * elapsed:
            self.failed = True
            raise RequestTimeout(
                f"The request body arrived at {self.received / elapsed:.0f} bytes/s, slower "
                f"than the least this server accepts ({limits.body_min_rate} bytes/s)."
            )
        return data


def problem_bytes(status: int, detail: str, request_id: str) -> bytes:
    """A whole HTTP/1.1 response carrying the problem, closing the connection."""
    problem = of_status(status, detail)
    body = json_text(problem.body()).encode()
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


class Conn(TConn):
    """A connection whose graceful close lingers in its worker's main loop, not in a
    blocking read there (gunicorn's waits up to 2 s for a client that keeps sending)."""

    def __init__(self, worker: Worker, *args: Any) -> None:
        super().__init__(*args)
        self.worker = worker

    def close(self, graceful: bool = False) -> None:
        if graceful:
            self.worker.linger(self.sock)
        else:
            super().close()


class Worker(ThreadWorker):
    """gunicorn's threaded worker, answering what it refuses as problem+json,
    stopping at once on Ctrl-C, and reading requests without giving a thread to a
    client that sends them slowly (see the module's docstring)."""

    _quitting = False
    read_limits = ReadLimits()

    def init_process(self) -> None:
        self._reading: dict[TConn, float] = {}  # connection -> deadline
        self._waiting: deque[tuple[TConn, float]] = deque()  # large bodies, by arrival
        self._streams = 0
        self._lingering: dict[Any, tuple[float, int]] = {}  # socket -> deadline, drained
        super().init_process()

    # -- the main loop: heads and small bodies ------------------------------
    def accept(self, listener: Any) -> None:
        if self.cfg.is_ssl:  # the handshake needs a thread: gunicorn's own way
            super().accept(listener)
            return
        try:
            client, addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._read_head(Conn(self, self.cfg, client, addr, listener.getsockname()))

    def on_client_socket_readable(self, conn: TConn, client: Any) -> None:
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_head(conn)

    def _read_head(self, conn: TConn) -> None:
        conn.sock.setblocking(False)
        conn.pc_buffer = bytearray()
        conn.pc_need = None
        self._reading[conn] = time.monotonic() + self.read_limits.head_seconds
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_bytes, conn))
        self._on_bytes(conn, conn.sock)

    def _on_bytes(self, conn: TConn, client: Any) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._stop_reading(conn)
            self._close(conn)
            return
        conn.pc_buffer += data
        self._advance(conn)

    def _advance(self, conn: TConn) -> None:
        buffer = conn.pc_buffer
        if conn.pc_need is None:
            end = head_end(buffer)
            if end < 0:
                if len(buffer) > HEAD_BUFFER:
                    self._stop_reading(conn)
                    status = 431 if b"\n" in buffer else 414
                    self._refuse(
                        conn, status, f"The request head is longer than {HEAD_BUFFER} bytes."
                    )
                return
            length = body_length(bytes(buffer[:end]))
            if length is not None and (length == STREAMED or length > SMALL_BODY):
                self._stop_reading(conn)
                self._waiting.append((conn, time.monotonic() + self.read_limits.head_seconds))
                self._admit()
                return
            conn.pc_need = end + (length or 0)
        if len(buffer) >= conn.pc_need:
            self._stop_reading(conn)
            self._dispatch(conn, streamed=False)

    def _stop_reading(self, conn: TConn) -> None:
        self._reading.pop(conn, None)
        with suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _admit(self) -> None:
        """Hand waiting large bodies to threads while fewer than the most read one."""
        while self._waiting and self._streams < self.read_limits.streams:
            conn, _ = self._waiting.popleft()
            self._streams += 1
            self._dispatch(conn, streamed=True)

    def _dispatch(self, conn: TConn, *, streamed: bool) -> None:
        conn.pc_head = bytes(conn.pc_buffer)
        conn.pc_buffer = None
        conn.pc_streamed = streamed
        self.enqueue_req(conn)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn, deadline in list(self._reading.items()):
            if deadline <= now:
                self._stop_reading(conn)
                if conn.pc_buffer:
                    detail = (
                        f"The request did not arrive within {self.read_limits.head_seconds:g} s."
                    )
                    self._refuse(conn, 408, detail)
                else:  # an idle connection: nothing to answer
                    self._close(conn)
        for sock, (deadline, _) in list(self._lingering.items()):
            if deadline <= now:
                self._end_linger(sock)
        while self._waiting and self._waiting[0][1] <= now:
            conn, _ = self._waiting.popleft()
            detail = "The server is reading as many large request bodies as it can; try again."
            self._refuse(conn, 503, detail)

    def _cap_keepalive(self, deadline: float) -> None:
        super()._cap_keepalive(deadline)
        for conn, own in self._reading.items():
            self._reading[conn] = min(own, deadline)

    def _refuse(self, conn: TConn, status: int, detail: str) -> None:
        from ..http import logs, metrics

        head = bytes(conn.pc_buffer or b"").split(b"\n", 1)[0].decode("latin-1").split(" ")
        method, target = ([*head, "-", "-"])[:2]
        path, _, query = target.partition("?")
        rid = logs.request_id(None)
        logs.log_request(
            method=method[:16] or "-",
            route=metrics.REJECTED,
            path=logs.redacted(path[:256] or "-", query[:256]),
            status=status,
            seconds=0.0,
            request_id=rid,
            remote_addr=(conn.client or ("",))[0] or None,
        )
        try:
            util.write_nonblock(conn.sock, problem_bytes(status, detail, rid))
        except Exception:
            self.log.debug("Failed to send error message.")
        self._close(conn, graceful=True)

    def _close(self, conn: TConn, *, graceful: bool = False) -> None:
        self.nr_conns -= 1
        conn.close(graceful=graceful)

    def linger(self, sock: Any) -> None:
        """Close after the answer: send FIN, then read and drop what the client still
        sends, until it closes, 64 KiB or 2 s, so that no reset cuts the answer short."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            self.poller.register(sock, selectors.EVENT_READ, self._on_linger)
        except (OSError, ValueError, KeyError):
            util.close(sock)
            return
        self._lingering[sock] = (time.monotonic() + LINGER_SECONDS, 0)

    def _on_linger(self, sock: Any) -> None:
        try:
            data = sock.recv(LINGER_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        deadline, drained = self._lingering[sock]
        drained += len(data)
        if data and drained < LINGER_BYTES:
            self._lingering[sock] = (deadline, drained)
            return
        self._end_linger(sock)

    def _end_linger(self, sock: Any) -> None:
        self._lingering.pop(sock, None)
        with suppress(KeyError, ValueError, OSError):
            self.poller.unregister(sock)
        util.close(sock)

    # -- the threads ---------------------------------------------------------
    def handle(self, conn: TConn) -> Any:
        head = getattr(conn, "pc_head", None)
        if head is not None:
            conn.pc_head = None
            conn.sock.setblocking(True)
            conn.init()
            unreader = conn.parser.unreader
            if not isinstance(unreader, PacedUnreader):
                paced = PacedUnreader(conn.sock, self.read_limits)
                paced.unread(unreader.take_buffered())
                conn.parser.unreader = unreader = paced
            unreader.start()
            unreader.unread(head)
        return super().handle(conn)

    def handle_request(self, req: Any, conn: TConn) -> bool:
        if getattr(conn, "pc_streamed", False):
            # Its body may be left unread (a refusal): close rather than drain it.
            req.must_close = True
        keep = bool(super().handle_request(req, conn))
        unreader = getattr(conn.parser, "unreader", None)
        return keep and not getattr(unreader, "failed", False)

    def finish_request(self, conn: TConn, fs: Any) -> None:
        if getattr(conn, "pc_streamed", False):
            conn.pc_streamed = False
            self._streams -= 1
        super().finish_request(conn, fs)
        self._admit()

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
            "worker_class": type(
                "Worker", (Worker,), {"read_limits": ReadLimits.of(self.settings)}
            ),
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
    0600) and only that path is printed. The file is written under another name and
    renamed into place: whoever waits for it never reads it empty or cut short.
    """
    if sys.stdout.isatty():
        print(f"Created workspace {workspace!r}. Its API key (shown once):\n{key}", flush=True)
        return
    path = data_dir / KEY_FILE
    write_private(path, f"{key}\n")
    print(
        f"Created workspace {workspace!r}. Its API key is in {path} (readable by its owner "
        "only): keep it elsewhere and delete the file.",
        file=sys.stderr,
        flush=True,
    )


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (mode 0600), whole or not at all: the text
    goes to a new file beside it, which is renamed over ``path`` once on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(draft, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(draft)
        raise


def serve(settings: Settings) -> None:
    with run_directory() as run_dir:
        # prometheus-client picks its multiprocess mode when first imported: only now.
        from ..http import logs

        logs.configure(settings.log_format, settings.log_level)
        Server(settings, run_dir).run()
