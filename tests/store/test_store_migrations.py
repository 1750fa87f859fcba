"""The migration runner: forward-only, checksummed, locked."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from api import store
from api.store.migrations import Migration, migrate, migration_files, pending


def test_migration_files_are_named_and_commented() -> None:
    files = migration_files()
    assert files and all(m.sql.startswith("--") for m in files)
    assert [m.name for m in files] == sorted(m.name for m in files)


def test_applied_database_has_nothing_pending(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert pending(conn) == []
        assert migrate(conn) == []


def test_a_changed_applied_file_stops_the_runner(database_url: str) -> None:
    files = migration_files()
    changed = [*files[:-1], Migration(files[-1].name, files[-1].sql + "\n-- edited\n")]
    with psycopg.connect(database_url, autocommit=True) as conn:
        with pytest.raises(store.MigrationError, match="changed"):
            migrate(conn, changed)
        with pytest.raises(store.MigrationError, match="missing"):
            pending(conn, files[:-1])


def test_new_files_apply_once(database_url: str) -> None:
    extra = Migration(
        "9999_create_scratch.sql", "-- a scratch table\nCREATE TABLE scratch (x int);"
    )
    files = [*migration_files(), extra]
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert migrate(conn, files) == ["9999_create_scratch.sql"]
        assert migrate(conn, files) == []


def test_bad_file_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "1_things.sql").write_text("-- x\n")
    with pytest.raises(store.MigrationError, match="names"):
        migration_files(tmp_path)
    (tmp_path / "1_things.sql").unlink()
    (tmp_path / "0001_create_things.sql").write_text("CREATE TABLE t (x int);")
    with pytest.raises(store.MigrationError, match="comment"):
        migration_files(tmp_path)


def test_migrate_needs_autocommit(database_url: str) -> None:
    with psycopg.connect(database_url) as conn, pytest.raises(store.MigrationError):
        migrate(conn)
