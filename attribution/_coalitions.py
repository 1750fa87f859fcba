"""Players, coalitions and the games over them, shared by the Shapley models.

Coalitions of ``n`` players are bit masks: player ``k`` is in coalition ``S`` when
bit ``k`` of ``S`` is set, so a game over every coalition is an array of length
``2**n`` indexed by mask. Everything here is vectorised over coalitions; the loops
run over players (bits), chunks of coalitions or batches of permutations.

This module also holds :class:`ChainGame`, the value function of the Markov
Shapley game: the absorbing chain's conversion probability (and expected
conversion value) with every player outside a coalition removed, solved for many
coalitions at once as a stack of small dense systems.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .paths import PathSet

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

SYSTEM_BUDGET = 1 << 22
"""Matrix entries solved per chunk (32 MiB of float64): bounds memory, keeps BLAS busy."""


def popcounts(n: int) -> IntArray:
    """Number of players in each of the ``2**n`` coalitions."""
    return np.bitwise_count(np.arange(1 << n, dtype=np.uint64)).astype(np.int64)


def coalition_masks(first: int, stop: int, n: int) -> BoolArray:
    """Membership ``(stop - first, n)`` of the coalitions numbered ``first`` to ``stop - 1``."""
    ids = np.arange(first, stop, dtype=np.int64)
    return ((ids[:, None] >> np.arange(n, dtype=np.int64)) & 1).astype(bool)


def shapley_weights(n: int) -> FloatArray:
    """``w[s] = s! (n - s - 1)! / n!``: weight of a coalition of size ``s`` not holding j.

    Computed as ``1 / (n * C(n - 1, s))`` so it stays finite for any ``n``.
    """
    return np.array([1.0 / (n * math.comb(n - 1, s)) for s in range(n)], dtype=np.float64)


def subset_sums(f: FloatArray) -> FloatArray:
    """Zeta transform: ``out[S] = sum of f[T] over every T that is a subset of S``.

    ``f`` has shape ``(2**n, ...)``. One pass per player adds, for each coalition
    holding that player, the value of the same coalition without it: O(n 2^n).
    """
    out = np.array(f, dtype=np.float64, copy=True)
    n = int(out.shape[0]).bit_length() - 1
    rest = out.shape[1:]
    for k in range(n):
        # view the mask as (bits above k, bit k, bits below k)
        view = out.reshape((1 << (n - 1 - k), 2, 1 << k, *rest))
        view[:, 1] += view[:, 0]
    return out


def exact_shapley(values: FloatArray) -> FloatArray:
    """Shapley values of every player from a game tabulated over all coalitions.

    ``values`` has shape ``(2**n, g)`` (``g`` games at once). Returns ``(n, g)``:
    for each player j, the sum over coalitions S without j of
    ``w[|S|] * (v(S + j) - v(S))``.
    """
    n = int(values.shape[0]).bit_length() - 1
    g = values.shape[1]
    # the grand coalition never lacks a player: its weight (index n) is unused
    weights = np.append(shapley_weights(n), 0.0)[popcounts(n)]
    phi = np.zeros((n, g))
    for k in range(n):
        v = values.reshape(1 << (n - 1 - k), 2, 1 << k, g)
        w = weights.reshape(1 << (n - 1 - k), 2, 1 << k)[:, 0]
        phi[k] = np.einsum("ab,abg->g", w, v[:, 1] - v[:, 0])
    return phi


def rate_values(paths: PathSet, masks: IntArray, n: int) -> FloatArray:
    """The rate games ``(2**n, 2)`` over every coalition: conversions and value per journey.

    Journeys are tallied by their player set, subset sums turn the tallies into
    totals over the journeys whose players lie within each coalition, and a
    coalition with no such journeys is worth 0.
    """
    journeys = paths.conversions + paths.nulls
    tallies = np.stack(
        [
            np.bincount(masks, w, minlength=1 << n)
            for w in (paths.conversions, paths.value, journeys)
        ],
        axis=1,
    ).astype(np.float64)
    within = subset_sums(tallies)
    seen = within[:, 2] > 0
    rates = np.zeros((1 << n, 2))
    rates[seen] = within[seen, :2] / within[seen, 2:3]
    return rates


@dataclass(frozen=True)
class ChainGame:
    """The absorbing-chain game over ``n`` players (the chain's transient states).

    Attributes
    ----------
    transitions : ndarray, shape (n, n)
        Transition probabilities between players.
    start : ndarray, shape (n,)
        Probability that a journey starts in each player's state.
    exits : ndarray, shape (n, g)
        Per-step payoff of leaving each state: column 0 the probability of
        converting from it, column 1 (when present) the expected conversion value
        collected by a step from it.

    Notes
    -----
    Removing the players outside S sends every transition into them to the null
    state. The payoff of S is ``start_S (I - Q_SS)^-1 exits_S``: the expected number
    of visits to each kept state times what a step from it pays. Removed states get
    identity rows and a zero right-hand side, so every coalition is a system of the
    same size and a chunk of them is one stacked ``numpy.linalg.solve``.
    """

    transitions: FloatArray
    start: FloatArray
    exits: FloatArray

    @property
    def n_players(self) -> int:
        return int(self.transitions.shape[0])

    def values(self, members: BoolArray) -> FloatArray:
        """Payoffs ``(m, g)`` of the coalitions given by membership rows ``(m, n)``."""
        n = self.n_players
        out = np.zeros((members.shape[0], self.exits.shape[1]))
        if n == 0:
            return out
        chunk = max(1, SYSTEM_BUDGET // (n * n))
        eye = np.eye(n)
        for a in range(0, members.shape[0], chunk):
            keep = members[a : a + chunk, :, None]
            # rows of removed states become identity rows with zero right-hand side,
            # so their absorption value is 0 and nothing flows through them
            system = eye - self.transitions[None] * keep
            rhs = self.exits[None] * keep
            x = np.linalg.solve(system, rhs)
            out[a : a + chunk] = np.einsum("k,mkg->mg", self.start, x)
        return out

    def all_values(self) -> FloatArray:
        """Payoffs ``(2**n, g)`` of every coalition, in chunks of coalitions."""
        n = self.n_players
        total = 1 << n
        chunk = max(1, SYSTEM_BUDGET // max(1, n * n))
        parts = [
            self.values(coalition_masks(a, min(a + chunk, total), n))
            for a in range(0, total, chunk)
        ]
        return np.concatenate(parts, axis=0)

    def sampled_shapley(
        self, n_samples: int, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray]:
        """Mean marginal contribution and its standard error over random permutations.

        Each permutation contributes ``v(players before j, and j) - v(players before
        j)`` for every j; these telescope to ``v(N)``, so the estimates keep
        efficiency exactly. Returns ``(phi, standard_error)``, each ``(n, g)``.
        """
        n, g = self.n_players, self.exits.shape[1]
        batch = max(1, SYSTEM_BUDGET // (2 * n * n))
        total = np.zeros((n, g))
        squares = np.zeros((n, g))
        for a in range(0, n_samples, batch):
            m = min(batch, n_samples - a)
            contrib = self._permutation_contributions(
                rng.permuted(np.tile(np.arange(n), (m, 1)), axis=1)
            )
            total += contrib.sum(axis=0)
            squares += (contrib**2).sum(axis=0)
        phi = total / n_samples
        var = (squares - n_samples * phi**2) / max(1, n_samples - 1)
        return phi, np.sqrt(np.maximum(var, 0.0) / n_samples)

    def _permutation_contributions(self, orders: IntArray) -> FloatArray:
        """Marginal contributions ``(m, n, g)`` of each player in each ordering.

        Players join in order, and the inverse of ``I - Q_SS`` over the growing
        prefix ``S`` is bordered by one row and column per step (the Schur
        complement update), so an ordering costs O(n^3) in all instead of one
        O(n^3) solve per prefix. ``I - Q`` is an M-matrix, so every Schur
        complement is positive: at least the probability of leaving the prefix.
        """
        m, n = orders.shape
        q = self.transitions[orders[:, :, None], orders[:, None, :]]
        start = self.start[orders]
        exits = self.exits[orders]
        inverse = np.zeros((m, n, n))
        contrib = np.zeros((m, n, exits.shape[2]))
        rows = np.arange(m)[:, None]
        for k in range(n):
            # v(S + j) - v(S) = (start_j - start_S B b)(exits_j - c B exits_S) / schur
            hb, ch, schur = _border(inverse, q, k)
            reach = start[:, k] - np.einsum("mi,mi->m", start[:, :k], hb)
            pay = exits[:, k] - np.einsum("mi,mig->mg", ch, exits[:, :k])
            contrib[rows, orders[:, k : k + 1]] = (reach / schur)[:, None, None] * pay[:, None, :]
        return contrib


def _border(
    inverse: FloatArray, q: FloatArray, k: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Grow ``inverse[:, :k, :k] = (I - Q_SS)^-1`` in place to the prefix of size k + 1.

    Returns ``B b``, ``c B`` and the Schur complement, where ``b`` and ``c`` are the
    new column and row of ``I - Q`` and ``B`` the old inverse.
    """
    b = -q[:, :k, k, None]
    c = -q[:, k, None, :k]
    head = inverse[:, :k, :k]
    hb = np.matmul(head, b)[:, :, 0]
    ch = np.matmul(c, head)[:, 0, :]
    schur = 1.0 - q[:, k, k] - np.einsum("mi,mi->m", c[:, 0, :], hb)
    head += hb[:, :, None] * (ch / schur[:, None])[:, None, :]
    inverse[:, :k, k] = -hb / schur[:, None]
    inverse[:, k, :k] = -ch / schur[:, None]
    inverse[:, k, k] = 1.0 / schur
    return hb, ch, schur


# ---------------------------------------------------------------------- players in paths
def player_codes(paths: PathSet) -> tuple[IntArray, IntArray]:
    """Players (the state codes that occur) and each state's player index (-1 if absent)."""
    players = np.flatnonzero(paths.state_present.ravel()).astype(np.int64)
    code = np.full(paths.n_states, -1, dtype=np.int64)
    code[players] = np.arange(len(players), dtype=np.int64)
    return players, code


def path_masks(paths: PathSet, code: IntArray) -> IntArray:
    """Bit mask of each path's distinct players (bit k = player k)."""
    if paths.n_paths == 0:
        return np.zeros(0, dtype=np.int64)
    bits = np.left_shift(np.int64(1), code[paths.states])
    return np.bitwise_or.reduceat(bits, paths.offsets[:-1]).astype(np.int64)


def touch_split(paths: PathSet, state_weights: FloatArray | None) -> FloatArray:
    """Per-touch weights summing to 1 over each path.

    A path's unit is split among its distinct players in proportion to
    ``state_weights`` (equally when None, or when the path's players all weigh
    0), then each player's part equally among its touches in the path.
    """
    count, first = paths.derived("touch_multiplicity", touch_multiplicity)
    weight = np.ones(len(count)) if state_weights is None else state_weights[paths.states]
    pi = paths.path_index
    total = np.bincount(pi, weight * first, minlength=paths.n_paths)
    distinct = np.bincount(pi, first, minlength=paths.n_paths)
    equal = (total <= 0)[pi]
    weight = np.where(equal, 1.0, weight)
    denom = np.where(equal, distinct[pi], total[pi])
    return np.asarray(weight / (count * denom), dtype=np.float64)


def touch_multiplicity(paths: PathSet) -> tuple[IntArray, NDArray[np.bool_]]:
    """For each touch: how many touches of its path share its state, and whether it is the first.

    A stable sort by state keeps touches in path order within each state, so runs
    of equal (state, path) are the groups; on 16-bit codes numpy's stable sort is a
    radix sort, linear in the number of touches.
    """
    st = paths.states
    if len(st) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    key = st.astype(np.uint16) if paths.n_states <= 1 << 16 else st
    order = np.argsort(key, kind="stable")
    s, p = st[order], paths.path_index[order]
    new = np.ones(len(st), dtype=bool)
    new[1:] = (s[1:] != s[:-1]) | (p[1:] != p[:-1])
    group = np.cumsum(new) - 1
    count = np.empty(len(st), dtype=np.int64)
    count[order] = np.bincount(group)[group]
    first = np.zeros(len(st), dtype=bool)
    first[order[new]] = True
    return count, first
