"""The application's error handlers: every failure leaves as problem+json.

Problems, service errors, store errors and engine refusals are turned into a body by
:func:`api.problems.problem_for`; werkzeug's own errors (routing, body size) and
webargs' validation failures get the same body here. Any other exception is a 500
with a generic detail; its traceback is logged, never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from attribution import AttributionError

from .. import store
from ..problems import (
    PROBLEM_TYPE,
    BadRequest,
    FieldError,
    InvalidInput,
    Problem,
    of_status,
    problem_for,
)
from ..service.errors import ServiceError
from ..service.tables import json_text
from . import bodies
from .logs import REQUEST_ID

log = logging.getLogger(__name__)
# marshmallow's message for a value that should have been an object
TYPE_MESSAGE = "Invalid input type."


def problem_response(problem: Problem) -> Response:
    response = Response(json_text(problem.body()), status=problem.status, mimetype=PROBLEM_TYPE)
    response.headers.update(problem.headers)
    return response


def from_http_exception(error: HTTPException) -> Problem:
    """Werkzeug and webargs errors, including validation failures with their messages,
    with werkzeug's headers (``Allow`` of a 405) but not its HTML content type."""
    problem = _problem_of(error)
    problem.headers.update((k, v) for k, v in error.get_headers() if k.lower() != "content-type")
    return problem


def _problem_of(error: HTTPException) -> Problem:
    code = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if code == 422 and isinstance(messages, Mapping):
        return invalid_from_messages(messages, data.get("schema"))
    if code == 400 and isinstance(messages, Mapping):
        return BadRequest("The request body is not valid JSON.")
    if code == 413:
        return of_status(code, "The request body is larger than this endpoint accepts.")
    return of_status(code, error.description)


def invalid_from_messages(messages: Mapping[str, Any], schema: Any = None) -> InvalidInput:
    """Marshmallow messages keyed by request location -> one problem with pointers.

    Body errors point into the body (``/journeys/17/touchpoints/3/timestamp``); query,
    path and header errors point at the parameter (``/query/format``). Where an object
    was expected and something else came, the message says so, and at the top of the
    body it names the fields the object takes.
    """
    errors: list[FieldError] = []
    for location, tree in messages.items():
        prefix = "" if location in ("json", "form") else f"/{location}"
        errors.extend(field_errors(tree, prefix))
    errors = [_name_the_shape(e, schema) for e in errors]
    return InvalidInput(_invalid_detail(errors), errors)


def _name_the_shape(error: FieldError, schema: Any) -> FieldError:
    if error.detail != TYPE_MESSAGE:
        return error
    if error.pointer != "/" or not isinstance(schema, ma.Schema):
        return FieldError(error.pointer, "Expected a JSON object here.")
    names = [f.data_key or name for name, f in schema.load_fields.items()]
    required = [f.data_key or name for name, f in schema.load_fields.items() if f.required]
    shape = ", ".join(f'"{n}"' for n in names)
    needs = f" ({', '.join(required)} required)" if required else ""
    return FieldError("/", f"The body must be a JSON object with the fields {shape}{needs}.")


def field_errors(tree: Any, prefix: str = "") -> list[FieldError]:
    """Flatten a marshmallow message tree into pointer/detail pairs."""
    if isinstance(tree, Mapping):
        out: list[FieldError] = []
        for key, sub in tree.items():
            here = prefix if key == "_schema" else f"{prefix}/{_escape(str(key))}"
            out.extend(field_errors(sub, here))
        return out
    if isinstance(tree, list | tuple):
        if all(isinstance(m, str) for m in tree):
            return [FieldError(prefix or "/", m) for m in tree]
        return [e for sub in tree for e in field_errors(sub, prefix)]
    return [FieldError(prefix or "/", str(tree))]


def _escape(token: str) -> str:
    """JSON pointer escaping (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def _invalid_detail(errors: list[FieldError]) -> str:
    try:
        body = bodies.parsed(request) if request else None
    except RecursionError:  # parsed once already, with less of the stack in use
        body = None
    records = _record_indexes(errors)
    if isinstance(body, Mapping) and records:
        key, indexes = records
        total = body.get(key)
        if isinstance(total, list):
            return f"{len(indexes)} of {len(total)} {key} are invalid; nothing was written."
    return "The request is invalid; nothing was written."


def _record_indexes(errors: list[FieldError]) -> tuple[str, set[int]] | None:
    """When every error points inside one list field, which records of it are bad."""
    keys, indexes = set(), set()
    for e in errors:
        parts = e.pointer.split("/")
        if len(parts) < 3 or not parts[2].isdigit():
            return None
        keys.add(parts[1])
        indexes.add(int(parts[2]))
    if len(keys) != 1:
        return None
    return keys.pop(), indexes


def register(app: Flask) -> None:
    """The only error handlers of the application."""

    @app.errorhandler(Problem)
    def _problem(error: Problem) -> Response:
        return problem_response(error)

    @app.errorhandler(ServiceError)
    @app.errorhandler(AttributionError)
    def _service(error: Exception) -> Response:
        return problem_response(problem_for(error))

    @app.errorhandler(store.StoreError)
    def _store(error: store.StoreError) -> Response:
        if not isinstance(error, store.NotFoundError | store.ConflictError):
            log.exception("store error")
        return problem_response(problem_for(error))

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        return problem_response(from_http_exception(error))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception(
            "unhandled error on %s %s",
            request.method,
            request.path,
            extra={"request_id": request.environ.get(REQUEST_ID)},
        )
        return problem_response(Problem("An unexpected error occurred; it has been logged."))
