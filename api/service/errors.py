"""The service layer's errors: what went wrong, in the domain's words.

Each names its condition and carries the bad fields as JSON pointers into what the
caller sent. The service raises these (and lets store errors through); the HTTP layer
turns them into problem+json in one place (:mod:`api.problems`), the CLI prints them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One bad field: a JSON pointer into the request and what is wrong with it."""

    pointer: str
    detail: str


def counted(n: int, noun: str) -> str:
    """A count, its noun and verb, for a rejection's detail: "1 event is", "2 events
    are"."""
    return f"{n} {noun} is" if n == 1 else f"{n} {noun}s are"


class ServiceError(Exception):
    """Base of the service's errors: a detail for people and the fields at fault.

    ``retry_after`` (seconds) says when trying again may succeed, where it can.
    """

    def __init__(
        self, detail: str, errors: Iterable[FieldError] = (), retry_after: int | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.retry_after = retry_after


class InvalidInput(ServiceError):
    """The input breaks a rule; nothing was written."""


class NotFound(ServiceError):
    """The thing asked for does not exist in this workspace."""


class Gone(ServiceError):
    """The thing asked for existed and no longer works (a revoked or expired link)."""


class Conflict(ServiceError):
    """The request contradicts the state of the data (a run not ready, data changed)."""


class Unauthorized(ServiceError):
    """No valid credential: a missing key, a forged or expired link."""


class Unavailable(ServiceError):
    """The work cannot be done now (a time limit, a feature turned off)."""


class TooManyRequests(ServiceError):
    """A limit of the workspace or key is reached (its runs under way); ``retry_after``
    says when there may be room."""
