"""pathcredit's attribution engine: pure numpy/scipy.

This package must not import Flask, marshmallow, psycopg or any I/O library, nor read
the environment: the API and the store call it, and analysts can use it directly.
``tests/test_boundaries.py`` checks this.

Typical use::

    from attribution import PathSet, get_model
    paths = PathSet.from_lists([["search", "email"], ["social"]], conversions=[1, 0], nulls=[0, 1])
    credit = get_model("markov", order=1).attribute(paths)
    credit.to_rows()
"""

from .exceptions import (
    AttributionError,
    InvalidParameter,
    InvalidPaths,
    MissingData,
    UnknownModel,
)
from .models import MODEL_NAMES, get_model, model_class
from .paths import PathSet, read_ca_csv
from .result import ROW_COLUMNS, Credit, Interval
from .run import attribute

__all__ = [
    "MODEL_NAMES",
    "ROW_COLUMNS",
    "AttributionError",
    "Credit",
    "Interval",
    "InvalidParameter",
    "InvalidPaths",
    "MissingData",
    "PathSet",
    "UnknownModel",
    "attribute",
    "get_model",
    "model_class",
    "read_ca_csv",
]
