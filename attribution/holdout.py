"""Which model predicts conversion best on this data: a k-fold holdout by journey.

Every model that implies a conversion probability for a path is fitted on k - 1
folds of the journeys and scored on the fold left out: the Markov chain of each
order, and the data-driven model's logistic fit. Models that only share out
credit (the heuristics and the Shapley games) make no prediction of whether a
journey converts, and are listed with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._order_choice import fold_counts, markov_predictions
from ._scores import METRICS, FoldScores, fold_scores
from .data_driven import DataDriven
from .exceptions import InvalidParameter
from .markov import ORDERS
from .params import Param
from .paths import PathSet

FloatArray = NDArray[np.float64]

CONSTRAINTS: Mapping[str, Param] = {
    "n_folds": Param("int", 2, 10),
    "random_state": Param("seed"),
    "level": Param("float", 0.5, 1.0, open_low=True, open_high=True),
}
"""What each parameter of :func:`validate` may be."""

NOT_PREDICTING: Mapping[str, str] = {
    "first_touch": "a rule that shares out conversions; it predicts nothing",
    "last_touch": "a rule that shares out conversions; it predicts nothing",
    "linear": "a rule that shares out conversions; it predicts nothing",
    "position_based": "a rule that shares out conversions; it predicts nothing",
    "time_decay": "a rule that shares out conversions; it predicts nothing",
    "shapley": "shares the chain's overall conversion probability among channels; "
    "its prediction for a path is the Markov chain's, scored as markov order 1",
    "shapley_simple": "shares observed conversions among each journey's channels; "
    "it predicts nothing",
    "shapley_rate": "a game over observed conversion rates of channel sets, not a "
    "prediction for a path",
    "shapley_ordered": "shares observed conversions among each journey's channels; "
    "it predicts nothing",
}
"""Registered models that are not scored, and why."""


@dataclass(frozen=True)
class Validation:
    """Held-out scores of every predicting model on one path set.

    ``scores`` maps a label (``"markov"`` with its ``order``, or ``"data_driven"``)
    to its :class:`~attribution._scores.FoldScores`; :meth:`rows` gives them as a
    table.
    """

    n_folds: int
    random_state: int | None
    level: float
    journeys: float
    scores: Mapping[tuple[str, int | None], FoldScores]
    not_scored: Mapping[str, str] = field(default_factory=lambda: dict(NOT_PREDICTING))

    def rows(self) -> list[dict[str, Any]]:
        """One row per model and metric: pooled score, interval, per-fold values, and
        the model's rank on that metric (1 is best: lowest log-loss and Brier score,
        highest AUC)."""
        out: list[dict[str, Any]] = []
        for metric in METRICS:
            ranks = _ranks({k: v.pooled[metric] for k, v in self.scores.items()}, metric)
            for (model, order), s in self.scores.items():
                out.append(
                    {
                        "model": model,
                        "order": order,
                        "metric": metric,
                        "value": _number(s.pooled[metric]),
                        "ci_low": _number(s.low[metric]),
                        "ci_high": _number(s.high[metric]),
                        "folds": [_number(f[metric]) for f in s.folds],
                        "rank": ranks[(model, order)],
                    }
                )
        return out


def validate(
    paths: PathSet,
    *,
    n_folds: int = 5,
    random_state: int | None = 0,
    orders: tuple[int, ...] = ORDERS,
    data_driven: DataDriven | None = None,
    level: float = 0.95,
) -> Validation:
    """Score every predicting model by k-fold holdout on the journeys of ``paths``.

    Parameters
    ----------
    paths : PathSet
        Aggregated paths; their journeys (conversions and nulls) are dealt to folds.
    n_folds : int, default 5
        Folds, 2 to 10.
    random_state : int or None, default 0
        Seed of the fold assignment; ``Markov(order="auto")`` with the same folds and
        seed picks the order with the lowest pooled log-loss reported here.
    orders : tuple of int, default (1, 2, 3, 4)
        Markov orders scored.
    data_driven : DataDriven, optional
        The data-driven model whose fit is scored (its default options if None).
    level : float, default 0.95
        Level of the intervals across folds.

    Notes
    -----
    Folds split journeys, never a journey: each unique path's conversions and nulls
    are dealt round-robin to the folds from a seeded hash of the path
    (:func:`attribution._order_choice.fold_counts`), so the fold sizes differ by at
    most one journey per path and no journey is in two folds. A model's prediction
    for a path in fold f comes from the model fitted to the other folds only:

    - Markov of order k: the probability that a walk of the chain which has made
      the path's touches is absorbed in conversion rather than in null. The
      transitions before the last state are common to both outcomes and cancel, so
      it is the training folds' share of conversions among absorptions from the
      path's last window, smoothed by one journey towards the overall rate (the
      product of transition probabilities along the path is the path's
      likelihood, not its chance to convert).
    - data_driven: the logistic model's fitted probability for the path.

    Scores are per held-out journey: log-loss (natural log, lower is better),
    Brier score (lower is better) and ROC AUC (higher is better; ties count one
    half). Each is pooled over every held-out journey (each journey is predicted
    once), with an interval ``pooled +- t * sd(fold scores) / sqrt(k)`` across
    folds (Student t, k - 1 degrees of freedom). Folds share training journeys, so
    their scores are correlated and the interval is indicative, not exact.
    Differences between models are paired: every model sees the same folds.

    References
    ----------
    .. [1] T. Hastie, R. Tibshirani, J. Friedman, *The Elements of Statistical
       Learning*, 2nd ed., Springer, 2009, section 7.10 (cross-validation).
    .. [2] Y. Bengio, Y. Grandvalet, "No unbiased estimator of the variance of
       k-fold cross-validation", JMLR 5, 2004.
    .. [3] G. W. Brier, "Verification of forecasts expressed in terms of
       probability", Monthly Weather Review 78(1), 1950.
    """
    for name, value in (("n_folds", n_folds), ("random_state", random_state), ("level", level)):
        if not CONSTRAINTS[name].accepts(value):
            raise InvalidParameter(name, value, CONSTRAINTS[name].describe())
    if not orders or any(isinstance(k, bool) or k not in ORDERS for k in orders):
        raise InvalidParameter("orders", orders, "a non-empty list of integers in [1, 4]")
    model = data_driven or DataDriven()
    conv_f, null_f = fold_counts(paths, n_folds, random_state)
    scores: dict[tuple[str, int | None], FoldScores] = {}
    for order in sorted(set(orders)):
        p = markov_predictions(paths, order, conv_f, null_f)
        scores[("markov", order)] = fold_scores(p, conv_f, null_f, level)
    p = model.fold_predictions(paths, conv_f, null_f)
    scores[("data_driven", None)] = fold_scores(p, conv_f, null_f, level)
    return Validation(
        n_folds=n_folds,
        random_state=random_state,
        level=level,
        journeys=paths.total_conversions + paths.total_nulls,
        scores=scores,
    )


def _ranks(values: Mapping[tuple[str, int | None], float], metric: str) -> dict[Any, int | None]:
    """Rank 1 for the best value of ``metric``; None where it is undefined (NaN)."""
    sign = -1.0 if metric == "auc" else 1.0
    finite = sorted((sign * v, k) for k, v in values.items() if np.isfinite(v))
    ranks: dict[Any, int | None] = dict.fromkeys(values)
    for place, (_, key) in enumerate(finite, start=1):
        ranks[key] = place
    return ranks


def _number(x: float) -> float | None:
    """A score as JSON can carry it: None for NaN (AUC without both outcomes)."""
    return float(x) if np.isfinite(x) else None
