"""One renderer for every tabular response.

A table is rows of flat values in a fixed column order. It goes out as a JSON list of
row objects, or as RFC 4180 CSV (header row, CRLF line ends, quoting only where
needed), chosen by ``?format=csv|json`` or else by ``Accept: text/csv``. Large tables
can stream as NDJSON.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

import marshmallow as ma
from flask import Response, request

CSV_TYPE = "text/csv"
NDJSON_TYPE = "application/x-ndjson"
F = TypeVar("F", bound=Callable[..., Any])


class TableQuery(ma.Schema):
    """Query parameters every table endpoint takes."""

    format = ma.fields.String(
        validate=ma.validate.OneOf(["json", "csv"]),
        metadata={"description": "`csv` or `json`; without it, `Accept: text/csv` picks CSV"},
    )


def wants_csv(query: Mapping[str, Any] | None = None) -> bool:
    chosen = (query or {}).get("format") or request.args.get("format")
    if chosen:
        return bool(chosen == "csv")
    best = request.accept_mimetypes.best_match(["application/json", CSV_TYPE])
    return best == CSV_TYPE


def render(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    query: Mapping[str, Any] | None = None,
    name: str = "table",
) -> Response:
    """The table as JSON or CSV, whichever the request asked for."""
    if wants_csv(query):
        response = Response(to_csv(rows, columns), mimetype=CSV_TYPE)
        response.headers["Content-Disposition"] = f'inline; filename="{name}.csv"'
        return response
    body = [{c: _json_value(row.get(c)) for c in columns} for row in rows]
    return Response(json.dumps(body, allow_nan=False), mimetype="application/json")


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row.get(c)) for c in columns])
    return out.getvalue()


def ndjson(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> Response:
    """Stream rows as newline-delimited JSON objects, for tables too large to build."""

    def lines() -> Iterator[str]:
        for row in rows:
            yield json.dumps({c: _json_value(row.get(c)) for c in columns}) + "\n"

    return Response(lines(), mimetype=NDJSON_TYPE)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def documented(blp: Any, row_schema: type[ma.Schema]) -> Callable[[F], F]:
    """Document a table endpoint: JSON rows and the same rows as CSV, and the query."""

    def decorator(func: F) -> F:
        func = blp.alt_response(
            200,
            schema={"type": "string", "description": "RFC 4180 CSV with a header row"},
            content_type=CSV_TYPE,
            success=True,
        )(func)
        return blp.response(200, row_schema(many=True))(func)  # type: ignore[no-any-return]

    return decorator
