"""The data-driven model: a fitted conversion model, credited by per-path Shapley values.

What the ad platforms call "data-driven attribution": learn how the touches of a
journey change its chance to convert, then give each converting journey's
conversions and value to its touches by how much each raised that chance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from ._logistic import Coefficients, Features, design, fit, predict, unpack
from ._order_choice import fold_counts
from ._path_games import PathShares, path_shares
from ._scores import FoldScores, fold_scores
from .params import Param, check_params
from .paths import PathSet
from .result import Credit, credit_from_touch_weights

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

NEGATIVE_WARNING = (
    "Some channels lower the fitted chance to convert on some converting journeys and "
    "get negative credit there; the journeys' totals are still shared out exactly."
)


@dataclass(frozen=True)
class DataDriven:
    """Shapley values of a regularised logistic conversion model, path by path.

    Parameters
    ----------
    alpha : float, default 1.0
        Strength of the L2 penalty on the weights, in units of the log-loss summed
        over journeys: it matters on small data and fades as journeys grow.
    repeats : bool, default True
        Use log(touches per channel) as features, not only presence.
    position : bool, default True
        Use the channels of the first and the last touch as features.
    pairwise : bool, default False
        Add a feature per pair of channels present together (synergy).
    max_exact_players : int, default 16
        Paths with up to this many players are solved over every coalition; longer
        ones by permutation sampling. At most 20.
    n_samples : int, default 1000
        Permutations per sampled path.
    n_folds : int, default 5
        Folds of the held-out scores reported in ``details["held_out"]``.
    random_state : int or None, default 0
        Seed of the permutations and of the folds.

    Notes
    -----
    The conversion model is a logistic regression of "the journey converted" on
    the features of its path (:mod:`attribution._logistic`): channel presence,
    repeats, first and last touch, stage and channel-stage presence when the set
    has stages, and optional pairwise terms. It is fitted by Newton's method to the
    unique paths weighted by their conversions and nulls, with an L2 penalty.

    Players are the states (channels, or channel-stage pairs with stages). For a
    converting path with players N, the worth of a coalition S is the fitted
    probability of the path keeping only the touches of players in S, and the
    empty path is worth 0 (a journey without touches is never observed, so all
    of a path's conversions go to its touches). A player's share of the path is
    its Shapley value over the worth of the path, ``phi_j / p(N)``, so the shares
    sum to 1 on every path (efficiency per path) and the path's conversions and
    value are split by them. Exact over the ``2**n`` coalitions up to
    ``max_exact_players``; sampled beyond, with each grid entry's standard error
    in ``details["standard_error"]`` (conversions). A player can lower the fitted
    probability and so get a negative share; the result warns when it does.

    A channel on no converting path gets exactly zero, whatever the penalty:
    only converting paths are shared out, and only among their own players.

    Per-journey split: a player's share of its path, divided equally among its
    touches in the path. ``collapse_repeats`` changes the credit when
    ``repeats`` is on (it changes the counts).

    ``details``: ``coefficients`` (the fitted weights by feature block),
    ``held_out`` (log-loss, Brier score and ROC AUC of ``n_folds``-fold held-out
    predictions, pooled, per fold and with an interval across folds: see
    :func:`attribution.holdout.validate`), ``games`` (distinct games solved) and
    ``sampled_paths``.

    References
    ----------
    .. [1] L. S. Shapley, "A value for n-person games", 1953.
    .. [2] X. Shao, L. Li, "Data-driven multi-touch attribution models", KDD 2011.
    .. [3] Google Ads Help, "About data-driven attribution" (counterfactual gains
       of each touch, shared by Shapley values).
    """

    alpha: float = 1.0
    repeats: bool = True
    position: bool = True
    pairwise: bool = False
    max_exact_players: int = 16
    n_samples: int = 1000
    n_folds: int = 5
    random_state: int | None = 0

    name: ClassVar[str] = "data_driven"
    _constraints: ClassVar[Mapping[str, Param]] = {
        "alpha": Param("float", 0.0, 1e9, open_low=True),
        "repeats": Param("bool"),
        "position": Param("bool"),
        "pairwise": Param("bool"),
        "max_exact_players": Param("int", 1, 20),
        "n_samples": Param("int", 2, 100_000),
        "n_folds": Param("int", 2, 20),
        "random_state": Param("seed"),
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def features(self) -> Features:
        return Features(repeats=self.repeats, position=self.position, pairwise=self.pairwise)

    def attribute(self, paths: PathSet) -> Credit:
        """Fit, share each converting path by Shapley values, and score held out."""
        credit, w = self._credit(paths)
        held = self.held_out(paths, w)
        return _with_details(credit, held_out=_held_out_details(held))

    def attribute_replicate(self, paths: PathSet) -> Credit:
        """The credit alone, for bootstrap replicates: their held-out scores are unused."""
        return self._credit(paths)[0]

    # ------------------------------------------------------------------ fitting
    def matrix(self, paths: PathSet) -> sp.csr_array:
        """The design matrix of ``paths``, derived once per set of touches."""
        key = f"data_driven_design:{self.repeats}:{self.position}:{self.pairwise}"
        matrix: sp.csr_array = paths.derived(key, lambda p: design(p, self.features))
        return matrix

    def fit(self, paths: PathSet) -> Coefficients:
        """The fitted conversion model of ``paths``."""
        w = fit(self.matrix(paths), paths.conversions, paths.nulls, self.alpha)
        return unpack(paths, self.features, w)

    def held_out(self, paths: PathSet, start: FloatArray | None = None) -> FoldScores:
        """Scores of predictions for each fold from a model fitted to the other folds
        (the folds of :func:`attribution.holdout.validate` with this seed)."""
        conv_f, null_f = fold_counts(paths, self.n_folds, self.random_state)
        return fold_scores(self.fold_predictions(paths, conv_f, null_f, start), conv_f, null_f)

    def fold_predictions(
        self,
        paths: PathSet,
        conv_f: FloatArray,
        null_f: FloatArray,
        start: FloatArray | None = None,
    ) -> FloatArray:
        """Each path's fitted probability from each fold's training set, ``(n_paths, k)``.

        ``start`` (the weights fitted to all folds) only speeds the fits up: each
        converges to its own unique optimum from anywhere, so each fold starts from
        the previous fold's weights, which differ little.
        """
        x = self.matrix(paths)
        out = np.empty((paths.n_paths, conv_f.shape[1]))
        for f in range(conv_f.shape[1]):
            train_c, train_n = paths.conversions - conv_f[:, f], paths.nulls - null_f[:, f]
            start = fit(x, train_c, train_n, self.alpha, start=start)
            out[:, f] = predict(x, start)
        return out

    def _credit(self, paths: PathSet) -> tuple[Credit, FloatArray]:
        x = self.matrix(paths)
        w = fit(x, paths.conversions, paths.nulls, self.alpha)
        coef = unpack(paths, self.features, w)
        rows = np.flatnonzero(paths.conversions > 0).astype(np.int64)
        rng = np.random.default_rng(self.random_state)
        shares = path_shares(
            paths, rows, coef, self.features, self.max_exact_players, self.n_samples, rng
        )
        weights = _touch_weights(paths, shares)
        warnings: tuple[str, ...] = ()
        if (shares.share < 0).any():
            warnings += (NEGATIVE_WARNING,)
        details: dict[str, Any] = {
            "coefficients": _coefficient_details(paths, coef),
            "games": shares.games,
            "sampled_paths": shares.sampled,
            "method": "exact" if not shares.sampled else "exact and permutation sampling",
        }
        if shares.sampled:
            details["standard_error"] = _standard_error(paths, shares)
            warnings += (
                f"{shares.sampled} converting paths have more than max_exact_players="
                f"{self.max_exact_players} players: their shares are estimated from "
                f"{self.n_samples} random permutations (seed {self.random_state}).",
            )
        credit = credit_from_touch_weights(
            self.name, paths, weights, warnings=warnings, details=details
        )
        return credit, w


def _touch_weights(paths: PathSet, shares: PathShares) -> FloatArray:
    """Per-touch weights summing to 1 on each path: a player's share split over its
    touches; paths not shared out (no conversions) split equally, which moves nothing."""
    weights = 1.0 / paths.lengths[paths.path_index]
    if len(shares.path) == 0:
        return weights
    key = shares.path * paths.n_states + shares.state
    order = np.argsort(key)
    touch_key = paths.path_index * paths.n_states + paths.states
    converting = paths.conversions[paths.path_index] > 0
    at = np.searchsorted(key[order], touch_key[converting])
    touches = np.bincount(at, minlength=len(key)).astype(np.float64)
    weights[converting] = shares.share[order][at] / touches[at]
    return weights


def _standard_error(paths: PathSet, shares: PathShares) -> FloatArray:
    """Standard error of each grid entry's conversions, paths sampled independently."""
    amount = paths.conversions[shares.path] * shares.error
    flat = np.bincount(shares.state, amount**2, minlength=paths.n_states)
    return np.sqrt(flat).reshape(paths.n_channels, paths.n_stage_columns)


def _coefficient_details(paths: PathSet, coef: Coefficients) -> dict[str, Any]:
    """The fitted weights by block, keyed by channel (stage, pair) name."""
    names = paths.channel_names
    out: dict[str, Any] = {"intercept": coef.intercept}
    for block in ("presence", "repeats", "first", "last"):
        out[block] = dict(zip(names, getattr(coef, block).tolist(), strict=True))
    if paths.stage_names is not None:
        out["stage"] = dict(zip(paths.stage_names, coef.stage.tolist(), strict=True))
    return out


def _held_out_details(held: FoldScores) -> dict[str, Any]:
    return {
        "scores": held.pooled,
        "low": held.low,
        "high": held.high,
        "level": held.level,
        "folds": held.folds,
    }


def _with_details(credit: Credit, **extra: Any) -> Credit:
    return replace(credit, details={**credit.details, **extra})
