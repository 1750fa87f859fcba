"""PostgreSQL stopped abruptly under concurrent writers, then started again.

A served instance on a PostgreSQL of its own takes small batches from several client
threads and NDJSON uploads from one more, while the test stops its database
(``pg_ctl stop -m immediate``, or SIGKILL to the postmaster) and starts it again.
Every journey the server acknowledged must be there afterwards, every write it did not
acknowledge wholly there or wholly absent, and the rollups exact; while the database
is down the API answers 503 problem+json with ``Retry-After``, promptly; once it is
back, the same server processes serve again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from api import store
from api.cli.worker import RESTART_SECONDS
from tests.faults.conftest import (
    ROOT,
    Clients,
    Postgres,
    Response,
    Served,
    assert_rollups_exact,
    served,
    stored_ids,
    until,
    workspace_id,
)
from tests.helpers import journey, ndjson, touch

pytestmark = pytest.mark.slow

BATCH = 5
UPLOAD = 2000
BATCH_CLIENTS = 4
OUTAGE_SECONDS = 5.0
PROMPT_SECONDS = 3.0  # a request during the outage is answered within this
WRITE_SECONDS = 5.0  # a write cut off by the outage fails within this
CHANNELS = ["paid_search", "email", "social_ads", "direct", "referral", "display"]


def journeys(prefix: str, n: int) -> list[dict[str, Any]]:
    """``n`` journeys with ids ``prefix-0`` ...; paths and outcomes vary with the index."""
    out = []
    for i in range(n):
        first, last = CHANNELS[i % 6], CHANNELS[(i // 6) % 6]
        converted = i % 3 == 0
        out.append(
            journey(
                f"{prefix}-{i}",
                customer_id=f"c{i % 50}",
                touchpoints=[
                    touch(first, f"2024-03-{1 + i % 28:02d}T10:00:00Z", "awareness"),
                    touch(last, f"2024-03-{1 + i % 28:02d}T18:00:00Z", "decision"),
                ],
                converted=converted,
                value=float(i % 7) if converted else None,
                converted_at=None,
            )
        )
        if not converted:
            del out[-1]["value"]
    return out


@dataclass
class Outcomes:
    """What the clients were told, per write (its ids) and per failed request."""

    acknowledged: set[str] = field(default_factory=set)
    unacknowledged: list[list[str]] = field(default_factory=list)
    failures: list[tuple[str, Response | str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, ids: list[str], response: Response | str) -> None:
        with self.lock:
            if isinstance(response, Response) and response.status == 200:
                self.acknowledged.update(ids)
                return
            self.unacknowledged.append(ids)
            self.failures.append((kind, response))


def write(server: Served, outcomes: Outcomes, kind: str, ids: list[str], send: Any) -> None:
    try:
        response: Response | str = send()
    except OSError as e:  # the server itself never goes away: this is a finding
        response = f"{type(e).__name__}: {e}"
    outcomes.record(kind, ids, response)


def batch_client(server: Served, outcomes: Outcomes) -> Any:
    def work(number: int, stop: threading.Event) -> None:
        sent = 0
        while not stop.is_set():
            records = journeys(f"b{number}x{sent}", BATCH)
            sent += 1
            ids = [r["journey_id"] for r in records]
            body = {"journeys": records}
            write(
                server,
                outcomes,
                "batch",
                ids,
                partial(server.request, "POST", "/v1/journeys", body),
            )
            time.sleep(0.05)

    return work


def bulk_client(server: Served, outcomes: Outcomes) -> Any:
    def work(number: int, stop: threading.Event) -> None:
        sent = 0
        headers = {"Content-Type": "application/x-ndjson"}
        while not stop.is_set():
            records = journeys(f"u{sent}", UPLOAD)
            sent += 1
            ids = [r["journey_id"] for r in records]
            body = ndjson(*records)
            send = partial(server.request, "POST", "/v1/journeys/bulk", body, headers)
            write(server, outcomes, "bulk", ids, send)

    return work


def assert_unavailable(response: Response) -> None:
    """A 503 problem that says when to retry, answered promptly."""
    assert response.status == 503, (response.status, response.body)
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 503 and problem["type"].startswith("/problems/")
    assert int(response.headers["Retry-After"]) > 0
    assert response.seconds < PROMPT_SECONDS, response.seconds


@pytest.mark.parametrize("fault", ["immediate", "sigkill"])
def test_acknowledged_journeys_survive_an_abrupt_database_stop(
    private_postgres: Postgres, tmp_path: Path, fault: str
) -> None:
    outcomes = Outcomes()
    with served(private_postgres.url, tmp_path, job_workers=1) as server:
        web_workers = server.web_workers()
        bulk, batch = bulk_client(server, outcomes), batch_client(server, outcomes)
        clients = Clients(1 + BATCH_CLIENTS, lambda n, stop: (batch if n else bulk)(n, stop))
        try:
            until(lambda: len(outcomes.acknowledged) > UPLOAD + 50, 60, "writes before the fault")
            if fault == "immediate":
                private_postgres.stop_immediately()
            else:
                private_postgres.kill()
            down = time.monotonic()
            while time.monotonic() - down < OUTAGE_SECONDS:
                assert_unavailable(server.request("GET", "/readyz", headers={}))
                assert_unavailable(
                    server.request("POST", "/v1/journeys", {"journeys": journeys("probe", 1)})
                )
                assert_unavailable(server.request("GET", "/v1/journeys/b0x0-0"))
                time.sleep(0.5)
            private_postgres.start()

            def writes_again() -> bool:
                response = server.request(
                    "POST", "/v1/journeys", {"journeys": journeys("after", 3)}
                )
                return response.status == 200

            until(writes_again, 30, "a write to succeed after the restart")
            outcomes.acknowledged.update(f"after-{i}" for i in range(3))
            seen = len(outcomes.acknowledged)
            until(lambda: len(outcomes.acknowledged) > seen + 50, 30, "writes after the restart")
        finally:
            clients.stop()
        # the same processes serve: nothing was restarted to recover
        assert server.proc.poll() is None
        assert server.web_workers() == web_workers

        # a background run: the job worker found the database again too. A web worker
        # that has not served since the restart may still answer its first request
        # with 503 and Retry-After (its pool finds the server again): retried, as a
        # client does; anything else fails.
        def started() -> Any:
            run = server.request("POST", "/v1/attribution/runs", {"models": ["last_touch"]})
            assert run.status in (202, 503), run.body
            return run if run.status == 202 else None

        run = until(started, 30, "a background run to be accepted after the restart")
        run_url = run.headers["Location"]
        # the job worker restarts itself after losing the database (5 s apart); on a
        # loaded machine that and the queue's polling can take a while
        try:
            done = until(
                lambda: (
                    (r := server.request("GET", run_url).json())["status"]
                    in ("succeeded", "failed")
                    and r
                ),
                120,
                "the background run",
            )
        except AssertionError as e:
            tail = server.log.read_text()[-4000:]
            raise AssertionError(f"{e}; the server's log ends:\n{tail}") from None
        assert done["status"] == "succeeded", done

    failures = outcomes.failures
    assert failures, "no write met the outage"
    for kind, response in failures:
        assert isinstance(response, Response), (kind, response)
        assert response.status == 503, (kind, response.status, response.body)
        assert response.headers["Content-Type"] == "application/problem+json"
        assert "Retry-After" in response.headers
        assert response.seconds < WRITE_SECONDS, (kind, response.seconds)

    url = private_postgres.url
    workspace = workspace_id(url)
    stored = stored_ids(url, workspace)
    assert outcomes.acknowledged <= stored, len(outcomes.acknowledged - stored)
    for ids in outcomes.unacknowledged:  # nothing half-written
        present = stored.intersection(ids)
        assert not present or len(present) == len(ids), (ids[0], len(present), len(ids))
    assert_rollups_exact(url, workspace)


def test_a_pool_idle_through_a_long_outage_serves_as_soon_as_the_database_is_back(
    private_postgres: Postgres,
) -> None:
    """psycopg_pool's own reconnection backs off exponentially (1, 2, 4, 8, 16 s ...):
    after an outage of some 20 s its next attempt can be 16 s away. The first request
    after the restart must not wait for it."""
    db = store.Database(private_postgres.url, max_size=2)
    try:
        with db.transaction() as conn:
            conn.execute("SELECT 1")
        private_postgres.stop_immediately()
        down = time.monotonic()
        while time.monotonic() - down < 20:
            with pytest.raises(store.UnavailableError), db.transaction() as conn:
                conn.execute("SELECT 1")
            time.sleep(1.0)
        private_postgres.start()
        back = time.monotonic()

        def serves() -> bool:
            try:
                with db.transaction() as conn:
                    return conn.execute("SELECT 1").fetchone() == (1,)
            except store.UnavailableError:
                return False

        until(serves, 30, "a connection after the restart")
        # one down-wait to notice, a fresh pool's connect: not the pool's next backoff
        assert time.monotonic() - back < 8.0
    finally:
        db.close()


def test_a_job_worker_started_while_the_database_is_down_waits_for_it(
    private_postgres: Postgres, tmp_path: Path
) -> None:
    with served(private_postgres.url, tmp_path, job_workers=0) as server:
        private_postgres.stop_immediately()
        log = tmp_path / "worker.log"
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "worker"],
                cwd=ROOT,
                env={**os.environ, "DATABASE_URL": private_postgres.url},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            # long enough for its first check to fail and the next to be due
            time.sleep(RESTART_SECONDS * 2 + 2)
            assert worker.poll() is None, log.read_text()
            private_postgres.start()

            def started() -> Any:
                run = server.request("POST", "/v1/attribution/runs", {"models": ["last_touch"]})
                assert run.status in (202, 503), run.body
                return run if run.status == 202 else None

            run_url = until(started, 30, "a background run to be accepted").headers["Location"]

            def finished() -> Any:
                response = server.request("GET", run_url)
                if response.status != 200:
                    return None
                body = response.json()
                return body if body["status"] in ("succeeded", "failed") else None

            done = until(finished, 60, "the worker to run the job")
            assert done["status"] == "succeeded", done
            assert worker.poll() is None, log.read_text()
        finally:
            worker.terminate()
            worker.wait(timeout=30)
