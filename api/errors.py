"""The one error format: RFC 9457 ``application/problem+json``.

Every failure leaves the service as a :class:`Problem`. Lower layers raise their own
errors (store errors, attribution ``ValueError`` subclasses, marshmallow validation);
they are translated here, once, and nowhere else knows HTTP status codes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from . import store

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"


@dataclass(frozen=True)
class FieldError:
    """One bad field: a JSON pointer into the request body and what is wrong with it."""

    pointer: str
    detail: str


class Problem(Exception):
    """Base of every error the API reports; subclasses name the condition."""

    status: int = 500
    title: str = "Internal server error"
    slug: str = "internal-error"

    def __init__(
        self,
        detail: str,
        errors: Iterable[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = [{"pointer": e.pointer, "detail": e.detail} for e in self.errors]
        return body


class InvalidInput(Problem):
    status, title, slug = 422, "Invalid input", "invalid-input"


class BadRequest(Problem):
    status, title, slug = 400, "Bad request", "bad-request"


class Unauthorized(Problem):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="pathcredit"'})


class Forbidden(Problem):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(Problem):
    status, title, slug = 404, "Not found", "not-found"


class MethodNotAllowed(Problem):
    status, title, slug = 405, "Method not allowed", "method-not-allowed"


class Conflict(Problem):
    status, title, slug = 409, "Conflict", "conflict"


class PayloadTooLarge(Problem):
    status, title, slug = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(Problem):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


class ServiceUnavailable(Problem):
    status, title, slug = 503, "Service unavailable", "service-unavailable"


# Werkzeug raises these itself (routing, body size); give them the same body.
_HTTP_PROBLEMS: dict[int, type[Problem]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        InvalidInput,
        ServiceUnavailable,
    )
}


def problem_response(problem: Problem) -> Response:
    response = Response(json.dumps(problem.body()), status=problem.status, mimetype=PROBLEM_TYPE)
    response.headers.update(problem.headers)
    return response


def from_store_error(error: store.StoreError) -> Problem:
    """The one place store errors become HTTP problems."""
    if isinstance(error, store.NotFoundError):
        return NotFound(str(error))
    if isinstance(error, store.ConflictError):
        return Conflict(str(error))
    if isinstance(error, store.InvalidDataError):
        return InvalidInput(str(error))
    if isinstance(error, store.UnavailableError):
        return ServiceUnavailable("The database is not reachable; try again shortly.")
    return Problem("The request could not be completed.")


def from_http_exception(error: HTTPException) -> Problem:
    """Werkzeug and webargs errors, including validation failures with their messages."""
    code = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if code == 422 and isinstance(messages, Mapping):
        return invalid_from_messages(messages)
    if code == 400 and isinstance(messages, Mapping):
        return BadRequest("The request body is not valid JSON.")
    cls = _HTTP_PROBLEMS.get(code)
    detail = error.description or HTTPStatus(code).phrase
    if code == 413:
        detail = "The request body is larger than this endpoint accepts."
    if cls is None:
        problem = Problem(detail)
        problem.status, problem.title = code, HTTPStatus(code).phrase
        problem.slug = HTTPStatus(code).phrase.lower().replace(" ", "-")
        return problem
    return cls(detail)


def invalid_from_messages(messages: Mapping[str, Any]) -> InvalidInput:
    """Marshmallow messages keyed by request location -> one problem with pointers.

    Body errors point into the body (``/journeys/17/touchpoints/3/timestamp``); query,
    path and header errors point at the parameter (``/query/format``).
    """
    errors: list[FieldError] = []
    for location, tree in messages.items():
        prefix = "" if location in ("json", "form") else f"/{location}"
        errors.extend(field_errors(tree, prefix))
    return InvalidInput(_invalid_detail(errors), errors)


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
    body = request.get_json(silent=True) if request else None
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

    @app.errorhandler(store.StoreError)
    def _store(error: store.StoreError) -> Response:
        if not isinstance(error, store.NotFoundError | store.ConflictError):
            log.exception("store error")
        return problem_response(from_store_error(error))

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        return problem_response(from_http_exception(error))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(Problem("An unexpected error occurred; it has been logged."))
