"""Connection pool lifecycle: one pool per process, opened on first use.

Gunicorn forks its workers after loading nothing of ours, but a pool opened before a
fork would share sockets between processes; the pool therefore remembers the process
that opened it and a forked child opens its own.

While the database is down, a request answers at once instead of waiting the pool's
whole timeout for a connection that cannot come (that wait stays for a busy pool): a
connection found broken, with a fresh one refused too, ends the wait, and until a
connection is handed out again the wait is :data:`DOWN_WAIT_SECONDS`.

When the database comes back, psycopg_pool's own reconnection may be asleep in its
exponential backoff (doubling from one second up to minutes), so a process that was
idle through a long outage would keep answering 503 long after the database is up. A
wait that times out while the database was known down and now accepts connections
therefore replaces the pool and tries once more at once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from .errors import translated

DOWN_WAIT_SECONDS = 1.0
"""Longest wait for a connection while the database is known to be down."""


class _Unreachable(BaseException):
    """Raised from the pool's check to end a wait: psycopg_pool retries after a check
    that raises an Exception until its timeout, and passes anything else on (having
    put the connection back, where a broken one is discarded)."""


def _configure(conn: psycopg.Connection) -> None:
    # Dates for rollups and timestamps sent back are computed in UTC.
    conn.execute("SET TIME ZONE 'UTC'")
    conn.commit()


class Database:
    """A lazily opened, fork-aware psycopg pool."""

    def __init__(
        self, url: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 10.0
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.min_size = min_size
        self.max_size = max_size
        self._pool: ConnectionPool | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._down = False

    def _get_pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ConnectionPool(
                    self.url,
                    min_size=self.min_size,
                    max_size=self.max_size,
                    configure=_configure,
                    check=self._check,
                    open=False,
                    name=f"pathcredit-{os.getpid()}",
                )
                self._pool.open(wait=False)
                self._pid = os.getpid()
            return self._pool

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """A connection inside a transaction: committed when the block ends, rolled back
        when it raises. Driver errors leave the block as store errors."""
        with translated():
            pool, conn = self._acquire()
            try:
                with conn:
                    yield conn
            except psycopg.OperationalError:
                self._down = self._down or conn.broken
                raise
            finally:
                pool.putconn(conn)

    def _acquire(self) -> tuple[ConnectionPool, psycopg.Connection]:
        """A connection and the pool to give it back to."""
        for attempt in (1, 2):
            pool = self._get_pool()
            was_down = self._down
            try:
                conn = pool.getconn(timeout=DOWN_WAIT_SECONDS if was_down else self.timeout)
            except _Unreachable:
                raise psycopg.OperationalError("the database is not reachable") from None
            except PoolClosed:  # replaced by another thread while this one waited
                if attempt == 2 or self._pool is pool:
                    raise
                continue
            except PoolTimeout:
                reachable = self._reachable()
                if not (was_down and reachable and attempt == 1):
                    self._down = self._down or not reachable
                    raise
                self._replace_pool(pool)
                continue
            self._down = False
            return pool, conn
        raise AssertionError("unreachable")  # pragma: no cover

    def _replace_pool(self, stale: ConnectionPool) -> None:
        """Drop a pool whose reconnection is asleep; connections it has handed out are
        closed when they come back."""
        with self._lock:
            if self._pool is not stale:
                return
            self._pool = None
        # its threads may be asleep in a backoff: they are not waited for here
        threading.Thread(target=stale.close, name=f"{stale.name}-close", daemon=True).start()

    def _check(self, conn: psycopg.Connection) -> None:
        """The pool's check of a connection it hands out. A broken one is replaced,
        unless the database refuses a fresh connection too: then it is down."""
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            if self._reachable():
                raise
            self._down = True
            raise _Unreachable() from None

    def _reachable(self) -> bool:
        try:
            psycopg.connect(self.url, connect_timeout=2).close()  # libpq's least
        except psycopg.Error:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.close()
            self._pool = None
