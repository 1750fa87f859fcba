"""The one error format, RFC 9457 ``application/problem+json``, and the one place that
knows HTTP status codes.

:func:`problem_for` turns the service's errors, the store's errors and the engine's
refusals into a :class:`Problem`; the HTTP layer's handlers (:mod:`api.http.errors`)
send its body, and a failed run records the same body. Nothing here imports Flask.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from attribution import AttributionError

from . import store
from .service import errors as service

PROBLEM_TYPE = "application/problem+json"
FieldError = service.FieldError


class Problem(Exception):
    """An error as the API reports it; subclasses name the condition."""

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

    def __init__(self, detail: str, errors: Iterable[FieldError] = ()) -> None:
        super().__init__(detail, errors, headers={"WWW-Authenticate": 'Bearer realm="pathcredit"'})


class Forbidden(Problem):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(Problem):
    status, title, slug = 404, "Not found", "not-found"


class MethodNotAllowed(Problem):
    status, title, slug = 405, "Method not allowed", "method-not-allowed"


class Conflict(Problem):
    status, title, slug = 409, "Conflict", "conflict"


class Gone(Problem):
    status, title, slug = 410, "Gone", "gone"


class PayloadTooLarge(Problem):
    status, title, slug = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(Problem):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


class RequestTimeout(Problem):
    """The client sent its request too slowly (its head, or its body); the connection
    is closed."""

    status, title, slug = 408, "Request timeout", "request-timeout"


class TooManyRequests(Problem):
    """A rate or concurrency limit is reached; ``Retry-After`` says when to try again."""

    status, title, slug = 429, "Too many requests", "too-many-requests"

    def __init__(
        self,
        detail: str,
        errors: Iterable[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        retry_after: int = 1,
    ) -> None:
        super().__init__(detail, errors, headers)
        self.headers.setdefault("Retry-After", str(max(1, retry_after)))


RETRY_AFTER_SECONDS = 5
"""``Retry-After`` of a 503 that does not know better: long enough for a database
restart or a failover to show, short enough for a client's retry loop."""


class ServiceUnavailable(Problem):
    """Every 503 says when to try again (``Retry-After``, in seconds)."""

    status, title, slug = 503, "Service unavailable", "service-unavailable"

    def __init__(
        self,
        detail: str,
        errors: Iterable[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        retry_after: int = RETRY_AFTER_SECONDS,
    ) -> None:
        super().__init__(detail, errors, headers)
        self.headers.setdefault("Retry-After", str(retry_after))


BY_STATUS: dict[int, type[Problem]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        Gone,
        PayloadTooLarge,
        UnsupportedMediaType,
        InvalidInput,
        RequestTimeout,
        TooManyRequests,
        ServiceUnavailable,
    )
}
"""The problem of each status the HTTP server raises itself (routing, body size)."""

_SERVICE: dict[type[service.ServiceError], type[Problem]] = {
    service.InvalidInput: InvalidInput,
    service.NotFound: NotFound,
    service.Conflict: Conflict,
    service.Gone: Gone,
    service.Unauthorized: Unauthorized,
    service.Unavailable: ServiceUnavailable,
    service.TooManyRequests: TooManyRequests,
}


def problem_for(error: BaseException) -> Problem:
    """The problem an error answers with (and a failed run records)."""
    if isinstance(error, Problem):
        return error
    if isinstance(error, service.ServiceError):
        cls = next((p for c, p in _SERVICE.items() if isinstance(error, c)), Problem)
        problem = cls(error.detail, error.errors)
        if error.retry_after is not None:
            problem.headers["Retry-After"] = str(error.retry_after)
        return problem
    if isinstance(error, store.StoreError):
        return _from_store_error(error)
    if isinstance(error, AttributionError):
        return InvalidInput(str(error))
    return Problem("An unexpected error occurred; it has been logged.")


def _from_store_error(error: store.StoreError) -> Problem:
    if isinstance(error, store.NotFoundError):
        return NotFound(str(error))
    if isinstance(error, store.ConflictError):
        return Conflict(str(error))
    if isinstance(error, store.InvalidDataError):
        return InvalidInput(str(error))
    if isinstance(error, store.UnavailableError):
        return ServiceUnavailable("The database is not reachable; try again shortly.")
    return Problem("The request could not be completed.")


def of_status(code: int, detail: str | None = None) -> Problem:
    """The problem of an HTTP status the server itself answers with."""
    cls = BY_STATUS.get(code)
    detail = detail or HTTPStatus(code).phrase
    if cls is None:
        problem = Problem(detail)
        problem.status, problem.title = code, HTTPStatus(code).phrase
        problem.slug = HTTPStatus(code).phrase.lower().replace(" ", "-")
        return problem
    return cls(detail)
