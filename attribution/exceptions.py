"""Errors raised by the attribution engine.

Every error is a ``ValueError`` so callers that only know the standard library can
still catch it; the API layer translates them to problems in one place.
"""

from __future__ import annotations


class AttributionError(ValueError):
    """Base class of every error raised by :mod:`attribution`."""


class InvalidPaths(AttributionError):
    """The path set is malformed: lengths disagree, counts are negative, a path is empty."""


class InvalidParameter(AttributionError):
    """A model parameter is outside its allowed range.

    The message names the parameter, the value given and what is allowed.
    """

    def __init__(self, name: str, value: object, allowed: str) -> None:
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(f"{name}={value!r} is not allowed: {name} must be {allowed}")


class MissingData(AttributionError):
    """The model needs data the path set does not carry (e.g. touch times)."""


class UnknownModel(AttributionError):
    """No model is registered under that name."""
