"""Rows in PostgreSQL's COPY text format.

Formatting runs once per journey on the bulk path, so it sticks to str methods and
joins: no per-touchpoint objects beyond the values themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache

NULL = "\\N"


def text(value: str | None) -> str:
    """A text field: backslash, tab, newline and carriage return escaped."""
    if value is None:
        return NULL
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def plain(value: str | None) -> str:
    """A text field known to hold no control characters (ids): only backslashes escape."""
    if value is None:
        return NULL
    return value.replace("\\", "\\\\") if "\\" in value else value


def int_array(values: Sequence[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def timestamp(value: datetime | None) -> str:
    return NULL if value is None else value.isoformat()


def timestamp_array(values: Sequence[str] | Sequence[datetime]) -> str:
    """ISO 8601 strings (validated: digits, separators and an offset only) as they are,
    or aware datetimes."""
    if values and not isinstance(values[0], str):
        return "{" + ",".join([v.isoformat() for v in values]) + "}"  # type: ignore[union-attr]
    return "{" + ",".join(values) + "}"  # type: ignore[arg-type]


def text_array(values: Sequence[str | None] | None) -> str:
    """A text[] field; elements are double-quoted so commas and braces stay literal."""
    if values is None:
        return NULL
    return "{" + ",".join([element(v) for v in values]) + "}"


@lru_cache(maxsize=65536)
def element(value: str | None) -> str:
    """One array element, quoted for the array literal and then escaped for COPY
    (campaign and device names repeat, so the cache answers most calls)."""
    if value is None:
        return "NULL"
    return text('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')


def day(value: date | None) -> str:
    return NULL if value is None else value.isoformat()


def number(value: float) -> str:
    return repr(float(value))
