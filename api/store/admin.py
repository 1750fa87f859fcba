"""Whole databases: the embedded server's application database, and test copies."""

from __future__ import annotations

import psycopg
from psycopg import sql

from .errors import translated
from .sqlfiles import query


def _run(admin_uri: str, query_name: str, **identifiers: str) -> None:
    statement = sql.SQL(query(query_name)).format(
        **{k: sql.Identifier(v) for k, v in identifiers.items()}
    )
    with translated(), psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(statement)


def ensure_database(admin_uri: str, name: str) -> None:
    """Create database ``name`` unless it exists."""
    with translated(), psycopg.connect(admin_uri, autocommit=True) as conn:
        found = conn.execute(query("database_exists"), {"name": name}).fetchone()
    if found is None:
        _run(admin_uri, "create_database", name=name)


def copy_database(admin_uri: str, name: str, template: str) -> None:
    """A new database holding a copy of ``template`` (which must have no connections)."""
    _run(admin_uri, "create_database_from_template", name=name, template=template)


def list_databases(admin_uri: str, prefix: str) -> list[str]:
    """Names of the databases starting with ``prefix``."""
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with translated(), psycopg.connect(admin_uri, autocommit=True) as conn:
        rows = conn.execute(query("list_databases"), {"pattern": pattern}).fetchall()
    return [r[0] for r in rows]


def drop_database(admin_uri: str, name: str) -> None:
    _run(admin_uri, "drop_database", name=name)


def migrate_url(url: str) -> list[str]:
    """Apply pending migrations to the database at ``url``."""
    from .migrations import migrate

    with translated(), psycopg.connect(url, autocommit=True) as conn:
        return migrate(conn)
