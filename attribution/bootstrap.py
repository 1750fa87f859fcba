"""Bootstrap confidence intervals on any model's credit.

The aggregated path counts are resampled, the model is run on each replicate, and
the spread of the replicates' credit gives percentile intervals for conversions and
value on every dimension (channel, stage, channel x stage). Drawing the counts is
vectorised over replicates; the model runs once per replicate.

References
----------
.. [1] B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman &
   Hall, 1993, chapter 13 (the percentile interval).
.. [2] A. C. Davison and D. V. Hinkley, *Bootstrap Methods and their Application*,
   Cambridge University Press, 1997 (resampling grouped counts).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .exceptions import InvalidParameter
from .models import Model, get_model
from .params import Param
from .paths import PathSet
from .result import DIMENSIONS, Credit, Interval

FloatArray = NDArray[np.float64]

METHODS = ("poisson", "multinomial")
"""Resampling schemes, see :func:`bootstrap`."""

CONSTRAINTS = {
    "n_replicates": Param("int", 10, 10_000),
    "level": Param("float", 0.5, 1.0, open_low=True, open_high=True),
    "method": Param("choice", choices=METHODS),
    "random_state": Param("seed"),
}
"""What each parameter of :func:`bootstrap` may be."""

BLOCK_COUNTS = 1 << 22
"""Counts drawn at once: replicates are drawn in blocks of about this many path
counts, so memory stays bounded on large path sets while each draw stays one call."""


def bootstrap(
    model: Model | str,
    paths: PathSet,
    *,
    n_replicates: int = 200,
    level: float = 0.95,
    method: str = "poisson",
    random_state: int | None = None,
) -> Credit:
    """The model's credit with bootstrap percentile confidence intervals.

    Parameters
    ----------
    model : model object or str
        Any registered model (an object, or a name built with default options).
    paths : PathSet
        The (aggregated) paths; their conversions and nulls are resampled.
    n_replicates : int, default 200
        Bootstrap replicates, 10 to 10,000.
    level : float, default 0.95
        Confidence level, strictly between 0.5 and 1.
    method : {"poisson", "multinomial"}, default "poisson"
        How counts are resampled (see Notes).
    random_state : int, optional
        Seed; the same seed gives the same intervals.

    Returns
    -------
    Credit
        The point estimate (the model on the data as given) with ``intervals`` set
        for every dimension that has keys, aligned with :meth:`Credit.table`, and
        ``details["bootstrap"]`` recording method, replicates, level and seed.

    Notes
    -----
    Poisson: each path's conversions and nulls are drawn independently as
    Poisson variables with the observed counts as means; the total number of
    journeys varies between replicates, as it does between date ranges. Multinomial:
    the observed total of journeys is redistributed over the cells (path, converted)
    and (path, not converted) with probabilities proportional to their observed
    counts; the total is fixed. In both, a path's value is its observed value times
    resampled over observed conversions, so value per conversion stays the path's.
    The interval is the percentile interval: the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles of the replicates' credit. Paths never observed
    (all counts zero) cannot appear in a replicate, so intervals reflect sampling
    noise in the observed journeys, not unseen paths.

    References
    ----------
    See the module references [1]_, [2]_.
    """
    _check(n_replicates=n_replicates, level=level, method=method, random_state=random_state)
    fitted = get_model(model) if isinstance(model, str) else model
    point = fitted.attribute(paths)
    rng = np.random.default_rng(random_state)
    samples = _replicate(fitted, paths, point, rng, n_replicates, method)
    intervals = {dim: _interval(conv, val, level) for dim, (conv, val) in samples.items()}
    record = {"method": method, "replicates": n_replicates, "level": level, "seed": random_state}
    return replace(point.with_intervals(intervals), details={**point.details, "bootstrap": record})


def resample(
    paths: PathSet, rng: np.random.Generator, size: int, method: str
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Draw ``size`` replicates of (conversions, nulls, value), each ``(size, n_paths)``."""
    conv, nulls = paths.conversions, paths.nulls
    n = paths.n_paths
    if method == "poisson" or n == 0:  # no paths: nothing to draw from either way
        new_conv = rng.poisson(conv, (size, n)).astype(np.float64)
        new_nulls = rng.poisson(nulls, (size, n)).astype(np.float64)
    else:
        journeys = float(conv.sum() + nulls.sum())
        cells = np.concatenate([conv, nulls])
        probs = cells / journeys if journeys > 0 else np.full(2 * n, 1.0 / max(2 * n, 1))
        draws = rng.multinomial(round(journeys), probs, size).astype(np.float64)
        new_conv, new_nulls = draws[:, :n], draws[:, n:]
    # value per conversion is the path's own; zero-conversion paths carry no value
    per_conversion = np.divide(paths.value, conv, out=np.zeros_like(paths.value), where=conv > 0)
    return new_conv, new_nulls, new_conv * per_conversion


def _check(**values: Any) -> None:
    for name, value in values.items():
        param = CONSTRAINTS[name]
        if not param.accepts(value):
            raise InvalidParameter(name, value, param.describe())


def _replicate(
    model: Model,
    paths: PathSet,
    point: Credit,
    rng: np.random.Generator,
    n_replicates: int,
    method: str,
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """Per dimension, the replicates' conversions and value, each ``(R, n_keys)``."""
    rows, cols = np.nonzero(point.present)
    dims = [d for d in DIMENSIONS if len(point.table(d)[0])]
    conv_parts: dict[str, list[FloatArray]] = {d: [] for d in dims}
    val_parts: dict[str, list[FloatArray]] = {d: [] for d in dims}
    # a model may offer a cheaper verb for replicates: the same credit without the
    # extras (held-out scores, say) that intervals never read
    attribute = getattr(model, "attribute_replicate", model.attribute)
    for conv, nulls, value in _blocks(paths, rng, n_replicates, method):
        credit = attribute(paths.with_counts(conv, nulls, value))
        for d in dims:
            conv_parts[d].append(_marginal(credit.conversions, d, rows, cols))
            val_parts[d].append(_marginal(credit.value, d, rows, cols))
    return {d: (np.vstack(conv_parts[d]), np.vstack(val_parts[d])) for d in dims}


def _blocks(
    paths: PathSet, rng: np.random.Generator, n_replicates: int, method: str
) -> Iterator[tuple[FloatArray, FloatArray, FloatArray]]:
    """Replicates one by one, drawn a block of replicates at a time."""
    block = max(1, min(n_replicates, BLOCK_COUNTS // max(paths.n_paths, 1)))
    for start in range(0, n_replicates, block):
        conv, nulls, value = resample(paths, rng, min(block, n_replicates - start), method)
        yield from zip(conv, nulls, value, strict=True)


def _marginal(
    grid: FloatArray, dim: str, rows: NDArray[np.intp], cols: NDArray[np.intp]
) -> FloatArray:
    """One replicate's entries of a dimension, aligned with the point's table keys."""
    entries: FloatArray
    if dim == "channel":
        entries = grid.sum(axis=1)
    elif dim == "stage":  # the campaign and channel_stage entries are the grid's pairs
        entries = grid.sum(axis=0)
    else:
        entries = grid[rows, cols]
    return entries


def _interval(conv: FloatArray, val: FloatArray, level: float) -> Interval:
    """Percentile interval of each column of the replicates."""
    q = [(1.0 - level) / 2.0, (1.0 + level) / 2.0]
    conv_q = np.quantile(conv, q, axis=0)
    val_q = np.quantile(val, q, axis=0)
    return Interval(level, conv_q[0], conv_q[1], val_q[0], val_q[1])
