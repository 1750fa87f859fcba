"""Every data and integrity error of PostgreSQL becomes InvalidDataError, not only the
class codes themselves (22000, 23000)."""

from __future__ import annotations

import psycopg
import pytest

from api import store


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT %s::jsonb", ['{"a": "\\u0000"}']),  # 22P05 untranslatable character
        ("SELECT 1e400::float8", []),  # 22003 numeric value out of range
        ("SELECT 'x'::int", []),  # 22P02 invalid text representation
    ],
)
def test_data_errors_are_invalid_data(conn: psycopg.Connection, sql: str, params: list) -> None:
    with pytest.raises(store.InvalidDataError), store.translated():
        conn.execute(sql, params)
    conn.rollback()
