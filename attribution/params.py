"""Validation of model hyper-parameters from a constraints table.

Each model declares ``_constraints``: a mapping from field name to a :class:`Param`.
``check_params(model)`` is called once from the model's ``__post_init__``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .exceptions import InvalidParameter


@dataclass(frozen=True)
class Param:
    """What a hyper-parameter may be.

    ``kind`` is one of ``"int"``, ``"float"``, ``"bool"``, ``"choice"``, ``"seed"``
    (``None`` or a non-negative int). ``low``/``high`` bound numbers (inclusive unless
    ``open_low``/``open_high``); ``choices`` lists allowed values for ``"choice"`` and
    extra literal values allowed beside a number (e.g. ``order="auto"``).
    """

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    open_low: bool = False
    open_high: bool = False
    nullable: bool = False

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "seed":
            return "null or an integer >= 0"
        lo = "(" if self.open_low else "["
        hi = ")" if self.open_high else "]"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        text = f"{'an integer' if self.kind == 'int' else 'a number'} in {lo}{low}, {high}{hi}"
        if self.choices:
            text += " or one of " + ", ".join(repr(c) for c in self.choices)
        if self.nullable:
            text += " or null"
        return text

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable or self.kind == "seed"
        if self.kind == "choice":
            return value in self.choices
        if value in self.choices:
            return True
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "seed":
            return isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if self.kind == "float" and isinstance(value, int) and abs(value) > sys.float_info.max:
            return False  # an integer no float can hold
        return self._in_range(value)

    def _in_range(self, x: float) -> bool:
        # Compared as given: Python compares an int of any size with a float exactly,
        # where float(x) would overflow.
        if isinstance(x, float) and math.isnan(x):
            return False
        if self.low is not None and (x < self.low or (self.open_low and x == self.low)):
            return False
        return not (
            self.high is not None and (x > self.high or (self.open_high and x == self.high))
        )


def check_params(model: Any) -> None:
    """Raise :class:`InvalidParameter` for the first field that breaks its constraint."""
    constraints: Mapping[str, Param] = getattr(model, "_constraints", {})
    for f in fields(model):
        param = constraints.get(f.name)
        if param is None:
            continue
        value = getattr(model, f.name)
        if not param.accepts(value):
            raise InvalidParameter(f.name, value, param.describe())
