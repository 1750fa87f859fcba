"""The one writer of tables: rows of flat values in a fixed column order, as RFC 4180
CSV (header row, CRLF line ends, quoting only where needed) or as NDJSON, whole or in
chunks for streaming. The HTTP layer only picks the format and wraps the text.

CSV cells are opened by spreadsheets, which run a cell starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return as a formula. Text cells (names and ids that
clients sent) starting so get a leading ``'``, as OWASP's guidance on CSV injection
recommends; numbers are written as they are.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

CSV_TYPE = "text/csv"
NDJSON_TYPE = "application/x-ndjson"
CHUNK_ROWS = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Rows = Iterable[Mapping[str, Any]]


def csv_chunks(rows: Rows, columns: Sequence[str], chunk_rows: int = CHUNK_ROWS) -> Iterator[str]:
    """The header, then the rows, about ``chunk_rows`` rows per piece of text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for i, row in enumerate(rows, start=1):
        writer.writerow([csv_value(row.get(c)) for c in columns])
        if i % chunk_rows == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def to_csv(rows: Rows, columns: Sequence[str]) -> str:
    return "".join(csv_chunks(rows, columns))


def json_rows(rows: Rows, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Rows as JSON-ready objects with exactly ``columns``, in order."""
    return [{c: json_value(row.get(c)) for c in columns} for row in rows]


def ndjson_chunks(
    rows: Rows, columns: Sequence[str], chunk_rows: int = CHUNK_ROWS
) -> Iterator[str]:
    """One JSON object per line, about ``chunk_rows`` lines per piece of text."""
    lines: list[str] = []
    for row in rows:
        lines.append(json.dumps({c: json_value(row.get(c)) for c in columns}) + "\n")
        if len(lines) == chunk_rows:
            yield "".join(lines)
            lines.clear()
    yield "".join(lines)


def json_text(value: Any) -> str:
    """A JSON body as every response writes it, tables and problems alike: compact, with
    one trailing newline (as Flask writes the other responses), and no NaN."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False) + "\n"


def csv_value(value: Any) -> str:
    """A cell: empty for null and NaN, every digit of a float (``repr``), ISO dates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    return str(value)


def json_value(value: Any) -> Any:
    """A JSON value: ISO dates, null for a float that JSON cannot hold."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
