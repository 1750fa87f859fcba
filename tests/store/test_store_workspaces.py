"""Workspaces and API keys in the store."""

from __future__ import annotations

from datetime import date

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


def _load(conn: psycopg.Connection, workspace_id: int, journey_ids: list[str]) -> None:
    write = store.JourneyWrite(conn, workspace_id)
    coder = write.coder
    write.copy(
        [
            store.JourneyRow(
                jid,
                "c",
                [coder.channel_code("email")],
                [0],
                ["2025-01-01T00:00:00Z"],
                None,
                None,
                False,
                0.0,
                None,
                date(2025, 1, 1),
                "{}",
            )
            for jid in journey_ids
        ]
    )
    write.finish()


def _count(conn: psycopg.Connection, table: str, workspace_id: int) -> int:
    sql = f"SELECT count(*) FROM {table} WHERE workspace_id = %s"
    row = conn.execute(sql, [workspace_id]).fetchone()
    return int(row[0]) if row else 0


def test_a_deleted_workspace_takes_its_journeys_and_rollups(conn: psycopg.Connection) -> None:
    gone = store.create_workspace(conn, "gone").workspace_id
    kept = store.create_workspace(conn, "kept").workspace_id
    _load(conn, gone, ["a", "b"])
    _load(conn, kept, ["a"])
    assert _count(conn, "journeys", gone) == 2 and _count(conn, "path_rollups", gone) == 1
    conn.execute("DELETE FROM workspaces WHERE workspace_id = %s", [gone])
    assert _count(conn, "journeys", gone) == 0 and _count(conn, "path_rollups", gone) == 0
    assert _count(conn, "journeys", kept) == 1 and _count(conn, "path_rollups", kept) == 1


def test_journeys_of_a_missing_workspace_are_refused(conn: psycopg.Connection) -> None:
    row = conn.execute("SELECT coalesce(max(workspace_id), 0) + 1000 FROM workspaces").fetchone()
    assert row is not None
    with pytest.raises(store.NotFoundError):
        _load(conn, int(row[0]), ["a"])
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM journeys").fetchone() == (0,)


def test_a_write_holds_its_workspace_until_it_ends(database_url: str) -> None:
    """The row lock a foreign key would take per row is taken once per write: a
    workspace cannot be deleted under a write in progress."""
    with psycopg.connect(database_url) as writer, psycopg.connect(database_url) as other:
        workspace = store.create_workspace(writer, "busy").workspace_id
        writer.commit()
        store.JourneyWrite(writer, workspace)  # starts the write, holds the lock
        other.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("DELETE FROM workspaces WHERE workspace_id = %s", [workspace])
        other.rollback()
        writer.rollback()
        other.execute("DELETE FROM workspaces WHERE workspace_id = %s", [workspace])
        other.commit()
