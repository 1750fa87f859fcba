"""``pathcredit worker``: run queued jobs until stopped.

One process runs up to ``--concurrency`` jobs at a time, each in a thread (numpy
releases the GIL in the heavy parts). Start as many processes, on as many machines, as
the work needs: they share the queue through the database.

Stopping: the first SIGINT or SIGTERM stops taking jobs and gives running ones
:data:`~api.service.jobs.SHUTDOWN_GRACE_SECONDS` to finish, then tells them to stop
before their next model (their runs go back to the queue); a job still busy inside a
model :data:`HARD_STOP_SECONDS` later is left to the queue's stalled-job recovery and
the process exits. A second signal exits at once. A worker that loses the database, or
starts before it is up, tries again every :data:`RESTART_SECONDS` until it answers;
pending migrations end it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable

from .. import store
from ..service import jobs
from . import command_name

log = logging.getLogger("pathcredit.worker")

RESTART_SECONDS = 5.0
HARD_STOP_SECONDS = jobs.SHUTDOWN_GRACE_SECONDS + 2.0
EXIT_INTERRUPTED = 130


def quiet_maintenance(record: logging.LogRecord) -> bool:
    """Leave out the queue's INFO lines about its own recovery job, which runs every
    few seconds and would bury the lines about runs; its warnings still show."""
    return not (
        record.name.startswith("procrastinate")
        and record.levelno <= logging.INFO
        and jobs.RECOVER_TASK in record.getMessage()
    )


def run(url: str, *, concurrency: int = 1, parent: int | None = None) -> int:
    """Run a worker on the database at ``url`` until a signal (or ``parent`` exits)."""
    return asyncio.run(_supervise(url, concurrency, parent))


def _pending_migrations(url: str) -> list[str]:
    db = store.Database(url, max_size=1)
    try:
        with db.transaction() as conn:
            return [m.name for m in store.pending(conn)]
    finally:
        db.close()


async def _supervise(url: str, concurrency: int, parent: int | None) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    current: asyncio.Task[bool] | None = None

    def on_signal() -> None:
        if stopping.is_set():
            os._exit(EXIT_INTERRUPTED)  # asked twice: stop now
        log.info("stopping: no new jobs; running ones get %g s", jobs.SHUTDOWN_GRACE_SECONDS)
        stopping.set()
        if current is not None:
            current.cancel()
        # A model cannot be interrupted: past this, the queue recovers its job.
        loop.call_later(HARD_STOP_SECONDS, os._exit, EXIT_INTERRUPTED)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    watch = None if parent is None else loop.create_task(_watch_parent(parent, on_signal))
    name = f"{socket.gethostname()}:{os.getpid()}"
    log.info("worker %s running up to %d jobs at a time", name, concurrency)
    checked, code = False, 0
    while not stopping.is_set():
        db = store.Database(url, max_size=concurrency + 1)
        current = asyncio.create_task(
            _work(url, db, concurrency=concurrency, name=name, check=not checked)
        )
        try:
            checked = await current
            if not checked:
                code = 1
                break
        except asyncio.CancelledError:
            if not stopping.is_set():
                raise
        except store.MigrationError as e:  # the schema is not ours: waiting cannot help
            log.error("%s", e)
            code = 1
            break
        except Exception as e:
            log.warning("the worker stopped (%s); starting again in %g s", e, RESTART_SECONDS)
        else:
            if not stopping.is_set():
                log.warning("the worker stopped; starting again in %g s", RESTART_SECONDS)
        finally:
            await asyncio.to_thread(db.close)
        if not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), RESTART_SECONDS)
    if watch is not None:
        watch.cancel()
    log.info("worker %s stopped", name)
    return code


async def _work(url: str, db: store.Database, *, concurrency: int, name: str, check: bool) -> bool:
    """Run jobs until the worker stops; False, without running any, when migrations are
    pending. The check waits for a database that is not up yet like any other loss
    (the caller starts again), rather than ending the process."""
    if check:
        waiting = await asyncio.to_thread(_pending_migrations, url)
        if waiting:
            log.error("pending migrations: %d; run `%s migrate`", len(waiting), command_name())
            return False
    await jobs.work(db, concurrency=concurrency, name=name)
    return True


async def _watch_parent(parent: int, stop: Callable[[], None]) -> None:
    """Stop when the process that started this one is gone (``pathcredit serve``)."""
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    stop()
