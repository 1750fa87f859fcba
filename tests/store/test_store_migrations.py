"""The migration runner: forward-only, checksummed, locked."""

from __future__ import annotations

from pathlib import Path

import procrastinate
import psycopg
import pytest

from api import store
from api.store.migrations import Migration, migrate, migration_files, pending, queue_migrations


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


QUEUE_STEP = f"procrastinate {procrastinate.__version__}"


def test_the_job_queue_schema_is_applied_once_and_recorded(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        recorded = conn.execute(
            "SELECT name FROM schema_migrations WHERE name LIKE 'procrastinate %'"
        ).fetchall()
        assert recorded == [(QUEUE_STEP,)]
        assert conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone() != (None,)
        # present but not recorded (applied by hand): recorded, not applied again
        conn.execute("DELETE FROM schema_migrations WHERE name = %s", (QUEUE_STEP,))
        assert [m.name for m in pending(conn)] == [QUEUE_STEP]
        assert migrate(conn) == [QUEUE_STEP]
        assert migrate(conn) == []


def test_an_upgraded_queue_applies_the_library_migrations_since_the_recorded_version(
    database_url: str,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        steps = queue_migrations(conn, {"procrastinate 3.3.0": "-"})
        assert queue_migrations(conn, {QUEUE_STEP: "-"}) == []
    names = [s.name for s in steps]
    assert names[:2] == [
        "procrastinate 3.4.0 03.04.00_01_pre_add_retry_failed_job_procedure.sql",
        "procrastinate 3.4.0 03.04.00_50_post_add_retry_failed_job_procedure.sql",
    ]
    assert not [n for n in names if "03.03.00" in n]
    # once applied, the last file's version is the recorded one: nothing after it
    last = steps[-1].name
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert queue_migrations(conn, {last: "-"}) == []
