"""Workspaces and API keys in the store."""

from __future__ import annotations

import psycopg
import pytest

from api import store


def test_keys_authenticate_until_revoked(conn: psycopg.Connection) -> None:
    workspace = store.create_workspace(conn, "acme")
    key = store.create_api_key(conn, workspace.workspace_id)
    assert store.authenticate(conn, key) == workspace
    assert store.authenticate(conn, key + "x") is None
    assert store.authenticate(conn, "not-a-key") is None
    assert store.revoke_api_key(conn, key) == workspace.workspace_id
    assert store.authenticate(conn, key) is None
    with pytest.raises(store.NotFoundError):
        store.revoke_api_key(conn, key)


def test_workspace_names_are_unique(conn: psycopg.Connection) -> None:
    store.create_workspace(conn, "acme")
    with pytest.raises(store.ConflictError):
        store.create_workspace(conn, "acme")
    with pytest.raises(store.NotFoundError):
        store.get_workspace(conn, "nope")


def test_new_workspaces_have_the_default_funnel(conn: psycopg.Connection) -> None:
    workspace = store.create_workspace(conn, "acme")
    stages = store.list_stages(conn, workspace.workspace_id)
    assert [s.name for s in stages] == list(store.DEFAULT_STAGES)


def test_driver_errors_become_store_errors(database_url: str) -> None:
    db = store.Database(database_url)
    try:
        with pytest.raises(store.ConflictError), db.transaction() as conn:
            store.create_workspace(conn, "a")
            conn.execute("INSERT INTO workspaces (name) VALUES ('a')")
    finally:
        db.close()
