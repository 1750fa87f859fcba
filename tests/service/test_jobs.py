"""Background runs as jobs of the queue: a worker runs them, failures are retried or
recorded with their true reason, jobs of a dead worker are taken up again, and
``pathcredit worker`` starts and stops. Real PostgreSQL throughout: workers run in this
process (``work_until_empty``) or as ``python -m api.cli worker`` subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import procrastinate
import psycopg
import pytest
from flask.testing import FlaskClient

from api import store
from api.service import jobs
from tests.http.test_attribution import SMALL, ingest, small_journey, unrun
from tests.http.test_attribution_table import wait_for

BODY = {"models": ["last_touch", "markov", "shapley"]}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def small(client: FlaskClient, auth: dict[str, str]) -> None:
    ingest(client, auth, [small_journey(*j) for j in SMALL])


def start(client: FlaskClient, auth: dict[str, str], body: dict[str, Any] = BODY) -> str:
    response = client.post("/v1/attribution/runs", json=body, headers=auth)
    assert response.status_code == 202, response.get_json()
    return str(response.get_json()["run_id"])


def get(client: FlaskClient, auth: dict[str, str], run_id: str) -> dict[str, Any]:
    return client.get(f"/v1/attribution/runs/{run_id}", headers=auth).get_json()  # type: ignore[no-any-return]


def job_of(conn: psycopg.Connection, run_id: str) -> tuple[Any, ...] | None:
    """(status, attempts, task kwargs) of the run's job; None once it is deleted."""
    conn.commit()  # a fresh snapshot
    row = conn.execute(
        "SELECT j.status::text, j.attempts, j.args FROM attribution_runs r"
        " JOIN procrastinate_jobs j ON j.id = r.job_id WHERE r.run_id = %s",
        (run_id,),
    ).fetchone()
    conn.commit()
    return row


def db_of(client: FlaskClient) -> store.Database:
    db = client.application.extensions["pathcredit.db"]
    assert isinstance(db, store.Database)
    return db


def test_a_background_run_is_a_job_a_worker_runs_with_the_synchronous_numbers(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, small: None, workspace
) -> None:
    sync = client.post("/v1/attribution", json=BODY, headers=auth).get_json()
    run_id = start(client, auth)
    # queued with its job, written together; nothing runs it in the web process
    status, attempts, args = job_of(conn, run_id)  # type: ignore[misc]
    assert (status, attempts) == ("todo", 0)
    assert args == {"workspace_id": workspace.workspace_id, "run_id": run_id}
    time.sleep(0.2)
    assert get(client, auth, run_id)["status"] == "queued"
    done = wait_for(client, auth, f"/v1/attribution/runs/{run_id}")
    assert done["status"] == "succeeded", done
    assert done["progress"] == {"done": 3, "total": 3}
    assert unrun(done["table"]) == unrun(sync["table"])
    assert done["totals"] == sync["totals"]
    assert job_of(conn, run_id) is None  # the run is the record; succeeded jobs go


def test_a_run_the_engine_refuses_fails_at_once_with_its_reason(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, small: None
) -> None:
    run_id = start(client, auth, {"models": ["shapley_rate"], "shapley_rate": {"max_players": 1}})
    done = wait_for(client, auth, f"/v1/attribution/runs/{run_id}")
    assert done["status"] == "failed"
    assert done["error"]["status"] == 422
    assert "database" not in done["error"]["detail"]
    assert job_of(conn, run_id)[:2] == ("failed", 1)  # type: ignore[index]  # one try, no retry


class Dropping(store.Database):
    """A real pool whose server drops the connection inside chosen transactions (the
    n-th transaction opened, counting from 1): the driver's error is real."""

    def __init__(self, url: str, drop: set[int]) -> None:
        super().__init__(url, max_size=2)
        self.drop = drop
        self.opened = 0

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        self.opened += 1
        with super().transaction() as conn:
            if self.opened in self.drop:
                with psycopg.connect(self.url, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
            yield conn


def run_due_jobs(db: store.Database, conn: psycopg.Connection) -> None:
    """Let the retry waits pass, then run what is due."""
    conn.execute("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'")
    conn.commit()
    jobs.work_until_empty(db)


def test_a_try_that_loses_the_database_is_retried(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, small: None
) -> None:
    sync = client.post("/v1/attribution", json=BODY, headers=auth).get_json()
    run_id = start(client, auth)
    dropping = Dropping(db_of(client).url, drop={2})  # the try's first write
    try:
        jobs.work_until_empty(dropping)
        run = get(client, auth, run_id)
        assert (run["status"], run["error"]) == ("queued", None)
        assert job_of(conn, run_id)[:2] == ("todo", 1)  # type: ignore[index]
        run_due_jobs(dropping, conn)
    finally:
        dropping.close()
    done = get(client, auth, run_id)
    assert done["status"] == "succeeded"
    assert unrun(done["table"]) == unrun(sync["table"])


def test_the_last_try_records_that_the_database_was_unavailable(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, small: None
) -> None:
    run_id = start(client, auth)
    conn.execute("UPDATE procrastinate_jobs SET attempts = %s", (jobs.RETRIES,))
    conn.commit()
    dropping = Dropping(db_of(client).url, drop={3})  # the try's read
    try:
        jobs.work_until_empty(dropping)
    finally:
        dropping.close()
    done = get(client, auth, run_id)
    assert done["status"] == "failed"
    assert done["error"]["status"] == 503
    assert done["error"]["detail"].startswith("The database was unavailable")
    assert f"tried {jobs.RETRIES + 1} times" in done["error"]["detail"]
    assert "process" not in done["error"]["detail"]
    assert job_of(conn, run_id)[:2] == ("failed", jobs.RETRIES + 1)  # type: ignore[index]


class Stopping(store.Database):
    """A real pool that asks the worker running it to stop once the run's first model
    is done (its progress written), and gives the stop time to land."""

    def __init__(self, url: str, run_id: str) -> None:
        super().__init__(url, max_size=2)
        self.run_id = run_id
        self.stop: Any = None

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        with super().transaction() as conn:
            yield conn
            progress = conn.execute(
                "SELECT models_done FROM attribution_runs WHERE run_id = %s", (self.run_id,)
            ).fetchone()
        if self.stop is not None and progress == (1,):
            self.stop()
            self.stop = None
            time.sleep(0.5)


def test_a_stopping_worker_puts_its_run_back_in_the_queue_between_models(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, small: None
) -> None:
    sync = client.post("/v1/attribution", json=BODY, headers=auth).get_json()
    run_id = start(client, auth)
    stopping = Stopping(db_of(client).url, run_id)

    async def work_until_stopped() -> None:
        task = asyncio.create_task(jobs.work(stopping, wait=False, grace=0))
        loop = asyncio.get_running_loop()
        stopping.stop = lambda: loop.call_soon_threadsafe(task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(work_until_stopped())
    finally:
        stopping.close()
    run = get(client, auth, run_id)
    assert (run["status"], run["progress"]["done"]) == ("queued", 0)
    assert job_of(conn, run_id)[:2] == ("todo", 1)  # type: ignore[index]
    run_due_jobs(db_of(client), conn)
    done = get(client, auth, run_id)
    assert done["status"] == "succeeded"
    assert unrun(done["table"]) == unrun(sync["table"])


@asynccontextmanager
async def opened_queue(url: str) -> AsyncIterator[procrastinate.App]:
    connector = procrastinate.PsycopgConnector(conninfo=url)
    with jobs.queue.replace_connector(connector):
        async with jobs.queue.open_async():
            yield jobs.queue


async def take_and_die(url: str, db: store.Database) -> int:
    """Take the next job as a worker would, then go silent as a killed one does."""
    async with opened_queue(url) as queue:
        worker_id = await queue.job_manager.register_worker()
        job = await queue.job_manager.fetch_job(queues=None, worker_id=worker_id)
        assert job is not None and job.id is not None
        args = job.task_kwargs
        with db.transaction() as conn:
            store.runs.mark_running(conn, int(str(args["workspace_id"])), str(args["run_id"]))
        return job.id


def silence_workers(conn: psycopg.Connection) -> None:
    """Let STALLED_SECONDS pass since every worker's last heartbeat."""
    conn.execute(
        "UPDATE procrastinate_workers SET last_heartbeat = now() - make_interval(secs => %s)",
        (jobs.STALLED_SECONDS + 1,),
    )
    conn.commit()


async def recover(url: str, db: store.Database) -> list[int]:
    async with opened_queue(url) as queue:
        return await jobs.recover(queue, db)


def test_a_job_of_a_dead_worker_is_taken_up_again(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, small: None
) -> None:
    run_id = start(client, auth)
    db = db_of(client)
    job_id = asyncio.run(take_and_die(db.url, db))
    assert get(client, auth, run_id)["status"] == "running"
    assert asyncio.run(recover(db.url, db)) == []  # its worker is not silent yet
    silence_workers(conn)
    assert asyncio.run(recover(db.url, db)) == [job_id]
    assert get(client, auth, run_id)["status"] == "queued"
    assert job_of(conn, run_id)[:2] == ("todo", 1)  # type: ignore[index]
    jobs.work_until_empty(db)
    assert get(client, auth, run_id)["status"] == "succeeded"


def test_a_job_that_stalls_on_its_last_try_fails_its_run_saying_so(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, small: None
) -> None:
    run_id = start(client, auth)
    conn.execute("UPDATE procrastinate_jobs SET attempts = %s", (jobs.RETRIES,))
    conn.commit()
    db = db_of(client)
    job_id = asyncio.run(take_and_die(db.url, db))
    silence_workers(conn)
    assert asyncio.run(recover(db.url, db)) == [job_id]
    done = get(client, auth, run_id)
    assert done["status"] == "failed"
    assert done["error"]["status"] == 503
    assert "worker running the last try stopped reporting" in done["error"]["detail"]
    assert job_of(conn, run_id)[:2] == ("failed", jobs.RETRIES + 1)  # type: ignore[index]


# ------------------------------------------------------------- worker processes
def spawn_worker(url: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": url}
    argv = [sys.executable, "-m", "api.cli", "worker", *extra]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)


def until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def registered_workers(conn: psycopg.Connection) -> int:
    conn.commit()
    row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
    conn.commit()
    return int(row[0]) if row else 0


def test_pathcredit_worker_runs_jobs_and_stops_on_sigterm(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, small: None
) -> None:
    run_id = start(client, auth)
    proc = spawn_worker(db_of(client).url, "--concurrency", "2")
    try:
        until(lambda: get(client, auth, run_id)["status"] == "succeeded", 60, "the run")
        assert registered_workers(conn) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
    assert registered_workers(conn) == 0, err  # it said goodbye


def slow_journeys(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    channels = [f"c{i}" for i in range(10)]
    out = []
    for i in range(n):
        path = [rng.choice(channels) for _ in range(rng.randint(1, 6))]
        converted = rng.random() < 0.3
        out.append(small_journey(f"s{i}", path, converted, 10.0 if converted else 0.0))
    return out


@pytest.mark.slow
def test_a_run_whose_worker_is_killed_is_finished_by_another(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection
) -> None:
    for start_at in range(0, 3000, 1000):
        ingest(client, auth, slow_journeys(3000)[start_at : start_at + 1000])
    body = {"models": ["shapley", "markov"], "markov": {"order": 2},
            "confidence": {"replicates": 300}}  # fmt: skip
    run_id = start(client, auth, body)
    url = db_of(client).url
    first = spawn_worker(url)
    try:
        until(lambda: get(client, auth, run_id)["status"] == "running", 60, "the run to start")
        first.kill()  # SIGKILL: no goodbye, the job stays taken
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    assert get(client, auth, run_id)["status"] == "running"
    silence_workers(conn)  # rather than waiting STALLED_SECONDS
    second = spawn_worker(url)
    try:
        deadline = jobs.RECOVER_SECONDS + 120  # the next recovery, then the run itself
        done = until(
            lambda: (r := get(client, auth, run_id))["status"] in ("succeeded", "failed") and r,
            deadline,
            "the run to finish on the second worker",
        )
        assert done["status"] == "succeeded", done
        assert done["progress"] == {"done": 2, "total": 2}
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=15)
        finally:
            if second.poll() is None:
                second.kill()
            second.communicate()


@pytest.mark.slow
def test_a_worker_stopped_mid_run_exits_promptly_and_the_run_is_finished_later(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection
) -> None:
    from api.cli.worker import HARD_STOP_SECONDS

    for start_at in range(0, 3000, 1000):
        ingest(client, auth, slow_journeys(3000)[start_at : start_at + 1000])
    # four models of a second or more each: the stop comes inside the run
    body = {"models": ["shapley", "markov", "shapley_simple", "linear"],
            "markov": {"order": 2}, "confidence": {"replicates": 1000}}  # fmt: skip
    run_id = start(client, auth, body)
    url = db_of(client).url
    first = spawn_worker(url)
    try:
        until(lambda: get(client, auth, run_id)["status"] == "running", 60, "the run to start")
        asked = time.monotonic()
        first.send_signal(signal.SIGTERM)
        code = first.wait(timeout=HARD_STOP_SECONDS + 5)
        assert time.monotonic() - asked < HARD_STOP_SECONDS + 2
    finally:
        if first.poll() is None:
            first.kill()
        _, err = first.communicate()
    # stopped between models (back in the queue), finished within the grace, or cut
    # off inside a model (left to the recovery)
    status = get(client, auth, run_id)["status"]
    assert (code, status) in ((0, "queued"), (0, "succeeded"), (130, "running")), err
    silence_workers(conn)
    second = spawn_worker(url)
    try:
        until(lambda: get(client, auth, run_id)["status"] == "succeeded", 120, "the run")
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=15)
        finally:
            if second.poll() is None:
                second.kill()
            second.communicate()


def test_a_stalled_last_try_that_recorded_its_outcome_keeps_its_reason(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, small: None
) -> None:
    run_id = start(client, auth)
    conn.execute("UPDATE procrastinate_jobs SET attempts = %s", (jobs.RETRIES,))
    conn.commit()
    db = db_of(client)
    asyncio.run(take_and_die(db.url, db))
    reason = {"type": "/problems/service-unavailable", "status": 503, "detail": "the database"}
    conn.execute(
        "UPDATE attribution_runs SET status = 'failed', error = %s WHERE run_id = %s",
        (psycopg.types.json.Jsonb(reason), run_id),
    )
    conn.commit()
    silence_workers(conn)
    asyncio.run(recover(db.url, db))
    assert get(client, auth, run_id)["error"] == reason
    assert job_of(conn, run_id)[0] == "failed"  # type: ignore[index]
