"""Choosing a Markov chain's order by cross-validation, for ``Markov(order="auto")``.

Each path's journeys are dealt to folds by a seeded hash of the path, and each order
is scored by the held-out log-likelihood of conversion; the Notes of
:class:`~attribution.markov.Markov` give the folds and the predictor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from ._scores import log_loss
from ._transitions import _state_label
from .paths import PathSet

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def order_scores(
    paths: PathSet, orders: tuple[int, ...], n_folds: int, seed: int | None
) -> dict[int, float]:
    """Held-out log-likelihood of conversion per journey, for each order.

    The negative of the pooled held-out log-loss that
    :func:`attribution.holdout.validate` reports for the same folds and seed. See
    the Notes of :class:`~attribution.markov.Markov` for the folds and the predictor.
    """
    conv_f, null_f = fold_counts(paths, n_folds, seed)
    if not conv_f.sum() + null_f.sum():
        return dict.fromkeys(orders, 0.0)  # no journeys: every order alike
    return {
        order: -log_loss(
            markov_predictions(paths, order, conv_f, null_f).ravel(),
            conv_f.ravel(),
            null_f.ravel(),
        )
        for order in orders
    }


def markov_predictions(
    paths: PathSet, order: int, conv_f: FloatArray, null_f: FloatArray
) -> FloatArray:
    """Each path's conversion probability under the order-``order`` chain fitted to
    the other folds, one column per fold, shape ``(n_paths, n_folds)``.

    The chain's probability that a walk which has made the path's touches ends in
    conversion rather than null is the share of conversions among the absorptions
    from the path's last state (window): the transitions before it are common to
    both outcomes and cancel. So the prediction is the training folds' conversion
    rate of journeys ending in the same window, smoothed by one journey towards
    the training folds' overall rate, which gives unseen windows the overall rate.
    """
    last = _last_window_ids(paths, order)
    columns = [
        _smoothed_rate(last, paths.conversions - conv_f[:, f], paths.nulls - null_f[:, f])
        for f in range(conv_f.shape[1])
    ]
    if not columns:
        return np.zeros((paths.n_paths, 0))
    return np.stack(columns, axis=1)


def best_order(scores: Mapping[int, float]) -> int:
    """The order with the highest score; the lowest of tied orders."""
    top = max(scores.values())
    return min(k for k, v in scores.items() if v >= top - 1e-12 * max(1.0, abs(top)))


def fold_counts(paths: PathSet, n_folds: int, seed: int | None) -> tuple[FloatArray, FloatArray]:
    """Each path's conversions and nulls dealt to folds, shape ``(n_paths, n_folds)``.

    The path's journeys (conversions first, then nulls) are laid on a circle of
    ``n_folds`` unit slots from a seeded-hash offset; each fold receives the
    length that falls in its slot, so fractional counts split too.
    """
    rng = np.random.default_rng(seed)
    longest = int(paths.lengths.max()) if paths.n_paths else 0
    mix = rng.integers(1, 2**63, size=longest + 1, dtype=np.uint64) | np.uint64(1)
    h = _label_hashes(paths)[paths.states] * mix[paths.position]
    hashed = np.zeros(paths.n_paths, dtype=np.uint64)
    if paths.n_paths:
        hashed = np.add.reduceat(h, paths.offsets[:-1]) ^ (
            paths.lengths.astype(np.uint64) * mix[-1]
        )
    start = ((hashed >> np.uint64(33)) % np.uint64(n_folds)).astype(np.float64)
    mid = start + paths.conversions
    end = mid + paths.nulls
    return _dealt(start, mid, n_folds), _dealt(mid, end, n_folds)


def _label_hashes(paths: PathSet) -> NDArray[np.uint64]:
    """A 64-bit hash of each base state's name: codes depend on row order, names do not."""
    out = np.empty(paths.n_states, dtype=np.uint64)
    for state in range(paths.n_states):
        channel, stage = _state_label(paths, state)
        text = f"{channel}\x1f{stage or ''}".encode()
        out[state] = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")
    return out


def _dealt(a: FloatArray, b: FloatArray, k: int) -> FloatArray:
    """Length of ``[a, b)`` falling in fold ``j``'s slots ``[j + k m, j + 1 + k m)``."""
    j = np.arange(k, dtype=np.float64)

    def cum(x: FloatArray) -> FloatArray:
        cycles = np.floor(x / k)
        return np.asarray(
            cycles[:, None] + np.clip((x - k * cycles)[:, None] - j, 0.0, 1.0), dtype=np.float64
        )

    return cum(b) - cum(a)


def _last_window_ids(paths: PathSet, order: int) -> IntArray:
    """Dense id of the state (window) each path ends in."""
    ends = paths.offsets[1:] - 1
    radix = paths.n_states + 1
    codes = paths.states[ends] + 1
    lengths = paths.lengths
    for back in range(1, order):
        valid = lengths > back
        digit = np.where(valid, paths.states[np.where(valid, ends - back, 0)] + 1, 0)
        codes = codes + digit * radix**back
    _, ids = np.unique(codes, return_inverse=True)
    return np.asarray(ids, dtype=np.int64)


def _smoothed_rate(last: IntArray, conv: FloatArray, nulls: FloatArray) -> FloatArray:
    """Training conversion rate of each path's last state, smoothed by one journey."""
    n = int(last.max()) + 1 if len(last) else 0
    c = np.bincount(last, conv, minlength=n)
    w = c + np.bincount(last, nulls, minlength=n)
    prior = (c.sum() + 0.5) / (w.sum() + 1.0)
    rate = (c + prior) / (w + 1.0)
    return np.asarray(rate[last], dtype=np.float64)
