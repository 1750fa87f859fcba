"""The schema can be distributed by workspace unchanged (Citus-style sharding).

A distributed table must have every primary key, unique constraint or index and
foreign key lead with ``workspace_id`` (the distribution column), and every query
that touches it must name the workspace, so that it routes to one shard. A few
tables are not distributed; each is listed here with the reason.
"""

from __future__ import annotations

import re

import psycopg

from api.store.sqlfiles import queries

REFERENCE = {
    # Replicated to every node: small, and looked up before the workspace is known.
    "workspaces": "the distribution key's own table: ids and unique names",
    "api_keys": "a key is looked up by its prefix to find its workspace",
    "bi_roles": "database role names are unique across the whole cluster",
}
LOCAL = {
    # Kept on the coordinator only.
    "schema_migrations": "which migrations ran, read by the migrate command",
}
LOCAL_PREFIXES = ("procrastinate_",)  # the job queue's own tables (coordinator)

# Queries that touch distributed tables without naming one workspace, and why.
CROSS_WORKSPACE = {
    "count_unfinished_runs": "the metrics endpoint counts runs of every workspace",
    "count_runs_by_state": "the metrics endpoint counts runs of every workspace",
}


def distributed_tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1"
    ).fetchall()
    names = [r[0] for r in rows]
    return [
        n
        for n in names
        if n not in REFERENCE and n not in LOCAL and not n.startswith(LOCAL_PREFIXES)
    ]


def test_every_table_is_distributed_or_listed(conn: psycopg.Connection) -> None:
    tables = distributed_tables(conn)
    assert {"journeys", "path_rollups", "paths", "path_totals", "attribution_runs"} <= set(tables)
    for table in tables:
        row = conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = 'public'"
            " AND table_name = %s AND column_name = 'workspace_id'",
            (table,),
        ).fetchone()
        assert row is not None, f"{table} has no workspace_id"


def test_keys_and_unique_indexes_lead_with_the_workspace(conn: psycopg.Connection) -> None:
    tables = distributed_tables(conn)
    keys = conn.execute(
        "SELECT c.conrelid::regclass::text, c.conname, c.contype,"
        " (SELECT a.attname FROM pg_attribute a"
        "  WHERE a.attrelid = c.conrelid AND a.attnum = c.conkey[1])"
        " FROM pg_constraint c WHERE c.contype IN ('p', 'u', 'f')"
        " AND c.conrelid::regclass::text = ANY(%s)",
        (tables,),
    ).fetchall()
    indexes = conn.execute(
        "SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, 'i',"
        " (SELECT a.attname FROM pg_attribute a"
        "  WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[0])"
        " FROM pg_index i WHERE i.indisunique AND i.indrelid::regclass::text = ANY(%s)",
        (tables,),
    ).fetchall()
    assert {t for t, _, kind, _ in [*keys, *indexes] if kind in "pui"} == set(tables)
    wrong = [(t, name) for t, name, _, first in [*keys, *indexes] if first != "workspace_id"]
    assert wrong == []


def test_foreign_keys_between_distributed_tables_include_the_workspace(
    conn: psycopg.Connection,
) -> None:
    tables = distributed_tables(conn)
    rows = conn.execute(
        "SELECT c.conrelid::regclass::text, c.conname, c.confrelid::regclass::text,"
        " (SELECT array_agg(a.attname) FROM pg_attribute a"
        "  WHERE a.attrelid = c.confrelid AND a.attnum = ANY(c.confkey))"
        " FROM pg_constraint c WHERE c.contype = 'f'"
        " AND c.conrelid::regclass::text = ANY(%s)",
        (tables,),
    ).fetchall()
    for table, name, target, columns in rows:
        assert target in tables or target in REFERENCE, (table, name, target)
        if target in tables:  # co-located: the key carries the workspace
            assert "workspace_id" in columns, (table, name)


TABLE_WORD = r"\b(?:FROM|JOIN|INTO|UPDATE|COPY|TABLE)\s+(\w+)"


def test_every_query_of_a_distributed_table_names_the_workspace(
    conn: psycopg.Connection,
) -> None:
    tables = set(distributed_tables(conn))
    unrouted, checked = [], 0
    for name, text in sorted(queries().items()):
        sql = "\n".join(line.split("--")[0] for line in text.splitlines())  # no comments
        touched = {t for t in re.findall(TABLE_WORD, sql, re.IGNORECASE) if t in tables}
        checked += bool(touched)
        if touched and name not in CROSS_WORKSPACE and "workspace_id" not in sql:
            unrouted.append((name, sorted(touched)))
    assert unrouted == []
    assert checked > 40  # the tables were recognised in the queries
