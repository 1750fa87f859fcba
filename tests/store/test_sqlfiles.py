"""The named-query loader: one namespace over sql/queries/, fragments spliced by include."""

from __future__ import annotations

import pytest

from api.store.sqlfiles import QUERIES_DIR, parse_queries, queries, query

FRAGMENT = """-- the shared piece
-- fragment: only_a
-- a comment that travels with it
AND x = %(a)s
  AND y = 1
"""


def test_include_is_replaced_by_the_fragment_at_its_indent() -> None:
    text = "-- q\n-- name: q\nSELECT 1 FROM t\nWHERE w = 1\n    -- include: only_a\nORDER BY 1\n"
    parsed = parse_queries([("a.sql", FRAGMENT), ("b.sql", text)])
    assert parsed == {
        "q": "SELECT 1 FROM t\nWHERE w = 1\n"
        "    -- a comment that travels with it\n"
        "    AND x = %(a)s\n"
        "      AND y = 1\n"
        "ORDER BY 1"
    }


def test_unknown_includes_are_refused() -> None:
    text = "-- q\n-- name: q\nSELECT 1\n-- include: no_such_fragment\n"
    with pytest.raises(ValueError, match="no_such_fragment"):
        parse_queries([("a.sql", FRAGMENT), ("b.sql", text)])


def test_a_query_cannot_be_included() -> None:
    text = "-- q\n-- name: p\nSELECT 1\n\n-- name: q\nSELECT 2\n-- include: p\n"
    with pytest.raises(ValueError, match="no fragment"):
        parse_queries([("b.sql", text)])


def test_fragments_include_nothing() -> None:
    text = "-- f\n-- fragment: outer\nAND 1 = 1\n-- include: only_a\n"
    with pytest.raises(ValueError, match="outer"):
        parse_queries([("a.sql", FRAGMENT), ("b.sql", text)])


@pytest.mark.parametrize("kind", ["name", "fragment"])
def test_a_name_defined_twice_across_files_is_refused(kind: str) -> None:
    first = "-- one\n-- name: twice\nSELECT 1\n"
    second = f"-- two\n-- {kind}: twice\nSELECT 2\n"
    with pytest.raises(ValueError, match=r"b\.sql: 'twice' is defined twice \(also in a\.sql\)"):
        parse_queries([("a.sql", first), ("b.sql", second)])


def test_a_file_opens_with_a_comment() -> None:
    for text in ("-- name: q\nSELECT 1\n", "SELECT 0;\n-- name: q\nSELECT 1\n"):
        with pytest.raises(ValueError, match=r"a\.sql: a query file opens with a comment"):
            parse_queries([("a.sql", text)])


def test_the_query_files_load_and_fragments_are_not_queries() -> None:
    assert sorted(p.name for p in QUERIES_DIR.glob("*.sql"))
    assert all("-- include:" not in sql for sql in queries().values())
    with pytest.raises(KeyError):
        query("journey_filter")


@pytest.mark.parametrize(
    "name", ["load_journeys", "load_selected_paths", "selected_converted_journeys"]
)
def test_journey_reads_share_one_filter_on_one_alias(name: str) -> None:
    sql = query(name)
    assert "FROM journeys j\n    WHERE j.workspace_id = %(workspace_id)s" in sql
    for line in (
        "      AND j.day BETWEEN coalesce(%(date_from)s::date, '-infinity')\n"
        "                    AND coalesce(%(date_to)s::date, 'infinity')\n",
        "      AND (%(attributes)s::jsonb IS NULL OR j.attributes @> %(attributes)s::jsonb)\n",
        "      AND (%(device)s::text IS NULL OR %(device)s::text = ANY(j.devices))\n",
        "      AND (%(campaign)s::text IS NULL OR %(campaign)s::text = ANY(j.campaigns))",
    ):
        assert line in sql
