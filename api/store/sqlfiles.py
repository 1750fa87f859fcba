"""The one loader of named queries: every ``sql/queries/*.sql`` file, split by concern.

A file opens with a comment on what it holds, then holds blocks, each opened by a line:

- ``-- name: load_paths``: a query, one statement with ``%(param)s`` placeholders;
- ``-- fragment: journey_filter``: a piece of SQL that queries share, not a query.

A line of a query holding only ``-- include: journey_filter`` is replaced by that
fragment, every fragment line indented as the include line was, so the text sent to
PostgreSQL reads as if written in place. Fragments include nothing. Names are one
namespace across all files: a name defined twice, an include of an unknown name or of a
query, and an include inside a fragment are errors when the files are read.
Migrations (``sql/migrations/``) and BI views (``sql/views/``) are read by
:mod:`api.store.migrations`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent.parent.parent / "sql"
QUERIES_DIR = SQL_DIR / "queries"
MIGRATIONS_DIR = SQL_DIR / "migrations"

_IDENT = r"([a-z_][a-z0-9_]*)"
_BLOCK = re.compile(rf"^-- (name|fragment): {_IDENT}[ \t]*$", re.MULTILINE)
_INCLUDE = re.compile(rf"^([ \t]*)-- include: {_IDENT}[ \t]*$", re.MULTILINE)


def parse_queries(files: Iterable[tuple[str, str]]) -> dict[str, str]:
    """{name: sql} of the queries in ``(file name, text)`` pairs, fragments spliced in."""
    blocks: dict[str, tuple[str, str, str]] = {}  # name -> (kind, body, file name)
    for file_name, text in files:
        parts = _BLOCK.split(text)
        if not parts[0].strip().startswith("--"):
            raise ValueError(f"{file_name}: a query file opens with a comment on what it holds")
        for kind, name, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
            if name in blocks:
                first = blocks[name][2]
                raise ValueError(f"{file_name}: {name!r} is defined twice (also in {first})")
            blocks[name] = (kind, body.strip(), file_name)
    fragments = {n: body for n, (kind, body, _) in blocks.items() if kind == "fragment"}
    for name, body in fragments.items():
        if _INCLUDE.search(body):
            raise ValueError(f"fragment {name!r} includes another; only queries include")
    return {
        name: _splice(name, body, fragments)
        for name, (kind, body, _) in blocks.items()
        if kind == "name"
    }


def _splice(query_name: str, body: str, fragments: dict[str, str]) -> str:
    def replace(m: re.Match[str]) -> str:
        indent, name = m.groups()
        if name not in fragments:
            raise ValueError(f"query {query_name!r} includes {name!r}, which is no fragment")
        return "\n".join(indent + line if line else line for line in fragments[name].splitlines())

    return _INCLUDE.sub(replace, body)


@cache
def queries() -> dict[str, str]:
    paths = sorted(QUERIES_DIR.glob("*.sql"))
    return parse_queries((p.name, p.read_text(encoding="utf-8")) for p in paths)


def query(name: str) -> str:
    """The SQL of a named query."""
    return queries()[name]
