"""Fixtures for tests that need the database or the application.

A real PostgreSQL: ``DATABASE_URL`` when set (its role needs CREATEDB), else the
embedded server in ``.data/pgtest`` (shared with any other test run on the machine;
the last process to leave stops it). Migrations run once into a template database; each
test that asks for ``database_url`` gets a fresh copy. Database names carry the pid, so
concurrent test runs never meet, and every database made here is dropped at the end.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api import store
from api.app import create_app
from api.cli import embedded
from api.config import Settings

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "pathcredit_test_"
SESSION = f"{PREFIX}{os.getpid()}"
_numbers = itertools.count()


def with_database(url: str, name: str) -> str:
    """The same server, another database."""
    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo(**params)


@pytest.fixture(scope="session")
def admin_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return str(embedded.server(ROOT / ".data" / "pgtest").get_uri())


def drop_abandoned(admin_url: str) -> None:
    """Databases of test runs that died without cleaning up (their pid is gone)."""
    for name in store.list_databases(admin_url, PREFIX):
        pid = name[len(PREFIX) :].split("_")[0]
        if pid.isdigit() and not _alive(int(pid)):
            store.drop_database(admin_url, name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def template_db(admin_url: str) -> Iterator[str]:
    if not os.environ.get("DATABASE_URL"):  # pids only mean something on this machine
        drop_abandoned(admin_url)
    name = f"{SESSION}_template"
    store.ensure_database(admin_url, name)
    store.migrate_url(with_database(admin_url, name))
    yield name
    store.drop_database(admin_url, name)


@pytest.fixture
def database_url(admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"{SESSION}_{next(_numbers)}"
    store.copy_database(admin_url, name, template_db)
    yield with_database(admin_url, name)
    store.drop_database(admin_url, name)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, pool_size=2)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["pathcredit.db"].close()
    app.extensions["pathcredit.probe_db"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection of the test's own, in UTC like the service's."""
    with psycopg.connect(database_url) as connection:
        connection.execute("SET TIME ZONE 'UTC'")
        yield connection


@pytest.fixture
def workspace(conn: psycopg.Connection) -> store.Workspace:
    created = store.create_workspace(conn, "acme")
    conn.commit()
    return created


@pytest.fixture
def api_key(conn: psycopg.Connection, workspace: store.Workspace) -> str:
    key = store.create_api_key(conn, workspace.workspace_id)
    conn.commit()
    return key


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    """Request headers carrying the workspace's API key."""
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
def new_key(conn: psycopg.Connection) -> Callable[[], tuple[int, dict[str, str]]]:
    """Makes a new workspace (committed) and returns its id and request headers with a
    key of its own, for tests that need several workspaces in one database."""

    def make() -> tuple[int, dict[str, str]]:
        workspace = store.create_workspace(conn, f"workspace{next(_numbers)}")
        key = store.create_api_key(conn, workspace.workspace_id)
        conn.commit()
        return workspace.workspace_id, {"Authorization": f"Bearer {key}"}

    return make
