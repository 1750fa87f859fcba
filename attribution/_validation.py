"""Checking and encoding what a :class:`~attribution.paths.PathSet` is built from.

The checks raise :class:`~attribution.exceptions.InvalidPaths` naming the field and,
where one entry is to blame, the first bad one, so a path set is validated once, when
it is built; models then trust it. Also here: dictionary-encoding names, and reading
the fields of row mappings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .exceptions import InvalidPaths

NO_STAGE = "(none)"
"""Stage name given to touches that carry no stage in a set where others do."""

MIN_POSITIVE_COUNT = 1e-6
"""Smallest positive conversion or null count a path may carry."""

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _encode(values: Sequence[str]) -> tuple[list[str], IntArray]:
    """Dictionary-encode strings in order of first appearance."""
    index: dict[str, int] = {}
    codes = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        if not isinstance(v, str) or not v:
            raise InvalidPaths(f"touch {i}: a channel must be a non-empty string, got {v!r}")
        codes[i] = index.setdefault(v, len(index))
    return list(index), codes


def _encode_optional(values: Sequence[str | None]) -> tuple[list[str], IntArray]:
    index: dict[str, int] = {}
    codes = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        codes[i] = -1 if v is None or v == "" else index.setdefault(v, len(index))
    return list(index), codes


def _stages(
    names: Sequence[str] | None, tokens: ArrayLike | None, n_tokens: int
) -> tuple[tuple[str, ...] | None, IntArray | None]:
    if names is None and tokens is None:
        return None, None
    if names is None or tokens is None:
        raise InvalidPaths("stage_names and stage_tokens go together")
    tok = _int_array(tokens, "stage_tokens")
    if len(tok) != n_tokens:
        raise InvalidPaths(f"stage_tokens has {len(tok)} entries, tokens {n_tokens}")
    snames = list(_names(names, "stage_names"))
    if len(tok) and (tok.min() < -1 or tok.max() >= len(snames)):
        raise InvalidPaths("stage codes must index stage_names (or be -1 for no stage)")
    if len(tok) == 0 or np.all(tok == -1):
        return None, None
    if np.any(tok == -1):
        if NO_STAGE not in snames:
            snames.append(NO_STAGE)
        tok = np.where(tok == -1, snames.index(NO_STAGE), tok)
    out_names, out_tok = _drop_unused(tuple(snames), tok)
    return out_names, out_tok


def _drop_unused(names: tuple[str, ...], tok: IntArray) -> tuple[tuple[str, ...], IntArray]:
    used = np.bincount(tok, minlength=len(names)) > 0 if len(tok) else np.zeros(len(names), bool)
    if used.all():
        return names, tok
    remap = np.cumsum(used) - 1
    return tuple(n for n, u in zip(names, used, strict=True) if u), remap[tok]


def _names(names: Sequence[str], what: str) -> tuple[str, ...]:
    out = tuple(names)
    if any(not isinstance(n, str) or not n for n in out):
        raise InvalidPaths(f"{what} must be non-empty strings")
    if len(set(out)) != len(out):
        raise InvalidPaths(f"{what} must be unique")
    return out


def _int_array(x: ArrayLike, what: str) -> IntArray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise InvalidPaths(f"{what} must be one-dimensional")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InvalidPaths(f"{what} must hold integers")
    return arr.astype(np.int64, copy=False)


def _float_array(x: ArrayLike, n: int, what: str, allow_nan: bool = False) -> FloatArray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidPaths(f"{what} must be numbers") from exc
    if arr.shape != (n,):
        raise InvalidPaths(f"{what} has {arr.size} entries, expected {n}")
    finite = np.isfinite(arr) | (np.isnan(arr) if allow_nan else False)
    if not np.all(finite):
        raise InvalidPaths(f"{what}[{int(np.flatnonzero(~finite)[0])}] is not finite")
    return arr


def _count_array(x: ArrayLike, n: int, what: str) -> FloatArray:
    arr = _float_array(x, n, what)
    if np.any(arr < 0):
        raise InvalidPaths(f"{what}[{int(np.flatnonzero(arr < 0)[0])}] is negative")
    # Counts are journeys (possibly weighted). A positive count far below one journey
    # carries no information and makes value-per-conversion ratios overflow.
    tiny = (arr > 0) & (arr < MIN_POSITIVE_COUNT)
    if np.any(tiny):
        raise InvalidPaths(
            f"{what}[{int(np.flatnonzero(tiny)[0])}] is {arr[tiny][0]!r}: a count must be 0 "
            f"or at least {MIN_POSITIVE_COUNT:g}"
        )
    return arr


def _ids(ids: Sequence[str], n: int) -> tuple[str, ...]:
    out = tuple(str(i) for i in ids)
    if len(out) != n:
        raise InvalidPaths(f"path_ids has {len(out)} entries, expected {n}")
    return out


def _split(value: Any, separator: str, what: str) -> list[str]:
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(separator.strip())]
    elif isinstance(value, Sequence):
        parts = [str(p) for p in value]
    else:
        raise InvalidPaths(f"{what} must be a list or a '{separator.strip()}'-separated string")
    if not parts or any(not p for p in parts):
        raise InvalidPaths(f"{what} has an empty channel")
    return parts


def _field(row: Mapping[str, Any], names: tuple[str, ...], i: int) -> float:
    for name in names:
        v = row.get(name)
        if v is not None and v != "":
            try:
                return float(v)
            except (TypeError, ValueError) as exc:
                raise InvalidPaths(f"row {i}: {name} is not a number: {v!r}") from exc
    return 0.0
