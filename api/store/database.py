"""Connection pool lifecycle: one pool per process, opened on first use.

Gunicorn forks its workers after loading nothing of ours, but a pool opened before a
fork would share sockets between processes; the pool therefore remembers the process
that opened it and a forked child opens its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

from .errors import translated


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

    def _get_pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ConnectionPool(
                    self.url,
                    min_size=self.min_size,
                    max_size=self.max_size,
                    configure=_configure,
                    check=ConnectionPool.check_connection,
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
        with translated(), self._get_pool().connection(timeout=self.timeout) as conn:
            yield conn

    def close(self) -> None:
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.close()
            self._pool = None
