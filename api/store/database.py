"""Connection pool lifecycle: one pool per process, opened on first use.

Gunicorn forks its workers after loading nothing of ours, but a pool opened before a
fork would share sockets between processes; the pool therefore remembers the process
that opened it and a forked child opens its own.

While the database is down, a request answers at once instead of waiting the pool's
whole timeout for a connection that cannot come (that wait stays for a busy pool): a
connection found broken, with a fresh one refused too, ends the wait, and until a
connection is handed out again the wait is :data:`DOWN_WAIT_SECONDS`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

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
            try:
                timeout = DOWN_WAIT_SECONDS if self._down else self.timeout
                with self._get_pool().connection(timeout=timeout) as conn:
                    self._down = False
                    try:
                        yield conn
                    except psycopg.OperationalError:
                        self._down = self._down or conn.broken
                        raise
            except _Unreachable:
                raise psycopg.OperationalError("the database is not reachable") from None
            except PoolTimeout:
                self._down = self._down or not self._reachable()
                raise

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
