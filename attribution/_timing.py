"""The timing report of :mod:`attribution.journeys`: time to conversion and between stages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._reports import _cells, _first_entries, _rows, _stage_ranks
from .exceptions import InvalidParameter, MissingData
from .paths import PathSet

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

TIMING_COLUMNS = ("measure", "from_stage", "to_stage", "journeys", "percentile", "seconds")


@dataclass(frozen=True, eq=False)
class Timing:
    """Percentiles of time to conversion and between stages, in seconds (see :func:`timing`)."""

    percentiles: tuple[float, ...]
    conversions: float
    to_conversion: FloatArray
    stage_pairs: tuple[tuple[str, str], ...]
    pair_journeys: FloatArray
    between_stages: FloatArray

    def to_rows(self) -> list[dict[str, Any]]:
        """Long format, one row per measure x percentile; columns :data:`TIMING_COLUMNS`.

        ``measure`` is ``"time_to_conversion"`` (stages None) or ``"stage_to_stage"``;
        ``seconds`` is None when no journey qualifies.
        """
        q = list(self.percentiles)
        pairs = self.stage_pairs
        measures = ["time_to_conversion"] * len(q) + ["stage_to_stage"] * (len(pairs) * len(q))
        froms = [None] * len(q) + [a for a, _ in pairs for _ in q]
        tos = [None] * len(q) + [b for _, b in pairs for _ in q]
        journeys = np.repeat(np.concatenate([[self.conversions], self.pair_journeys]), len(q))
        seconds = np.concatenate([self.to_conversion, self.between_stages.ravel()])
        cells: list[Sequence[Any]] = [
            measures, froms, tos, _cells(journeys), q * (1 + len(pairs)), _cells(seconds),
        ]  # fmt: skip
        return _rows(TIMING_COLUMNS, cells)


def timing(
    paths: PathSet,
    stage_order: Sequence[str] | None = None,
    percentiles: Sequence[float] = (25, 50, 75, 90),
) -> Timing:
    """Time to conversion, and time between first entering consecutive stages.

    Parameters
    ----------
    paths : PathSet
        Per-journey paths with touch ``times`` and ``conversion_times`` (seconds).
    stage_order : sequence of str, optional
        Stage names first to last; without it only time to conversion is reported.
    percentiles : sequence of float, default (25, 50, 75, 90)
        Percentiles to report, each in [0, 100].

    Returns
    -------
    Timing
        Percentiles in seconds.

    Raises
    ------
    MissingData
        The paths carry no touch or conversion times, or ``stage_order`` is given
        for paths without stages.

    Notes
    -----
    *Time to conversion* of a converting journey is its conversion time minus its
    first touch's time. *Time between stages* ``a -> b`` (consecutive in
    ``stage_order``) is the time of the journey's first touch in ``b`` minus that
    of its first touch in ``a``, over journeys that entered both, ``a`` first.
    Percentiles are weighted by journeys (conversions for time to conversion) and
    use the inverted empirical distribution: the smallest observed time with at
    least that share of journeys at or below it, so every figure is a real
    journey's time.
    """
    if paths.times is None or paths.conversion_times is None:
        raise MissingData("timing needs per-journey touch times and conversion times")
    q = _check_percentiles(percentiles)
    elapsed = paths.conversion_times - paths.times[paths.offsets[:-1]]
    converted = (paths.conversions > 0) & np.isfinite(elapsed)
    to_conversion = _weighted_percentiles(elapsed[converted], paths.conversions[converted], q)
    pairs: list[tuple[str, str]] = []
    journeys: list[float] = []
    between: list[FloatArray] = []
    if stage_order is not None:
        rank = _stage_ranks(paths, stage_order)
        weight = paths.conversions + paths.nulls
        entered = [_entry_times(rank, paths, k) for k in range(len(stage_order))]
        for k in range(len(stage_order) - 1):
            gap = entered[k + 1] - entered[k]
            ok = np.isfinite(gap) & (gap >= 0)
            pairs.append((stage_order[k], stage_order[k + 1]))
            journeys.append(float(weight[ok].sum()))
            between.append(_weighted_percentiles(gap[ok], weight[ok], q))
    return Timing(
        percentiles=tuple(float(p) for p in q),
        conversions=float(paths.conversions[converted].sum()),
        to_conversion=to_conversion,
        stage_pairs=tuple(pairs),
        pair_journeys=np.array(journeys, dtype=np.float64),
        between_stages=np.array(between, dtype=np.float64).reshape(len(pairs), len(q)),
    )


def _entry_times(rank: IntArray, paths: PathSet, k: int) -> FloatArray:
    """Per path, the time of its first touch at rank ``k`` (NaN: never there)."""
    assert paths.times is not None
    owner, first = _first_entries(rank, paths, k)
    out = np.full(paths.n_paths, np.nan)
    out[owner] = paths.times[first]
    return out


def _check_percentiles(percentiles: Sequence[float]) -> FloatArray:
    try:
        q = np.asarray(percentiles, dtype=np.float64)
    except (TypeError, ValueError):
        q = np.array([np.nan])
    if q.ndim != 1 or len(q) == 0 or not np.all((q >= 0) & (q <= 100)):
        raise InvalidParameter(
            "percentiles", percentiles, "a non-empty list of numbers in [0, 100]"
        )
    return q


def _weighted_percentiles(values: FloatArray, weights: FloatArray, q: FloatArray) -> FloatArray:
    keep = weights > 0
    if not keep.any():
        return np.full(len(q), np.nan)
    out: FloatArray = np.percentile(values[keep], q, weights=weights[keep], method="inverted_cdf")
    return out
