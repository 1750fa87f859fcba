"""SQL text lives in ``sql/``: named queries in ``queries.sql``, migrations beside it."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent.parent.parent / "sql"
QUERIES_FILE = SQL_DIR / "queries.sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"

_NAME = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    """Split ``-- name: x`` blocks into {name: sql}; text before the first name is ignored."""
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip()
    return queries


@cache
def queries() -> dict[str, str]:
    return parse_queries(QUERIES_FILE.read_text(encoding="utf-8"))


def query(name: str) -> str:
    """The SQL of a named query."""
    return queries()[name]
