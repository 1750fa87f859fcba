"""Tables over HTTP: the same rows as a JSON list of row objects or as CSV, chosen by
``?format=csv|json`` or else by ``Accept: text/csv``, the same way on every table route.
The text itself comes from the one writer, :mod:`api.service.tables`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import marshmallow as ma
from flask import Response, g, request

from ..service.tables import (
    CSV_TYPE,
    NDJSON_TYPE,
    csv_chunks,
    json_rows,
    json_text,
    ndjson_chunks,
    to_csv,
)

F = TypeVar("F", bound=Callable[..., Any])


def wants_csv(query: Mapping[str, Any] | None = None) -> bool:
    if g.get("pathcredit_csv"):  # a route's CSV twin (``.csv``)
        return True
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
        return _csv_response(to_csv(rows, columns), name)
    return Response(json_text(json_rows(rows, columns)), mimetype="application/json")


def stream(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, ndjson: bool, name: str
) -> Response:
    """Stream rows, too many to build at once, as CSV or NDJSON."""
    if ndjson:
        return Response(ndjson_chunks(rows, columns), mimetype=NDJSON_TYPE)
    return _csv_response(csv_chunks(rows, columns), name)


TABLE_MARK = "_pathcredit_table"
"""Marks a documented table's view function: its route gets a CSV twin (``openapi``)."""
WARNING_HEADER = "Pathcredit-Warning"
WARNING_DOC = {
    WARNING_HEADER: {
        "description": "What the selection left out (lookback window, client paths the "
        "selection cannot use) or why it is empty, one header per note; absent when "
        "nothing was left out.",
        "schema": {"type": "string"},
    }
}


def with_warnings(response: Response, notes: Iterable[str]) -> Response:
    """Carry ``notes`` beside a table whose body has no room for them."""
    for note in dict.fromkeys(notes):
        response.headers.add(WARNING_HEADER, note)
    return response


def _csv_response(body: str | Iterable[str], name: str) -> Response:
    response = Response(body, mimetype=CSV_TYPE)
    response.headers["Content-Disposition"] = f'inline; filename="{name}.csv"'
    return response


def documented(blp: Any, row_schema: type[ma.Schema]) -> Callable[[F], F]:
    """Document a table endpoint: JSON rows and the same rows as CSV, and the query."""

    def decorator(func: F) -> F:
        func = blp.alt_response(
            200,
            schema={"type": "string", "description": "RFC 4180 CSV with a header row"},
            content_type=CSV_TYPE,
            success=True,
            headers=WARNING_DOC,
        )(func)
        documented = blp.response(200, row_schema(many=True), headers=WARNING_DOC)(func)
        setattr(documented, TABLE_MARK, True)  # the route gets a CSV twin (openapi.py)
        return documented  # type: ignore[no-any-return]

    return decorator
