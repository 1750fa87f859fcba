"""The conversion model of ``data_driven``: features of a path and an L2 logistic fit.

A path's features are read from its touches only, so the design matrix of a path set
is derived once and kept across bootstrap replicates and folds (only the counts
change). Each unique path is one row weighted by its conversions and nulls: the
fit is a binomial regression on grouped counts, the same optimum as one row per
journey at a fraction of the cost.

Features, by block (each present only when its option is on or the set has stages):

============ ================================================================
presence     1 for each channel with a touch in the path
repeats      log(touches of the channel), 0 for a channel touched once or not
first, last  1 for the channel of the path's first (last) touch
stage        1 for each stage with a touch in the path (sets with stages)
pair         1 for each channel-stage pair with a touch (sets with stages)
pairwise     1 for each pair of distinct channels both in the path
============ ================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .paths import PathSet

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

INTERCEPT_SHARE = 1e-3
"""The intercept's share of the L2 penalty: enough to keep the fit finite when every
journey converts or none does, too little to move it otherwise."""

MAX_NEWTON_STEPS = 100
NEWTON_TOL = 1e-12
"""The fit stops when the Newton decrement is below this, relative to the journeys."""


@dataclass(frozen=True)
class Features:
    """Which feature blocks a model uses (see the module table)."""

    repeats: bool = True
    position: bool = True
    pairwise: bool = False


@dataclass(frozen=True)
class Coefficients:
    """A fitted model, its weights split by block (zeros for blocks not used)."""

    intercept: float
    presence: FloatArray
    repeats: FloatArray
    first: FloatArray
    last: FloatArray
    stage: FloatArray
    pair: FloatArray
    pairwise: FloatArray
    """``(n_channels, n_channels)``, symmetric, zero diagonal: half the pair's weight each way."""


def design(paths: PathSet, features: Features) -> sp.csr_array:
    """The feature matrix, one row per path, blocks in the order of the module table."""
    n, c = paths.n_paths, paths.n_channels
    rows = paths.path_index
    counts = _indicator(rows, paths.tokens, (n, c), summed=True)
    presence = counts.copy()
    presence.data[:] = 1.0
    blocks = [presence]
    if features.repeats:
        repeats = counts.copy()
        repeats.data = np.log(repeats.data)
        blocks.append(repeats)
    if features.position:
        every = np.arange(n, dtype=np.int64)
        blocks.append(_indicator(every, paths.tokens[paths.offsets[:-1]], (n, c)))
        blocks.append(_indicator(every, paths.tokens[paths.offsets[1:] - 1], (n, c)))
    if paths.stage_tokens is not None:
        blocks.append(_indicator(rows, paths.stage_tokens, (n, paths.n_stage_columns)))
        blocks.append(_indicator(rows, paths.states, (n, paths.n_states)))
    if features.pairwise:
        blocks.extend(presence[:, [a]].multiply(presence[:, a + 1 :]) for a in range(c - 1))
    return sp.csr_array(sp.hstack(blocks, format="csr"))


def _indicator(
    rows: IntArray, cols: IntArray, shape: tuple[int, int], summed: bool = False
) -> sp.csr_array:
    """A 0/1 matrix with a one at each (row, col); counts of repeats when ``summed``."""
    m = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=shape)
    m.sum_duplicates()
    if not summed:
        m.data[:] = 1.0
    return m


def fit(
    x: sp.csr_array,
    conversions: FloatArray,
    nulls: FloatArray,
    alpha: float,
    start: FloatArray | None = None,
) -> FloatArray:
    """Weights (intercept first) minimising the penalised binomial log-loss.

    Notes
    -----
    The loss is the sum over paths of ``-(c log p + n log(1 - p))``, with ``p`` the
    logistic function of the path's linear score, plus ``alpha / 2`` times the
    squared weights (the intercept's times :data:`INTERCEPT_SHARE`). It is strictly
    convex, so Newton's method with a halving line search converges to its unique
    minimum; each step solves the dense ``(k + 1)``-square Hessian system.
    """
    k = x.shape[1]
    xt = sp.csr_array(x.T)
    trials = conversions + nulls
    penalty = np.full(k + 1, alpha)
    penalty[0] *= INTERCEPT_SHARE
    w = np.zeros(k + 1) if start is None else start.copy()
    scale = max(float(trials.sum()), 1.0)

    def loss(v: FloatArray) -> float:
        z = v[0] + x @ v[1:]
        return float(trials @ np.logaddexp(0.0, z) - conversions @ z + 0.5 * penalty @ (v * v))

    current = loss(w)
    for _ in range(MAX_NEWTON_STEPS):
        z = w[0] + x @ w[1:]
        p = _sigmoid(z)
        r = trials * p - conversions
        grad = np.concatenate([[r.sum()], xt @ r]) + penalty * w
        hess = _hessian(x, xt, trials * p * (1.0 - p)) + np.diag(penalty)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:  # a penalty too small to lift a flat direction
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        decrement = float(grad @ step)
        if decrement < NEWTON_TOL * scale:
            break
        t = 1.0
        while t > 1e-10:
            trial = loss(w - t * step)
            if trial <= current:
                break
            t *= 0.5
        w, current = w - t * step, trial
    return w


def _hessian(x: sp.csr_array, xt: sp.csr_array, d: FloatArray) -> FloatArray:
    """``[1 X]^T diag(d) [1 X]`` as a dense matrix (a sparse product: rows hold a few
    features each, so this costs about the sum of squared row counts, not rows x k^2)."""
    k = x.shape[1]
    out = np.empty((k + 1, k + 1))
    xd = xt @ d
    out[0, 0] = d.sum()
    out[0, 1:] = xd
    out[1:, 0] = xd
    out[1:, 1:] = (sp.csr_array(xt.multiply(d[None, :])) @ x).toarray()
    return out


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(np.exp(-np.logaddexp(0.0, -z)), dtype=np.float64)


def predict(x: sp.csr_array, w: FloatArray) -> FloatArray:
    """Fitted conversion probability of each row."""
    return _sigmoid(w[0] + x @ w[1:])


def unpack(paths: PathSet, features: Features, w: FloatArray) -> Coefficients:
    """Weights split by block, in the layout of :func:`design`."""
    c, n_sc, n_states = paths.n_channels, paths.n_stage_columns, paths.n_states
    cursor = 1

    def take(size: int, used: bool = True) -> FloatArray:
        nonlocal cursor
        if not used:
            return np.zeros(size)
        out = w[cursor : cursor + size]
        cursor += size
        return np.asarray(out, dtype=np.float64)

    presence = take(c)
    repeats = take(c, features.repeats)
    first = take(c, features.position)
    last = take(c, features.position)
    staged = paths.stage_tokens is not None
    stage = take(n_sc, staged)
    pair = take(n_states, staged)
    pairwise = np.zeros((c, c))
    if features.pairwise:
        a, b = np.triu_indices(c, 1)
        weights = take(len(a))
        pairwise[a, b] = pairwise[b, a] = weights / 2.0
    return Coefficients(float(w[0]), presence, repeats, first, last, stage, pair, pairwise)
