"""``pathcredit serve`` as a real gunicorn server in a subprocess: metrics summed over
its workers, its log lines, the requests gunicorn refuses, stopping."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
TOKEN = "served-metrics-token"


@dataclass
class Served:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    data_dir: Path

    def request(
        self, method: str, target: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, target, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def raw(self, data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def lines(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                found.append(json.loads(line))
        return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(database_url: str, tmp_path: Path, name: str = "a") -> Iterator[Served]:
    port = free_port()
    data_dir = tmp_path / name
    data_dir.mkdir()
    log = tmp_path / f"{name}.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PATHCREDIT_DATA_DIR": str(data_dir),
        "PATHCREDIT_METRICS_TOKEN": TOKEN,
        "PATHCREDIT_LOG_FORMAT": "json",
        "PATHCREDIT_LOG_LEVEL": "INFO",
    }
    argv = [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", "2"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*argv, "--job-workers", "0"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, as under a terminal
        )
    server = Served(port, proc, log, data_dir)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if server.request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def control_socket(server: Served) -> Path:
    for line in server.lines():
        if line.get("message", "").startswith("Control socket listening at "):
            return Path(line["message"].rsplit(" ", 1)[1])
    raise AssertionError(server.log.read_text())


def scrape(server: Served) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, _, body = server.request("GET", "/metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_metrics_logs_and_refusals_of_a_served_instance(database_url: str, tmp_path: Path) -> None:
    with served(database_url, tmp_path) as server:
        key = (server.data_dir / "default_api_key").read_text().strip()
        assert (server.data_dir / "default_api_key").stat().st_mode & 0o777 == 0o600
        for _ in range(30):  # new connections, spread over both workers
            server.request("GET", "/healthz")
        healthz = ("pathcredit_http_requests_total",
                   (("method", "GET"), ("route", "/healthz"), ("status", "200")))  # fmt: skip
        # Whichever worker answers, a scrape sums both.
        counts = {scrape(server)[healthz] for _ in range(6)}
        assert counts == {31.0}, counts

        status, headers, _ = server.request(
            "GET", "/report?token=eyJsecret.sig", {"X-Request-ID": "served-1"}
        )
        assert headers["X-Request-ID"] == "served-1"
        status, _, _ = server.request("GET", "/v1/channels", {"Authorization": f"Bearer {key}"})
        assert status == 200

        # A long selection in a URL is served (here refused for its missing key, by us).
        groups = json.dumps({f"channel_number_{i:03d}": f"group_{i % 7}" for i in range(120)})
        target = "/v1/attribution/table?models=markov&channel_groups=" + _quote(groups)
        assert 5500 < len(target) < 8190
        status, headers, _ = server.request("GET", target)
        assert status == 401 and headers["Content-Type"] == "application/problem+json"

        too_long = server.raw(f"GET /{'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert_raw_problem(too_long, 414)
        assert_raw_problem(server.raw(b"NOT A REQUEST LINE\r\n\r\n"), 400)
        many = "".join(f"X-H{i}: v\r\n" for i in range(150))
        assert_raw_problem(server.raw(f"GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode()), 431)
        time.sleep(0.5)
        lines = server.lines()

    requests = [line for line in lines if line.get("logger") == "api.access"]
    mine = [line for line in requests if line["request_id"] == "served-1"]
    assert len(mine) == 1
    assert mine[0]["path"] == "/report?token=[redacted]"
    assert {"method", "route", "path", "status", "duration_ms", "workspace_id",
            "request_id", "remote_addr", "time"} <= set(mine[0])  # fmt: skip
    assert [line["status"] for line in requests if line["route"] == "<rejected>"] == [
        414,
        400,
        431,
    ]
    everything = server.log.read_text()
    assert key not in everything and "eyJsecret" not in everything


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def assert_raw_problem(response: bytes, status: int) -> None:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), lines
    assert "Content-Type: application/problem+json" in lines
    problem = json.loads(body)
    assert problem["status"] == status and problem["type"].startswith("/problems/")


def test_two_servers_stop_independently(database_url: str, tmp_path: Path) -> None:
    with served(database_url, tmp_path, "first") as first:
        first_socket = control_socket(first)
        with served(database_url, tmp_path, "second") as second:
            second_socket = control_socket(second)
            assert first_socket != second_socket
            second.proc.terminate()
            assert second.proc.wait(timeout=20) == 0
        assert not second_socket.parent.exists()  # its directory went with it
        assert first_socket.exists()
        assert first.request("GET", "/healthz")[0] == 200
        first.proc.terminate()
        assert first.proc.wait(timeout=20) == 0
    assert not first_socket.parent.exists()


def test_ctrl_c_stops_at_once_with_idle_connections(database_url: str, tmp_path: Path) -> None:
    with served(database_url, tmp_path) as server:
        idle = []
        for _ in range(4):  # kept-alive connections on both workers
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.recv(65536)
            idle.append(sock)
        started = time.monotonic()
        os.killpg(server.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        server.proc.wait(timeout=15)
        took = time.monotonic() - started
        for sock in idle:
            sock.close()
    assert took < 3, took
    assert "SIGKILL" not in server.log.read_text()
