"""Worker processes killed mid-work in a served instance.

A gunicorn worker killed (SIGKILL) while it streams a bulk upload into the database
leaves nothing of that upload behind, and the server goes on serving with a new
worker. A ``pathcredit worker`` killed while it runs a background attribution run
leaves the run's job to the other worker, which takes it up within the documented time
(silent for ``STALLED_SECONDS``, then the next recovery, every ``RECOVER_SECONDS``)
and finishes it. ``tests/service/test_jobs.py`` covers the same recovery inside one
process, with the silence faked; here it runs on the real clocks.
"""

from __future__ import annotations

import http.client
import os
import signal
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from api.service import jobs
from tests.faults.conftest import (
    Served,
    assert_rollups_exact,
    random_journeys,
    served,
    stored_ids,
    until,
    workspace_id,
)
from tests.helpers import ndjson

pytestmark = pytest.mark.slow

UPLOAD = 20_000


def writing_backends(url: str) -> int:
    """Sessions of the served database inside a transaction that has written."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_web_worker_killed_mid_bulk_write_leaves_nothing_half_written(
    database_url: str, tmp_path: Path
) -> None:
    with served(database_url, tmp_path, workers=1) as server:
        before = server.request("POST", "/v1/journeys", {"journeys": random_journeys("pre", 200)})
        assert before.status == 200, before.body
        (worker,) = server.web_workers()
        body = ndjson(*random_journeys("k", UPLOAD, seed=1))

        # Most of the body, then wait for the server to be writing it, then kill.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        conn.putrequest("POST", "/v1/journeys/bulk")
        for name, value in {**server.auth, "Content-Type": "application/x-ndjson",
                            "Content-Length": str(len(body))}.items():  # fmt: skip
            conn.putheader(name, value)
        conn.endheaders()
        sent = int(len(body) * 0.8)
        for start in range(0, sent, 1 << 16):
            conn.send(body[start : min(start + (1 << 16), sent)])
        until(lambda: writing_backends(database_url) > 0, 30, "the upload to be written")
        os.kill(worker, signal.SIGKILL)
        with pytest.raises((OSError, http.client.HTTPException)):
            conn.send(body[sent:])
            conn.getresponse().read()
        conn.close()

        # gunicorn replaces the worker; the server serves again
        until(lambda: server.web_workers() - {worker}, 30, "a new worker")
        until(lambda: _ready(server), 30, "the new worker to answer")
        workspace = workspace_id(database_url)
        until(lambda: writing_backends(database_url) == 0, 30, "the cut-off session to end")
        stored = stored_ids(database_url, workspace)
        assert not any(i.startswith("k-") for i in stored)
        assert len(stored) == 200
        assert_rollups_exact(database_url, workspace)

        again = server.request(
            "POST", "/v1/journeys/bulk", body, {"Content-Type": "application/x-ndjson"}
        )
        assert again.status == 200, again.body
        assert again.json()["created"] == UPLOAD
        assert_rollups_exact(database_url, workspace)


def _ready(server: Served) -> bool:
    try:
        return server.request("GET", "/readyz", timeout=5).status == 200
    except OSError:
        return False


def busiest(pids: set[int], seconds: float = 1.0) -> int:
    """The process that used the most CPU over the next ``seconds``."""
    processes = {pid: psutil.Process(pid) for pid in pids}
    first = {pid: sum(p.cpu_times()[:2]) for pid, p in processes.items()}
    time.sleep(seconds)
    used = {pid: sum(p.cpu_times()[:2]) - first[pid] for pid, p in processes.items()}
    return max(used, key=lambda pid: used[pid])


def test_a_job_worker_killed_mid_run_leaves_the_run_to_another(
    database_url: str, tmp_path: Path
) -> None:
    with served(database_url, tmp_path, workers=1, job_workers=2) as server:
        for start in range(0, 3000, 1000):
            records = random_journeys(f"r{start}", 1000, seed=start)
            assert server.request("POST", "/v1/journeys", {"journeys": records}).status == 200
        # a few seconds a model on a quiet machine: killed inside the first
        body = {"models": ["shapley", "markov"], "markov": {"order": 2},
                "confidence": {"replicates": 20}}  # fmt: skip
        started = server.request("POST", "/v1/attribution/runs", body)
        assert started.status == 202, started.body
        run_url = started.headers["Location"]

        def status() -> str:
            return str(server.request("GET", run_url).json()["status"])

        until(lambda: status() == "running", 60, "the run to start")
        victim = busiest(server.job_workers())
        assert status() == "running"
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()

        # taken for gone after STALLED_SECONDS, put back by the next recovery
        taken_up = jobs.STALLED_SECONDS + jobs.RECOVER_SECONDS + 5
        until(lambda: status() in ("queued", "succeeded") or _retried(database_url), taken_up,
              "the run's job to be taken up again")  # fmt: skip
        until(lambda: status() in ("succeeded", "failed"), 60, "the run to finish")
        done = server.request("GET", run_url).json()
        assert done["status"] == "succeeded", done
        assert done["progress"] == {"done": 2, "total": 2}
        assert time.monotonic() - killed < taken_up + 60
        assert victim not in server.job_workers()


def _retried(url: str) -> bool:
    """The run's job is on its second try."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT max(attempts) FROM procrastinate_jobs WHERE task_name = %s", [jobs.RUN_TASK]
        ).fetchone()
    return bool(row and row[0] and row[0] >= 1)
