"""Shapley-value attribution: four cooperative games over the journeys' players.

Players are the path set's states: channels, or channel-stage pairs when the set
has stages (channel-campaign pairs in a campaign set), so credit lands on the
channel-by-stage (or channel-by-campaign) grid and the other tables are its
marginals. Every model here satisfies efficiency: the grids sum to
the total conversions and the total value.

=================== ==========================================================
``shapley``         v(S) = conversion probability of the order-1 Markov chain
                    with every player outside S removed (exact up to
                    ``max_exact_players``, permutation sampling beyond).
``shapley_simple``  v(S) = conversions of journeys whose players all lie in S
                    (Zhao et al.); closed form, linear time.
``shapley_ordered`` ``shapley_simple`` credit, also broken down by touch position.
``shapley_rate``    v(S) = conversion rate of journeys whose players all lie in
                    S (Dalessandro et al.); exact by subset-sum transforms.
=================== ==========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ._coalitions import (
    ChainGame,
    exact_shapley,
    path_masks,
    player_codes,
    rate_values,
    touch_split,
)
from .chain import build_chain
from .exceptions import InvalidParameter
from .params import Param, check_params
from .paths import PathSet
from .result import Credit, credit_from_touch_weights, no_null_warning, state_grid

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

RATE_WARNING = (
    "shapley_rate estimates each player set's conversion rate from the journeys with "
    "exactly those players: rare player sets make it noisy, and a player can get "
    "negative credit."
)


# ---------------------------------------------------------------------- models
@dataclass(frozen=True)
class ShapleySimple:
    """Shapley values of the conversions game (Zhao et al. 2018), in closed form.

    Notes
    -----
    The game is v(S) = conversions of the journeys whose set of distinct players
    lies within S. It is a sum of unanimity games, one per player set T weighted by
    conversions(T), the conversions of journeys whose player set is exactly T. The
    Shapley value of a unanimity game gives 1/|T| to each member of T, so

        phi_j = sum over player sets T containing j of conversions(T) / |T|,

    which is the same as splitting each journey's conversions equally among its
    distinct players: linear time in the number of touches, for any number of
    players. Value uses the same game with conversion value in place of
    conversions.

    Per-journey split: each path's conversions and value are split equally among
    its distinct players, and a player's share equally among its touches in the
    path. Summed over paths, the split gives the grid exactly.

    ``collapse_repeats`` does not change the credit, which depends only on each
    path's set of players; it changes the per-journey split (fewer touches share a
    player's part).

    References
    ----------
    .. [1] L. S. Shapley, "A value for n-person games", Contributions to the Theory
       of Games II, 1953.
    .. [2] K. Zhao, S. H. Mahboobi, S. R. Bagheri, "Shapley Value Methods for
       Attribution Modeling in Online Advertising", arXiv:1804.05327, 2018.
    """

    name: ClassVar[str] = "shapley_simple"
    _constraints: ClassVar[Mapping[str, Param]] = {}

    def __post_init__(self) -> None:
        check_params(self)

    def attribute(self, paths: PathSet) -> Credit:
        """Credit of each player: its equal share of every journey it is in."""
        weights = touch_split(paths, None)
        return credit_from_touch_weights(self.name, paths, weights)


@dataclass(frozen=True)
class ShapleyOrdered:
    """Zhao et al.'s ordered Shapley values: credit per player and touch position.

    Parameters
    ----------
    max_position : int, default 10
        Positions from this one on share the last bucket (``"10+"``).

    Notes
    -----
    Within the conversions game of :class:`ShapleySimple`, each journey's
    conversions are split equally among its distinct players and a player's share
    equally among its touches; a touch's part is then credited to the player at
    that touch's position (1-based, counted over all touches of the path). The
    per-player totals and the per-journey split are exactly those of
    ``shapley_simple``; the extra is ``details["by_position"]``, an array
    ``(n_states, max_position)`` of conversions credited to each player (row =
    state code, ``channel * n_stage_columns + stage``) at each position, with
    ``details["by_position_value"]`` the same for value and
    ``details["position_labels"]`` naming the columns. Rows sum to the grid.

    ``collapse_repeats`` leaves the per-player totals unchanged but moves credit
    between positions: merged runs shorten paths, so later touches move forward.

    References
    ----------
    .. [1] L. S. Shapley, "A value for n-person games", 1953.
    .. [2] K. Zhao, S. H. Mahboobi, S. R. Bagheri, "Shapley Value Methods for
       Attribution Modeling in Online Advertising", arXiv:1804.05327, 2018.
    """

    max_position: int = 10

    name: ClassVar[str] = "shapley_ordered"
    _constraints: ClassVar[Mapping[str, Param]] = {"max_position": Param("int", 1, 1000)}

    def __post_init__(self) -> None:
        check_params(self)

    def attribute(self, paths: PathSet) -> Credit:
        """``shapley_simple`` credit plus its breakdown by touch position."""
        weights = touch_split(paths, None)
        credit = credit_from_touch_weights(self.name, paths, weights)
        pos = np.minimum(paths.position, self.max_position - 1)
        key = paths.states * self.max_position + pos
        shape = (paths.n_states, self.max_position)
        labels = [str(p + 1) for p in range(self.max_position)]
        labels[-1] += "+"
        details: dict[str, Any] = {"position_labels": tuple(labels)}
        for name, amount in (
            ("by_position", paths.conversions),
            ("by_position_value", paths.value),
        ):
            touch = weights * amount[paths.path_index]
            details[name] = np.bincount(key, touch, shape[0] * shape[1]).reshape(shape)
        return replace(credit, details=details)


@dataclass(frozen=True)
class ShapleyRate:
    """Shapley values of the empirical conversion-rate game (Dalessandro et al. 2012).

    Parameters
    ----------
    max_players : int, default 20
        Largest number of players solved; the cost is O(n 2^n) time and O(2^n)
        memory. At most 22. Data with more players raises
        :class:`~attribution.exceptions.InvalidParameter`: group channels
        (``PathSet.group_channels``) or use ``shapley`` or ``shapley_simple``.

    Notes
    -----
    v(S) is the conversion rate of the journeys whose set of distinct players lies
    within S: their conversions over their conversions plus nulls, and 0 where
    there are none. Journeys are tallied by player set, then subset-sum (zeta)
    transforms give each coalition's conversions and journeys in O(n 2^n), and
    the Shapley value is the size-weighted sum of marginal contributions
    ``s! (n - s - 1)! / n! * (v(S + j) - v(S))``.

    The raw values sum to v(N), the overall conversion rate, not to the
    conversions; credit is ``phi_j / sum(phi) * total conversions``. Value credit
    uses the value-rate game (conversion value per journey), scaled to the total
    value the same way.

    Rates of rare player sets are noisy, and the game is not monotone: a player
    whose sets convert worse than the sets without it gets negative credit. Every
    result carries a warning saying so.

    Per-journey split: within each path, conversions (value) are split among its
    distinct players in proportion to the positive parts of their global
    conversion (value) Shapley values, equally if none is positive, and a
    player's share equally among its touches. This split does not sum to the grid.

    ``collapse_repeats`` does not change the credit (the game sees only player
    sets); it changes the per-journey split. ``details`` holds ``players`` (state
    codes) and ``shapley_values``, the raw values of both rate games, row per player.

    References
    ----------
    .. [1] L. S. Shapley, "A value for n-person games", 1953.
    .. [2] B. Dalessandro, C. Perlich, O. Stitelman, F. Provost, "Causally
       Motivated Attribution for Online Advertising", ADKDD 2012.
    """

    max_players: int = 20

    name: ClassVar[str] = "shapley_rate"
    _constraints: ClassVar[Mapping[str, Param]] = {"max_players": Param("int", 1, 22)}

    def __post_init__(self) -> None:
        check_params(self)

    def attribute(self, paths: PathSet) -> Credit:
        """Exact Shapley values of the rate games, scaled to the totals."""
        players, code = player_codes(paths)
        n = len(players)
        if n > self.max_players:
            raise InvalidParameter(
                "max_players",
                self.max_players,
                f"at least the {n} {_players(paths)} the data has (shapley_rate computes "
                "exactly, over at most 22): group channels with channel_groups, raise "
                "max_players, or use shapley or shapley_simple",
            )
        rates = rate_values(paths, path_masks(paths, code), n)
        phi = exact_shapley(rates)
        details = {"players": players, "shapley_values": phi}
        return player_credit(self.name, paths, players, phi, (RATE_WARNING,), details)


@dataclass(frozen=True)
class Shapley:
    """Shapley values of the Markov-chain game: the default Shapley model.

    Parameters
    ----------
    max_exact_players : int, default 16
        Up to this many players every coalition is solved (2^n chain solves);
        beyond it, permutation sampling. At most 20.
    n_samples : int, default 2000
        Random permutations drawn when sampling.
    random_state : int or None, default 0
        Seed of the permutations; the default makes repeated calls agree.

    Notes
    -----
    The players are the transient states of the order-1 absorbing chain fitted to
    all journeys, converting or not. v(S) is the chain's probability of reaching
    conversion from the start when every player outside S is removed (transitions
    into a removed state go to null). Removing states only closes routes to
    conversion, so the game is monotone and no player gets negative credit.
    v(empty) = 0 and v(N) is the overall conversion rate; credit is
    ``phi_j / v(N) * total conversions``, which sums to the total because the
    Shapley values sum to v(N) - v(empty).

    The value game is the restricted chain's expected conversion value: over the
    states, the probability of converting from that state times the mean
    conversion value of the journeys that end there; credit is scaled to the
    total value the same way.

    Exact: all coalitions are solved at once as stacked dense systems, then
    phi_j = sum over S without j of ``s! (n - s - 1)! / n! * (v(S + j) - v(S))``.
    Sampled: phi_j is the mean marginal contribution of j over uniformly random
    orderings of the players; the estimates still sum exactly to v(N), and
    ``details["standard_error"]`` holds each grid entry's standard error in
    conversions (``"standard_error_value"`` in value).

    Per-journey split: within each path, conversions (value) are split among its
    distinct players in proportion to their conversion (value) Shapley values,
    equally if all are zero, and a player's share equally among its touches.

    ``details``: ``players`` (state codes, in the order of the rows of
    ``shapley_values``, the raw values of both games), ``conversion_probability``
    (v(N)), ``method`` and ``solver``.

    ``collapse_repeats`` does not change the credit: it removes self-transitions,
    which change how long a walk stays in a state but not where it is absorbed.
    It changes the per-journey split.

    References
    ----------
    .. [1] L. S. Shapley, "A value for n-person games", 1953.
    .. [2] E. Anderl, I. Becker, F. von Wangenheim, J. H. Schumann, "Mapping the
       customer journey: Lessons learned from graph-based online attribution
       modeling", International Journal of Research in Marketing 33(3), 2016.
    .. [3] S. S. Castro, D. Gómez, J. Tejada, "Polynomial calculation of the
       Shapley value based on sampling", Computers & Operations Research 36(5),
       2009.
    """

    max_exact_players: int = 16
    n_samples: int = 2000
    random_state: int | None = 0

    name: ClassVar[str] = "shapley"
    _constraints: ClassVar[Mapping[str, Param]] = {
        "max_exact_players": Param("int", 0, 20),
        "n_samples": Param("int", 2, 1_000_000),
        "random_state": Param("seed"),
    }

    def __post_init__(self) -> None:
        check_params(self)

    def attribute(self, paths: PathSet) -> Credit:
        """Shapley values of the chain games, exact or sampled, scaled to the totals."""
        players, game = chain_game(paths)
        n = len(players)
        details: dict[str, Any] = {"players": players}
        warnings: tuple[str, ...] = ()
        if n <= self.max_exact_players:
            phi = exact_shapley(game.all_values())
            details["method"] = f"exact over {1 << n} coalitions"
        else:
            rng = np.random.default_rng(self.random_state)
            phi, se = game.sampled_shapley(self.n_samples, rng)
            details["method"] = f"permutation sampling ({self.n_samples} permutations)"
            details["standard_error"], details["standard_error_value"] = scaled_errors(
                paths, players, phi, se
            )
            warnings = (
                f"The data has {n} {_players(paths)}, more than max_exact_players="
                f"{self.max_exact_players}: Shapley values are estimated from "
                f"{self.n_samples} random permutations (seed {self.random_state}), not "
                "computed exactly; ask for confidence intervals to see how far they may be.",
            )
        # the conversion game is monotone, so marginal contributions are >= 0;
        # clipping removes only rounding noise of the solves
        phi[:, 0] = np.maximum(phi[:, 0], 0.0)
        details["conversion_probability"] = float(phi[:, 0].sum())
        details["solver"] = "stacked dense LU (numpy.linalg.solve)"
        details["shapley_values"] = phi
        return player_credit(self.name, paths, players, phi, warnings, details)


# ---------------------------------------------------------------------- games
def chain_game(paths: PathSet) -> tuple[IntArray, ChainGame]:
    """The order-1 chain's players (its transient states) and their two games."""
    chain = build_chain(paths, 1)
    game = ChainGame(transitions=chain.transient.toarray(), start=chain.start, exits=chain.targets)
    return chain.windows[:, 0].astype(np.int64), game


# ---------------------------------------------------------------------- credit
def player_credit(
    model: str,
    paths: PathSet,
    players: IntArray,
    phi: FloatArray,
    warnings: tuple[str, ...],
    details: Mapping[str, Any],
) -> Credit:
    """Credit from Shapley values ``phi`` (one row per player: conversions, value games)."""
    totals = (paths.total_conversions, paths.total_value)
    raw = per_state(paths, players, phi)
    credit = scale(raw, totals)
    touch = [
        touch_split(paths, np.maximum(raw[:, g], 0.0)) * amount[paths.path_index]
        for g, amount in enumerate((paths.conversions, paths.value))
    ]
    return Credit(
        model=model,
        channel_names=paths.channel_names,
        stage_names=paths.stage_names,
        conversions=state_grid(paths, credit[:, 0]),
        value=state_grid(paths, credit[:, 1]),
        present=paths.state_present,
        total_conversions=totals[0],
        total_value=totals[1],
        touch_conversions=touch[0],
        touch_value=touch[1],
        warnings=no_null_warning(paths) + warnings,
        details=dict(details),
        columns=paths.columns,
    )


def scale(phi: FloatArray, totals: tuple[float, float]) -> FloatArray:
    """``phi_j / sum(phi) * total`` per game column; zero where a game sums to 0."""
    return phi * _factors(phi, totals)


def scaled_errors(
    paths: PathSet, players: IntArray, phi: FloatArray, se: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Standard errors of sampled values in credit units (the factor of :func:`scale`)."""
    factor = _factors(phi, (paths.total_conversions, paths.total_value))
    grid_se = per_state(paths, players, np.abs(se * factor))
    return state_grid(paths, grid_se[:, 0]), state_grid(paths, grid_se[:, 1])


def per_state(paths: PathSet, players: IntArray, phi: FloatArray) -> FloatArray:
    """Player rows spread to one row per state code (zero for states not playing)."""
    out = np.zeros((paths.n_states, phi.shape[1]))
    out[players] = phi
    return out


def _factors(phi: FloatArray, totals: tuple[float, float]) -> FloatArray:
    sums = phi.sum(axis=0)
    return np.array([t / s if s != 0 else 0.0 for t, s in zip(totals, sums, strict=True)])


def _players(paths: PathSet) -> str:
    """What a game's players are, in the words of the data."""
    if paths.has_campaigns:
        return "channel-campaign pairs"
    return "channel-stage pairs" if paths.stage_names is not None else "channels"
