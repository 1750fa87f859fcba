"""Forward-only migrations from ``sql/migrations/NNNN_verb_object.sql``, then the job
queue's schema.

Each file runs once, in its own transaction, under a session advisory lock, and is
recorded with its SHA-256. A changed applied file, or an applied file that no longer
exists, stops the runner: the database would no longer match the files.

The job queue (procrastinate) ships its own schema and its own forward migrations. The
same runner applies them after the files, recorded under the library's versions: the
whole schema on a new database (``procrastinate 3.10.0``), each of the library's
migrations since the recorded version after an upgrade (``procrastinate 3.11.0
03.11.00_01_….sql``), nothing when it is current. Their checksums are not compared: the
library owns that text. A queue schema that exists without a record (applied by hand)
is recorded, not applied again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import procrastinate
import psycopg
from procrastinate.schema import SchemaManager

from .errors import MigrationError
from .sqlfiles import MIGRATIONS_DIR, SQL_DIR, query

VIEWS_DIR = SQL_DIR / "views"

FILE_NAME = re.compile(r"^\d{4}_[a-z]+(_[a-z0-9]+)+\.sql$")
QUEUE = "procrastinate"
"""Applied steps of the job queue's schema are recorded as ``procrastinate <version> …``."""
QUEUE_MIGRATION = re.compile(r"^(\d+)\.(\d+)\.(\d+)_\d+_[a-z0-9_]+\.sql$")
MIN_SERVER_VERSION = 160000  # NULLS NOT DISTINCT, pg_input_is_valid


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in order, checked for name and opening comment."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        if not FILE_NAME.match(path.name):
            raise MigrationError(f"{path.name}: migration names look like 0001_create_things.sql")
        sql = path.read_text(encoding="utf-8")
        if not sql.startswith("--"):
            raise MigrationError(f"{path.name}: a migration opens with a comment on what and why")
        found.append(Migration(path.name, sql))
    numbers = [m.name[:4] for m in found]
    if len(set(numbers)) != len(numbers):
        raise MigrationError("two migrations share a number")
    return found


def applied(conn: psycopg.Connection) -> dict[str, str]:
    """Applied migration names and their recorded checksums (empty on a new database)."""
    row = conn.execute(query("schema_migrations_exists")).fetchone()
    if not row or not row[0]:
        return {}
    return dict(conn.execute(query("list_applied_migrations")).fetchall())


def pending(conn: psycopg.Connection, files: list[Migration] | None = None) -> list[Migration]:
    """Migrations not yet applied, the queue's step last; raises when applied ones differ
    from the files."""
    files = migration_files() if files is None else files
    done = applied(conn)
    by_name = {m.name: m for m in files}
    for name, checksum in done.items():
        if name.startswith(f"{QUEUE} "):
            continue
        if name not in by_name:
            raise MigrationError(f"applied migration {name} is missing from the files")
        if by_name[name].checksum != checksum:
            raise MigrationError(f"applied migration {name} has changed since it ran")
    return [m for m in files if m.name not in done] + queue_migrations(conn, done)


def queue_migrations(conn: psycopg.Connection, done: dict[str, str]) -> list[Migration]:
    """The steps that bring the job queue's schema to the installed version: its whole
    schema on a new database, else each of the library's migrations since the recorded
    version (one transaction each, as the library ships them)."""
    installed = _version(procrastinate.__version__)
    recorded = [_version(n.split(" ")[1]) for n in done if n.startswith(f"{QUEUE} ")]
    if recorded:
        since = max(recorded)
        steps = []
        for path in sorted(Path(SchemaManager.get_migrations_path()).glob("*.sql")):
            m = QUEUE_MIGRATION.match(path.name)
            if m and since < (version := tuple(int(g) for g in m.groups())) <= installed:
                name = f"{QUEUE} {'.'.join(map(str, version))} {path.name}"
                steps.append(Migration(name, path.read_text(encoding="utf-8")))
        return steps
    name = f"{QUEUE} {procrastinate.__version__}"
    row = conn.execute(query("queue_schema_exists")).fetchone()
    if row and row[0]:  # applied by hand: record it as current, run nothing
        return [Migration(name, "SELECT 1 -- the job queue's schema was already there\n")]
    return [Migration(name, SchemaManager.get_schema())]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3])


def migrate(conn: psycopg.Connection, files: list[Migration] | None = None) -> list[str]:
    """Apply pending migrations; returns their names. Needs an autocommit connection."""
    if not conn.autocommit:
        raise MigrationError("migrate() runs each file in its own transaction: use autocommit")
    check_server(conn)
    conn.execute(query("lock_migrations"))
    try:
        conn.execute(query("create_schema_migrations"))
        done = []
        for migration in pending(conn, files):
            with conn.transaction():
                conn.execute(migration.sql.encode("utf-8"))
                conn.execute(
                    query("record_migration"),
                    {"name": migration.name, "checksum": migration.checksum},
                )
            done.append(migration.name)
        # the views follow the newest schema (a column a later migration adds), so a
        # database stopped short of the newest migration (an upgrade test) keeps its own
        if not {m.name for m in migration_files()} - set(applied(conn)):
            apply_views(conn)
        return done
    finally:
        conn.execute(query("unlock_migrations"))


def apply_views(conn: psycopg.Connection, directory: Path = VIEWS_DIR) -> list[str]:
    """Re-create the BI views from ``sql/views/`` (CREATE OR REPLACE, in file order) after
    every migrate: views are versioned by name, not by migration."""
    names = []
    with conn.transaction():
        for path in sorted(directory.glob("*.sql")):
            conn.execute(path.read_text(encoding="utf-8").encode("utf-8"))
            names.append(path.name)
    return names


def check_server(conn: psycopg.Connection) -> None:
    row = conn.execute(query("server_version")).fetchone()
    if row is None or row[0] < MIN_SERVER_VERSION:
        raise MigrationError("pathcredit needs PostgreSQL 16 or later")
