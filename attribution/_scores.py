"""Held-out scores of predicted conversion probabilities on grouped counts.

Predictions are per unique path; the held-out journeys are the path's converting
and non-converting counts in a fold, so every score is a weighted one. The same
functions score ``Markov(order="auto")``, ``data_driven``'s held-out scores and
:func:`attribution.holdout.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

FloatArray = NDArray[np.float64]

P_FLOOR = 1e-12
"""Predictions are clipped to [P_FLOOR, 1 - P_FLOOR] before the log-loss."""

METRICS = ("log_loss", "brier", "auc")


def log_loss(p: FloatArray, conv: FloatArray, nulls: FloatArray) -> float:
    """Mean negative log-likelihood per journey (natural log); NaN with no journeys."""
    total = float(conv.sum() + nulls.sum())
    if total <= 0:
        return float("nan")
    q = np.clip(p, P_FLOOR, 1.0 - P_FLOOR)
    return -float(conv @ np.log(q) + nulls @ np.log1p(-q)) / total


def brier(p: FloatArray, conv: FloatArray, nulls: FloatArray) -> float:
    """Mean squared difference between prediction and outcome, per journey; NaN with
    no journeys."""
    total = float(conv.sum() + nulls.sum())
    if total <= 0:
        return float("nan")
    return float(conv @ (1.0 - p) ** 2 + nulls @ p**2) / total


def auc(p: FloatArray, conv: FloatArray, nulls: FloatArray) -> float:
    """Area under the ROC curve: the chance a converting journey is scored above a
    non-converting one, ties counting one half; NaN when either kind is missing.

    Sorted once by score; each distinct score's converting journeys win over the
    non-converting journeys scored strictly lower and tie with those scored equal.
    """
    pos, neg = float(conv.sum()), float(nulls.sum())
    if pos <= 0 or neg <= 0:
        return float("nan")
    scores, group = np.unique(p, return_inverse=True)
    c = np.bincount(group, conv, minlength=len(scores))
    n = np.bincount(group, nulls, minlength=len(scores))
    below = np.cumsum(n) - n
    return float(c @ (below + 0.5 * n)) / (pos * neg)


def score(p: FloatArray, conv: FloatArray, nulls: FloatArray) -> dict[str, float]:
    """All of :data:`METRICS` for one set of predictions."""
    return {
        "log_loss": log_loss(p, conv, nulls),
        "brier": brier(p, conv, nulls),
        "auc": auc(p, conv, nulls),
    }


@dataclass(frozen=True)
class FoldScores:
    """A model's held-out scores: pooled over every held-out journey, per fold, and an
    interval from the spread across folds.

    The interval is ``pooled +- t * sd(fold scores) / sqrt(k)`` with ``t`` the
    Student quantile for ``k - 1`` degrees of freedom. Folds share training data, so
    their scores are not independent and the interval is an approximation
    (Bengio and Grandvalet, 2004): read it as the scale of the fold-to-fold
    noise, not as an exact coverage.
    """

    pooled: dict[str, float]
    folds: list[dict[str, float]]
    low: dict[str, float]
    high: dict[str, float]
    level: float


def fold_scores(
    predictions: FloatArray, conv_f: FloatArray, null_f: FloatArray, level: float = 0.95
) -> FoldScores:
    """Scores of per-fold predictions ``(n_paths, k)`` against held-out counts ``(n_paths, k)``.

    Each column of ``predictions`` comes from a model fitted without that fold.
    """
    k = predictions.shape[1]
    folds = [score(predictions[:, f], conv_f[:, f], null_f[:, f]) for f in range(k)]
    pooled = score(predictions.ravel(), conv_f.ravel(), null_f.ravel())
    t = float(stats.t.ppf(0.5 + level / 2.0, max(k - 1, 1)))
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    for metric in METRICS:
        values = np.array([f[metric] for f in folds])
        values = values[np.isfinite(values)]
        half = t * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else np.nan
        low[metric], high[metric] = pooled[metric] - half, pooled[metric] + half
    return FoldScores(pooled, folds, low, high, level)
