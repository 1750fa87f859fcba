"""Liveness of synchronous attribution runs: a heartbeat per server process and a sweep
of dead runs.

A synchronous run executes in a thread of the server process whose request started it
(see :mod:`api.service.runs`). While a process holds such a run, one daemon thread of
that process touches the run's ``heartbeat_at`` every :data:`HEARTBEAT_SECONDS`. A
process that dies stops touching its runs; readers of runs call :func:`sweep` first,
which marks failed every unfinished synchronous run of the workspace whose heartbeat
is older than :data:`STALE_SECONDS`. Background runs are jobs of the queue, whose
workers have heartbeats of their own (:mod:`api.service.jobs`); the sweep leaves them
alone.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from typing import Any

from .. import store
from ..problems import problem_for
from ..store import runs
from .errors import Unavailable

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
STALE_SECONDS = 300.0
"""Far longer than a heartbeat, so a busy pool or a slow beat never fails a live run."""


class Heartbeat:
    """The runs this process holds, and the thread that touches them."""

    def __init__(self, interval: float = HEARTBEAT_SECONDS) -> None:
        self.interval = interval
        self._held: dict[str, tuple[store.Database, int]] = {}
        self._lock = threading.Lock()
        self._pid: int | None = None

    def hold(self, db: store.Database, workspace_id: int, run_id: str) -> None:
        with self._lock:
            self._held[run_id] = (db, workspace_id)
            # A thread does not survive a fork: start one per process.
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._loop, name="run-heartbeat", daemon=True).start()

    def release(self, run_id: str) -> None:
        with self._lock:
            self._held.pop(run_id, None)

    def beat(self) -> None:
        """Touch every held run, one transaction per database and workspace."""
        groups: dict[tuple[store.Database, int], list[str]] = defaultdict(list)
        with self._lock:
            for run_id, key in self._held.items():
                groups[key].append(run_id)
        for (db, workspace_id), run_ids in groups.items():
            with db.transaction() as conn:
                runs.touch_runs(conn, workspace_id, run_ids)

    def _loop(self) -> None:
        stop = threading.Event()  # never set: the thread ends with its process
        while not stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # a missed beat is harmless; a dead thread is not
                log.exception("run heartbeat failed")


heartbeat = Heartbeat()


def sweep(conn: Any, workspace_id: int) -> list[str]:
    """Mark failed the workspace's synchronous runs whose process died; their ids."""
    problem = Unavailable(
        f"The server process running this run stopped reporting for {STALE_SECONDS:g} s "
        "(it stopped, or lost its connection to the database) before the run finished. "
        "Start it again."
    )
    return runs.fail_stale_runs(conn, workspace_id, STALE_SECONDS, problem_for(problem).body())
