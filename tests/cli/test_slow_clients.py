"""Slow clients against a real server (2 workers x 4 threads): connections trickling
their heads, or large bodies, one byte a second hold no thread that other requests
need, and are answered 408 when their time is up."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.cli.test_serve import Served, served

pytestmark = pytest.mark.slow
THREADS = 2 * 4  # workers x threads of `serve --workers 2` with the default pool size
N = 2 * THREADS


def timed(server: Served, target: str, headers: dict[str, str] | None = None) -> float:
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, (target, response.status)
    finally:
        conn.close()
    return time.monotonic() - start


@contextmanager
def tricklers(server: Served, first: bytes, rest: bytes) -> Iterator[list[bytes]]:
    """N connections that send ``first`` at once, then ``rest`` one byte a second; the
    list fills with what each was answered."""
    answers: list[bytes] = []
    stop = threading.Event()

    def trickle(sock: socket.socket) -> None:
        try:
            sock.sendall(first)
            for i in range(len(rest)):
                if stop.wait(1.0):
                    return
                sock.sendall(rest[i : i + 1])
        except OSError:  # the server closed it: read its answer
            pass
        finally:
            try:
                sock.settimeout(2)
                answers.append(sock.recv(65536))
            except OSError:
                answers.append(b"")

    with ExitStack() as stack:
        threads = []
        for _ in range(N):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
            threads.append(threading.Thread(target=trickle, args=(sock,), daemon=True))
        for t in threads:
            t.start()
        time.sleep(1.5)  # every trickler has started sending
        try:
            yield answers
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=5)


def keep_answering(server: Served, key: str, seconds: float) -> list[float]:
    """Times of /readyz and an authenticated request, again and again."""
    times = []
    auth = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        times.append(timed(server, "/readyz"))
        times.append(timed(server, "/v1/channels", auth))
        time.sleep(0.2)
    return times


def test_trickling_clients_do_not_hold_the_workers(database_url: str, tmp_path: Path) -> None:
    with served(database_url, tmp_path) as server:
        key = (server.data_dir / "default_api_key").read_text().strip()
        # heads, a byte a second: no thread until the head is whole
        with tricklers(server, b"G", b"ET /v1/channels HTTP/1.1\r\nHost: x\r\n\r\n") as answers:
            times = keep_answering(server, key, 6)
        assert max(times) < 1.0, times
        # large bodies on the bulk route, a byte a second: one thread per worker at most
        # reads them, the others wait without one
        head = (
            "POST /v1/journeys/bulk HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/x-ndjson\r\n"
            "Content-Length: 1000000\r\n\r\n"
        ).encode()
        with tricklers(server, head, b"{" * 60) as answers:
            times = keep_answering(server, key, 12)
        assert max(times) < 1.0, times
        # each was answered when its time was up, unless it was still being read: 408
        # (too slow, in a thread) or 503 (waited too long for one); a reset connection
        # may lose its answer
        statuses = [a.split(b" ", 2)[1] for a in answers if a]
        assert len(answers) == N
        assert len(statuses) >= N // 2, answers
        assert set(statuses) == {b"408", b"503"}, answers
        assert all(b"application/problem+json" in a for a in answers if a)


def test_a_head_that_stalls_gets_408(database_url: str, tmp_path: Path) -> None:
    with served(database_url, tmp_path) as server:
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
            sock.sendall(b"GET /v1/channels HTTP/1.1\r\nHost:")
            answer = sock.recv(65536)
        assert 9 <= time.monotonic() - start < 13  # PATHCREDIT_HEAD_TIMEOUT_SECONDS
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"application/problem+json" in answer
        # pipelined and keep-alive requests are still served
        last = b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"
        answers = server.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2 + last)
        assert answers.count(b"HTTP/1.1 200 ") == 3
