"""Heuristic attribution models: first touch, last touch, linear, position-based, time decay.

These are the rule-based baselines every attribution tool ships. Each one is a rule
that splits a path's conversions and value over its touches; the split is computed
for every touch at once as a weight vector (the weights of a path sum to 1) and
turned into credit by :func:`attribution.result.credit_from_touch_weights`. No model
loops over paths or touches in Python: per-path quantities are segment sums,
minima and maxima over ``paths.path_index`` / ``paths.offsets``.

With stages, credit goes to the touch's channel-stage pair, so the channel and stage
tables are the marginals of the channel-by-stage table.

References
----------
.. [1] X. Shao and L. Li, "Data-driven multi-touch attribution models", Proceedings of
   the 17th ACM SIGKDD International Conference on Knowledge Discovery and Data Mining,
   pp. 258-264, 2011.
.. [2] P. K. Kannan, W. Reinartz and P. C. Verhoef, "The path to purchase and
   attribution modeling: Introduction to special section", International Journal of
   Research in Marketing, 33(3), pp. 449-456, 2016.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .exceptions import InvalidParameter, MissingData
from .params import Param, check_params
from .paths import FloatArray, PathSet
from .result import Credit, credit_from_touch_weights

SECONDS_PER_DAY = 86_400.0

_SHARE = Param("float", low=0.0, high=1.0)

# Counting a state's touches per path with a dense bincount over (path, state) codes
# is the fast way while that code space stays within a few times the number of
# touches; beyond it the dense array costs more memory than a sort costs time.
_DENSE_KEYS_PER_TOUCH = 4
_DENSE_KEYS_MIN = 1 << 16


@dataclass(frozen=True)
class FirstTouch:
    """All of a path's credit to its first touch.

    Notes
    -----
    A path's conversions and value go entirely to the channel (and stage) of its
    first touch. The per-journey split gives the first touch everything and every
    other touch zero. ``collapse_repeats`` does not change the channel credit: the
    first run of a path stays in the same state.

    References
    ----------
    Shao and Li (2011); Kannan, Reinartz and Verhoef (2016): cited in full in the
    module docstring.
    """

    name: ClassVar[str] = "first_touch"
    _constraints: ClassVar[Mapping[str, Param]] = {}

    def attribute(self, paths: PathSet) -> Credit:
        weights = (paths.position == 0).astype(np.float64)
        return credit_from_touch_weights(self.name, paths, weights)


@dataclass(frozen=True)
class LastTouch:
    """All of a path's credit to its last touch.

    Notes
    -----
    A path's conversions and value go entirely to the channel (and stage) of its
    last touch, the one closest to the conversion. The per-journey split gives the
    last touch everything. ``collapse_repeats`` does not change the channel credit:
    the merged touch of the last run is in the same state.

    References
    ----------
    Shao and Li (2011); Kannan, Reinartz and Verhoef (2016): cited in full in the
    module docstring.
    """

    name: ClassVar[str] = "last_touch"
    _constraints: ClassVar[Mapping[str, Param]] = {}

    def attribute(self, paths: PathSet) -> Credit:
        weights = np.zeros(len(paths.tokens))
        weights[paths.offsets[1:] - 1] = 1.0
        return credit_from_touch_weights(self.name, paths, weights)


@dataclass(frozen=True)
class Linear:
    """Equal credit to every touch, or to every distinct channel, of a path.

    Parameters
    ----------
    per : {"touch", "channel"}, default "touch"
        ``"touch"``: each of a path's ``n`` touches gets ``1/n`` of it.
        ``"channel"``: each of the path's ``k`` distinct channels (with stages:
        distinct channel-stage pairs) gets ``1/k``, so a channel touched three
        times earns no more than one touched once.

    Notes
    -----
    Per touch, a touch of a path of length ``n`` gets ``1/n`` of the path's
    conversions and value. Per channel, a touch whose state occurs ``m`` times in a
    path with ``k`` distinct states gets ``1/(k m)``: its state's ``1/k`` split
    equally over that state's touches; this is the per-journey split, and the same
    rule as the exact Shapley value of the conversions game of Zhao et al. (the
    ``shapley_simple`` model). ``collapse_repeats`` changes ``per="touch"`` credit
    (a run of repeats counts once); with ``per="channel"`` it changes only how a
    state's share is spread over its touches, not the channel credit.

    References
    ----------
    Shao and Li (2011); Kannan, Reinartz and Verhoef (2016): cited in full in the
    module docstring.
    """

    per: str = "touch"

    name: ClassVar[str] = "linear"
    _constraints: ClassVar[Mapping[str, Param]] = {
        "per": Param("choice", choices=("touch", "channel")),
    }

    def __post_init__(self) -> None:
        check_params(self)

    def attribute(self, paths: PathSet) -> Credit:
        if self.per == "touch":
            weights = 1.0 / paths.lengths[paths.path_index]
        else:
            weights = _per_state_weights(paths)
        return credit_from_touch_weights(
            self.name, paths, weights.astype(np.float64), details={"per": self.per}
        )


@dataclass(frozen=True)
class PositionBased:
    """Fixed shares to the first and last touches, the rest equally over the middle.

    Parameters
    ----------
    first_share : float in [0, 1], default 0.4
        Share of the first touch.
    last_share : float in [0, 1], default 0.4
        Share of the last touch; ``first_share + last_share`` must be at most 1.

    Notes
    -----
    For a path of ``n >= 3`` touches the first touch gets ``first_share``, the last
    ``last_share``, and each of the ``n - 2`` middle touches
    ``(1 - first_share - last_share) / (n - 2)``. A single touch gets everything.
    Two touches have no middle, so the middle share would be lost: they split the
    path in proportion ``first_share : last_share`` (half each when both are 0),
    which keeps credit summing to the total. The default 40/20/40 is the "U-shaped"
    model. These weights are the per-journey split. ``collapse_repeats`` changes the
    model: it shortens paths, which moves touches out of the middle.

    References
    ----------
    Shao and Li (2011); Kannan, Reinartz and Verhoef (2016): cited in full in the
    module docstring.
    """

    first_share: float = 0.4
    last_share: float = 0.4

    name: ClassVar[str] = "position_based"
    _constraints: ClassVar[Mapping[str, Param]] = {
        "first_share": _SHARE,
        "last_share": _SHARE,
    }

    def __post_init__(self) -> None:
        check_params(self)
        room = 1.0 - self.first_share
        # the float sum of two valid shares may exceed 1 by an ulp (0.7 + 0.3)
        if self.first_share + self.last_share > 1.0 + 1e-12:
            raise InvalidParameter(
                "last_share",
                self.last_share,
                f"a number in [0, {room:g}] (first_share + last_share must be at most 1)",
            )

    def attribute(self, paths: PathSet) -> Credit:
        n = paths.lengths[paths.path_index]
        pos = paths.position
        first, last = self.first_share, self.last_share
        ends = first + last
        two_first = 0.5 if ends == 0 else first / ends
        middle = max(1.0 - ends, 0.0) / np.maximum(n - 2, 1)
        weights = np.select(
            [n == 1, n == 2, pos == 0, pos == n - 1],
            [1.0, np.where(pos == 0, two_first, 1.0 - two_first), first, last],
            default=middle,
        )
        details = {"first_share": first, "last_share": last}
        return credit_from_touch_weights(
            self.name, paths, weights.astype(np.float64), details=details
        )


@dataclass(frozen=True)
class TimeDecay:
    """Credit halving with every half-life a touch lies before the conversion.

    Parameters
    ----------
    half_life_days : float > 0, default 7.0
        Days after which a touch's weight halves (7 days is the usual default).

    Notes
    -----
    A touch of age ``a`` days — the path's conversion time minus the touch's time —
    has weight ``2 ** (-a / half_life_days)``; a path's weights are normalised to sum
    to 1, and these are the per-journey split. Without ``conversion_times``, or for a
    path that did not convert (it carries no credit anyway), ages are measured back
    from the path's latest touch. A touch timed after the conversion (clock skew,
    post-purchase touches) counts as age 0 rather than outweighing the conversion.
    The path's most recent touch is the reference of the exponent, which cancels in
    the normalisation and keeps old paths from underflowing to zero weight.

    Needs per-touch ``times``: aggregated paths have none, and asking raises
    :class:`~attribution.exceptions.MissingData`. ``collapse_repeats`` changes the
    model: a run of repeats becomes one touch at the time of its last touch.

    References
    ----------
    Shao and Li (2011); Kannan, Reinartz and Verhoef (2016): cited in full in the
    module docstring.
    """

    half_life_days: float = 7.0

    name: ClassVar[str] = "time_decay"
    _constraints: ClassVar[Mapping[str, Param]] = {
        "half_life_days": Param("float", low=0.0, high=math.inf, open_low=True, open_high=True),
    }

    def __post_init__(self) -> None:
        check_params(self)

    def attribute(self, paths: PathSet) -> Credit:
        if paths.times is None:
            raise MissingData(
                "time_decay needs the time of every touch, and this path set has none "
                "(aggregated paths carry no times): build it from journeys with times"
            )
        if paths.n_paths == 0:
            weights = np.zeros(0)
        else:
            exponent = -_ages_days(paths, paths.times) / self.half_life_days
            # shift each path so its most recent touch has weight 1: the sum is then
            # at least 1, and the shift cancels when normalising
            top = np.maximum.reduceat(exponent, paths.offsets[:-1])
            raw = np.exp2(exponent - top[paths.path_index])
            total = np.bincount(paths.path_index, raw, minlength=paths.n_paths)
            weights = raw / total[paths.path_index]
        details = {"half_life_days": self.half_life_days}
        return credit_from_touch_weights(self.name, paths, weights, details=details)


# ---------------------------------------------------------------------- per-touch building blocks
def _per_state_weights(paths: PathSet) -> FloatArray:
    """Weights ``1 / (k m)``: ``k`` distinct states in the path, ``m`` touches of this one."""
    inverse_count = 1.0 / _state_counts_in_path(paths)
    # each distinct state contributes m * (1/m) = 1, so the sum counts distinct states
    distinct = np.rint(np.bincount(paths.path_index, inverse_count, minlength=paths.n_paths))
    weights: FloatArray = inverse_count / distinct[paths.path_index]
    return weights


def _state_counts_in_path(paths: PathSet) -> FloatArray:
    """For each touch, how many touches of its path are in its state."""
    key = paths.path_index * paths.n_states + paths.states
    n_keys = paths.n_paths * paths.n_states
    if n_keys <= _DENSE_KEYS_PER_TOUCH * len(key) + _DENSE_KEYS_MIN:
        dense: FloatArray = np.bincount(key, minlength=n_keys)[key].astype(np.float64)
        return dense
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    sparse: FloatArray = counts[inverse].astype(np.float64)
    return sparse


def _ages_days(paths: PathSet, times: FloatArray) -> FloatArray:
    """Age of every touch in days, back from its path's conversion (or latest touch)."""
    end = np.maximum.reduceat(times, paths.offsets[:-1])
    if paths.conversion_times is not None:
        converted = ~np.isnan(paths.conversion_times)
        end = np.where(converted, paths.conversion_times, end)
    ages: FloatArray = np.maximum(end[paths.path_index] - times, 0.0) / SECONDS_PER_DAY
    return ages
