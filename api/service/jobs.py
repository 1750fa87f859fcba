"""Background work as jobs of a PostgreSQL queue (procrastinate), run by worker processes:
attribution runs, and re-derivations of a workspace's journeys after its event rules
change (:mod:`.rederive`, which keeps its own record of progress and failure).

A background attribution run is a row in ``attribution_runs`` (what users see: queued,
running, succeeded or failed, with progress) and a job in the queue's tables (what
workers take), written in one transaction by :func:`defer_run`. ``pathcredit worker``
processes, on any number of machines against the same database, take jobs under row
locks that skip each other's (inside procrastinate), so each job runs on one worker
at a time.

Failures and their timings:

- A try that loses the database (a connection refused or broken) waits up to
  :data:`DATABASE_WAIT_SECONDS` for it to answer again, puts the run back in the queue
  and is tried again after :data:`RETRY_WAIT_SECONDS`, at most :data:`RETRIES` more
  times; the last try records "the database was unavailable" on the run.
- The engine refusing the data, or any other error, fails the run at once with that
  reason: trying again would give the same answer.
- A worker sends a heartbeat every :data:`HEARTBEAT_SECONDS`. Once a worker has been
  silent for :data:`STALLED_SECONDS` (its process was killed, its machine or its
  connection lost), the jobs it held are stalled: the recovery job, which some live
  worker runs every :data:`RECOVER_SECONDS`, puts each back in the queue (or, after
  :data:`RETRIES` retries, fails its run saying the worker stopped). A run whose
  worker died is therefore running again within about
  ``STALLED_SECONDS + RECOVER_SECONDS`` (45 s), once a worker is free to take it.
- A worker asked to stop (SIGINT, SIGTERM) takes no new job and gives running ones
  :data:`SHUTDOWN_GRACE_SECONDS` to finish; a run still going stops before its next
  model and goes back to the queue.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

import procrastinate
from procrastinate import JobContext, RetryStrategy
from procrastinate import exceptions as queue_errors
from procrastinate.job_context import AbortReason
from procrastinate.jobs import Job, Status

from .. import store
from . import rederive, runs, zones

log = logging.getLogger(__name__)

RETRIES = 3
"""Tries after the first, for a lost database, a stopped worker or a stalled job."""
RETRY_WAIT_SECONDS = 10
"""How long a run waits in the queue before it is tried again."""
DATABASE_WAIT_SECONDS = 60.0
"""How long a try that lost the database waits for it before giving up the job."""
HEARTBEAT_SECONDS = 10.0
STALLED_SECONDS = 30.0
"""A worker silent this long has stopped: its jobs are stalled."""
RECOVER_SECONDS = 15
SHUTDOWN_GRACE_SECONDS = 3.0
"""How long a stopping worker lets running jobs finish before telling them to stop."""

RUN_TASK = "attribution_run"
ZONE_TASK = "time_zone_change"
REDERIVE_TASK = "rederive_journeys"

queue = procrastinate.App(connector=procrastinate.PsycopgConnector())
"""The queue. Web processes defer jobs on their own transaction's connection; workers
swap in a connector of their own (:func:`work`)."""


class Transient(Exception):
    """A try that may succeed later: the database went away, or the worker stopped."""


RETRY = RetryStrategy(
    max_attempts=RETRIES,
    wait=RETRY_WAIT_SECONDS,
    retry_exceptions=[Transient, store.UnavailableError, queue_errors.JobAborted],
)


@queue.task(name=RUN_TASK, queue="runs", retry=RETRY, pass_context=True)
def attribution_run(context: JobContext, workspace_id: int, run_id: str) -> None:
    """One try of a background attribution run."""
    tries = context.job.attempts + 1

    def stop() -> str | None:
        # Only a stopping worker stops a run; the run row, not the job, is what users
        # cancel by (a job aborted by hand runs on to its outcome).
        stopping = context.abort_reason() == AbortReason.SHUTDOWN
        return "the worker is stopping" if stopping else None

    try:
        runs.execute_job(
            _database(context),
            workspace_id,
            run_id,
            tries=tries,
            final=context.job.attempts >= RETRIES,
            stop=stop,
            patience=DATABASE_WAIT_SECONDS,
        )
    except runs.RetryLater as e:
        if context.abort_reason() == AbortReason.SHUTDOWN:
            raise queue_errors.JobAborted(str(e)) from e
        raise Transient(str(e)) from e


@queue.task(name=ZONE_TASK, queue="runs", retry=RETRY, pass_context=True)
def time_zone_change(context: JobContext, workspace_id: int, change_id: str) -> None:
    """Re-bucket a large workspace's journeys in its new time zone; the last try that
    loses the database fails the change, so that it does not block the next one."""
    db = _database(context)
    try:
        zones.execute_change(db, workspace_id, UUID(change_id))
    except store.UnavailableError:
        if context.job.attempts >= RETRIES:
            zones.give_up(db, workspace_id, UUID(change_id), "the database was unavailable")
        raise


@queue.task(name=REDERIVE_TASK, queue="rederive", retry=RETRY, pass_context=True)
def rederive_journeys(context: JobContext, workspace_id: int, rederivation_id: str) -> None:
    """One try of a re-derivation of a workspace's journeys after its rules changed.
    A lost database or a stopping worker leaves it running, to be tried again from the
    last step done; any other error, or the last try, fails it."""
    db = _database(context)

    def stop() -> bool:
        return context.abort_reason() == AbortReason.SHUTDOWN

    final = context.job.attempts >= RETRIES
    try:
        rederive.execute(db, workspace_id, rederivation_id, stop=stop)
    except (rederive.RetryLater, store.UnavailableError) as e:
        if final:
            _fail_rederivation(db, workspace_id, rederivation_id, f"gave up: {e}")
        if isinstance(e, rederive.RetryLater):
            raise queue_errors.JobAborted(str(e)) from e
        raise
    except Exception:
        log.exception("re-derivation %s failed", rederivation_id)
        _fail_rederivation(db, workspace_id, rederivation_id, "an internal error (logged)")
        raise


def _fail_rederivation(
    db: store.Database, workspace_id: int, rederivation_id: str, error: str
) -> None:
    try:
        rederive.fail(db, workspace_id, rederivation_id, error)
    except store.UnavailableError:
        log.warning("could not record that re-derivation %s failed", rederivation_id)


RECOVER_TASK = "recover_stalled_jobs"


@queue.periodic(cron=f"* * * * * */{RECOVER_SECONDS}", periodic_id="recover")
@queue.task(
    name=RECOVER_TASK,
    queue="maintenance",
    queueing_lock=RECOVER_TASK,
    pass_context=True,
)
async def recover_stalled_jobs(context: JobContext, timestamp: int) -> None:
    """Put back in the queue the jobs of workers that stopped (or fail their runs)."""
    await recover(context.app, _database(context))


async def recover(app: procrastinate.App, db: store.Database) -> list[int]:
    """Retry the stalled jobs, or fail the run of one out of retries; their ids.

    The run row is written before the job, so a worker that takes the retried job at
    once never has its run put back to queued under it.
    """
    handled = []
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_SECONDS):
        try:
            await _recover_one(app, db, job)
        except Exception:  # another worker's recovery got there first, or the database left
            log.exception("could not recover stalled job %s", job.id)
            continue
        assert job.id is not None
        handled.append(job.id)
    return handled


async def _recover_one(app: procrastinate.App, db: store.Database, job: Job) -> None:
    if job.task_name != RUN_TASK:
        log.warning("retrying stalled job %s (%s)", job.id, job.call_string)
        await app.job_manager.retry_job(job)
        return
    args = job.task_kwargs
    workspace_id, run_id = int(str(args["workspace_id"])), str(args["run_id"])
    if job.attempts >= RETRIES:
        log.warning("stalled job %s is out of retries: failing run %s", job.id, run_id)
        await asyncio.to_thread(
            runs.fail_stalled, db, workspace_id, run_id,
            tries=job.attempts + 1, silent_seconds=STALLED_SECONDS,
        )  # fmt: skip
        await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
        return
    log.warning("retrying stalled job %s: run %s", job.id, run_id)
    await asyncio.to_thread(runs.requeue, db, workspace_id, run_id)
    await app.job_manager.retry_job(job)


def defer_run(conn: Any, workspace_id: int, run_id: str) -> int:
    """Queue run ``run_id`` on ``conn``, in the caller's transaction; the job's id."""
    return _defer(attribution_run, conn, workspace_id=workspace_id, run_id=run_id)


def defer_zone_change(conn: Any, workspace_id: int, change_id: str) -> int:
    """Queue time zone change ``change_id`` on ``conn``, in the caller's transaction."""
    return _defer(time_zone_change, conn, workspace_id=workspace_id, change_id=change_id)


def defer_rederive(conn: Any, workspace_id: int, rederivation_id: str) -> int:
    """Queue a re-derivation on ``conn``, in the caller's transaction; the job's id."""
    return _defer(
        rederive_journeys, conn, workspace_id=workspace_id, rederivation_id=rederivation_id
    )


def _defer(task: Any, conn: Any, **arguments: Any) -> int:
    try:
        return int(task.configure(connection=conn).defer(**arguments))
    except queue_errors.ConnectorException as e:
        if e.__cause__ is None:
            raise
        with store.translated():  # the driver's error, as the store's
            raise e.__cause__ from e


async def work(
    db: store.Database,
    *,
    concurrency: int = 1,
    wait: bool = True,
    name: str | None = None,
    grace: float = SHUTDOWN_GRACE_SECONDS,
) -> None:
    """Run a worker on ``db``'s database until cancelled (a graceful stop), or with
    ``wait=False`` until no job is left. Raises when it loses the database."""
    connector = procrastinate.PsycopgConnector(conninfo=db.url, min_size=1, max_size=3)
    with queue.replace_connector(connector):
        async with queue.open_async():
            await queue.run_worker_async(
                concurrency=concurrency,
                wait=wait,
                name=name or "worker",
                additional_context={"db": db},
                install_signal_handlers=False,
                update_heartbeat_interval=HEARTBEAT_SECONDS,
                stalled_worker_timeout=STALLED_SECONDS,
                shutdown_graceful_timeout=grace,
                # the run row is the record; succeeded jobs (and the recovery's
                # every RECOVER_SECONDS) would only pile up
                delete_jobs="successful",
            )


def work_until_empty(db: store.Database) -> None:
    """Run every job due now in this process, then return (tests, one-off drains)."""
    asyncio.run(work(db, wait=False))


def _database(context: JobContext) -> store.Database:
    db = context.additional_context["db"]
    assert isinstance(db, store.Database)
    return db
