"""Shared field rules and the schemas of every route family: problems, health.

Input schemas raise on unknown fields (marshmallow's default) and are strict about
types: numbers must be JSON numbers, booleans JSON booleans, timestamps ISO 8601 with
a time zone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from attribution.paths import MIN_POSITIVE_COUNT

from ..service import ingest

# Counts and values are summed in float64 across paths and resampled by the bootstrap;
# past 10^15 they stop being exact and overflow intermediate results, and no real
# workspace comes near that: the journey record's cap on values.
MAX_AMOUNT = ingest.MAX_VALUE
AMOUNT = validate.Range(min=0, max=MAX_AMOUNT)


def _whole_enough(count: float) -> None:
    # The engine refuses a positive count below MIN_POSITIVE_COUNT (value per
    # conversion overflows), so refuse it here, where the pointer names the field.
    if 0 < count < MIN_POSITIVE_COUNT:
        raise ma.ValidationError(f"Must be 0 or at least {MIN_POSITIVE_COUNT:g}.")


COUNT: list[Callable[[Any], Any]] = [AMOUNT, _whole_enough]
COUNT_SCHEMA = {"anyOf": [{"const": 0}, {"minimum": MIN_POSITIVE_COUNT}]}
"""What :data:`COUNT` allows beyond its range, for the spec."""


class Whole(validate.Regexp):
    """A pattern the whole value must match: Python's ``$`` also matches before a final
    newline, which would let "id\\n" through. The spec shows the pattern as it is (in
    ECMA-262, which OpenAPI follows, ``$`` is the end of the text)."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


PLAIN = Whole(ingest.PLAIN, error="Must not contain control characters.")
TEXT = [validate.Length(min=1, max=ingest.MAX_TEXT), PLAIN]


def shallow(value: Any) -> None:
    """Free-form JSON (attributes) nests at most ``MAX_DEPTH`` arrays and objects, as
    ingestion allows; checked level by level, so no depth can exhaust the stack."""
    level, depth = [value], 0
    while level := [v for v in level if isinstance(v, dict | list)]:
        depth += 1
        if depth > ingest.MAX_DEPTH:
            raise ma.ValidationError(ingest.TOO_DEEP)
        level = [x for c in level for x in (c.values() if isinstance(c, dict) else c)]


class Number(fields.Float):
    """A JSON number (not a numeric string, not a boolean), finite."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true or false only: not 1, 0 or "true" (marshmallow's own Boolean reads
    those, and the spec says boolean)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class StrictInteger(fields.Integer):
    """A JSON integer only: not "3" or true (the spec says integer). As JSON Schema
    counts it, a number with no fraction (3.0) is an integer, and is read as one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return int(super()._deserialize(value, attr, data, **kwargs))


def strict_bool(**kwargs: Any) -> fields.Boolean:
    return StrictBoolean(**kwargs)


class Health(ma.Schema):
    status = fields.String()


class Readiness(ma.Schema):
    status = fields.String()
    database = fields.String()
    pending_migrations = fields.List(fields.String())


class FieldErrorSchema(ma.Schema):
    pointer = fields.String(metadata={"description": "JSON pointer to the bad value"})
    detail = fields.String()


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.List(fields.Nested(FieldErrorSchema))
