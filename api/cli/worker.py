"""``pathcredit worker``: run queued jobs until stopped.

One process runs up to ``--concurrency`` jobs at a time, each in a thread (numpy
releases the GIL in the heavy parts). Start as many processes, on as many machines, as
the work needs: they share the queue through the database.

Stopping: the first SIGINT or SIGTERM stops taking jobs and gives running ones
:data:`~api.service.jobs.SHUTDOWN_GRACE_SECONDS` to finish, then tells them to stop
before their next model (their runs go back to the queue); a job still busy inside a
model :data:`HARD_STOP_SECONDS` later is left to the queue's stalled-job recovery and
the process exits. A second signal exits at once. A worker that loses the database
starts again once it answers, every :data:`RESTART_SECONDS`.
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


def run(url: str, *, concurrency: int = 1, parent: int | None = None) -> int:
    """Run a worker on the database at ``url`` until a signal (or ``parent`` exits)."""
    db = store.Database(url, max_size=1)
    try:
        with db.transaction() as conn:
            waiting = [m.name for m in store.pending(conn)]
    finally:
        db.close()
    if waiting:
        log.error("%d migrations are pending: run `%s migrate`", len(waiting), command_name())
        return 1
    return asyncio.run(_supervise(url, concurrency, parent))


async def _supervise(url: str, concurrency: int, parent: int | None) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    current: asyncio.Task[None] | None = None

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
    while not stopping.is_set():
        db = store.Database(url, max_size=concurrency + 1)
        current = asyncio.create_task(jobs.work(db, concurrency=concurrency, name=name))
        try:
            await current
        except asyncio.CancelledError:
            if not stopping.is_set():
                raise
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
    return 0


async def _watch_parent(parent: int, stop: Callable[[], None]) -> None:
    """Stop when the process that started this one is gone (``pathcredit serve``)."""
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    stop()
