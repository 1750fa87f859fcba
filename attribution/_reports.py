"""What the journey reports of :mod:`attribution.journeys` share.

Weighted counts by integer code, distinct keys, rates that are undefined (NaN) over
zero, table rows with NaN shown as empty, and each touch's stage ranked by a
``stage_order``. Every function here is vectorised over touches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .exceptions import InvalidParameter, MissingData
from .paths import PathSet

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _sum_by(codes: IntArray, weights: FloatArray, n: int) -> FloatArray:
    """Sum ``weights`` by integer code into ``n`` bins (a typed ``np.bincount``)."""
    return np.bincount(codes, weights, minlength=n).astype(np.float64, copy=False)


def _distinct(keys: IntArray) -> IntArray:
    """Sorted distinct values; a plain sort, several times faster than ``np.unique`` here."""
    ordered = np.sort(keys)
    keep = np.ones(len(ordered), dtype=bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    distinct: IntArray = ordered[keep]
    return distinct


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    """``num / den``, NaN where ``den`` is zero (an undefined rate, not 0%)."""
    out = np.full(np.shape(num), np.nan)
    np.divide(num, den, out=out, where=np.asarray(den) > 0)
    return out


def _cells(values: FloatArray) -> list[float | None]:
    """Table cells: NaN (undefined) becomes None so JSON and CSV show it as empty."""
    return [None if np.isnan(x) else x for x in np.asarray(values, dtype=np.float64).tolist()]


def _rows(columns: tuple[str, ...], values: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Column-wise values to row dicts with ``columns`` as keys, in order."""
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def _stage_ranks(paths: PathSet, stage_order: Sequence[str]) -> IntArray:
    """Each touch's stage as its 0-based place in ``stage_order``."""
    if paths.stage_names is None or paths.stage_tokens is None:
        raise MissingData("this report needs touch stages; the paths carry none")
    order = list(stage_order)
    if isinstance(stage_order, str) or not order or len(set(order)) != len(order):
        raise InvalidParameter("stage_order", stage_order, "a non-empty list of distinct stages")
    missing = [s for s in paths.stage_names if s not in order]
    if missing:
        raise InvalidParameter(
            "stage_order", stage_order, f"a list naming every stage in the data; missing {missing}"
        )
    lookup = np.array([order.index(s) for s in paths.stage_names], dtype=np.int64)
    ranks: IntArray = lookup[paths.stage_tokens]
    return ranks


def _first_entries(rank: IntArray, paths: PathSet, k: int) -> tuple[IntArray, IntArray]:
    """Paths with a touch at rank ``k``, and the index of their first such touch."""
    at = np.flatnonzero(rank == k)
    owner = paths.path_index[at]
    # touches are in path order, so a path's first hit is where the owner changes
    new = np.ones(len(at), dtype=bool)
    new[1:] = owner[1:] != owner[:-1]
    return owner[new], at[new]
