"""The table writer's cells: what a CSV reader gets for each kind of value."""

from __future__ import annotations

from datetime import date

import pytest

from api.service.tables import csv_value, to_csv


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (3.0, "3"),
        (0.0, "0"),
        (-0.0, "0"),
        (-2.0, "-2"),
        (1.5, "1.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (2.0**53, "9007199254740992"),
        (2.0**60, "1.152921504606847e+18"),
        (float("nan"), ""),
        (7, "7"),
        (None, ""),
        (True, "true"),
        (date(2024, 3, 1), "2024-03-01"),
        ("=1+1", "'=1+1"),
    ],
)
def test_cells(value, cell) -> None:
    assert csv_value(value) == cell


def test_a_fractional_column_holds_both_forms() -> None:
    """Shared credit: integral rows read as integers, the others keep their digits."""
    rows = [{"channel": "a", "conversions": 2.0}, {"channel": "b", "conversions": 0.5}]
    assert to_csv(rows, ["channel", "conversions"]) == "channel,conversions\r\na,2\r\nb,0.5\r\n"
