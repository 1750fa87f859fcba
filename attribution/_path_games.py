"""Per-path Shapley games of a fitted conversion model, for ``data_driven``.

A converting path's game has the path's distinct players (states) as players; the
worth of a coalition S is the fitted conversion probability of the path with every
touch of a player outside S removed, and the empty coalition is worth 0. The game
depends on the path only through its *signature*: its players in order of first
touch, each player's number of touches and the order of their last touches (the
last two only when the model uses repeats and first/last features; without them
the signature is the player set). Paths are grouped by signature and each game is
solved once, so the cost grows with distinct signatures, not with paths.

A batch of games with the same number of players n is evaluated at once: a
coalition's channel counts are a product of its membership rows with each game's
player-to-channel counts, its first touch is its first member (players are in
order of first touch) and its last touch the member with the latest last touch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._coalitions import coalition_masks, exact_shapley
from ._logistic import Coefficients, Features, _sigmoid
from .paths import PathSet

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

ELEMENT_BUDGET = 1 << 22
"""Games x coalitions x players evaluated at once (bounds memory)."""


@dataclass(frozen=True)
class Games:
    """Games of a batch: ``(m, n)`` arrays over each game's players."""

    state: IntArray
    count: FloatArray
    last_rank: IntArray


@dataclass(frozen=True)
class PathShares:
    """Each converting path's split over its players.

    ``path``, ``state`` and ``share`` are aligned, one entry per (path, player);
    ``error`` is the standard error of the share (0 where solved exactly).
    ``sampled`` counts the paths whose game was sampled, ``games`` the distinct
    games solved.
    """

    path: IntArray
    state: IntArray
    share: FloatArray
    error: FloatArray
    games: int
    sampled: int


def path_shares(
    paths: PathSet,
    rows: IntArray,
    coef: Coefficients,
    features: Features,
    max_exact: int,
    n_samples: int,
    rng: np.random.Generator,
) -> PathShares:
    """Shapley shares of the players of each path in ``rows`` (normalised to sum to 1)."""
    if len(rows) == 0:
        none = np.zeros(0, dtype=np.int64)
        return PathShares(none, none, np.zeros(0), np.zeros(0), 0, 0)
    gp, gs, count, last_rank, sizes = _players(paths, rows)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    share = np.zeros(len(gp))
    error = np.zeros(len(gp))
    games = sampled = 0
    for n in np.unique(sizes).tolist():
        which = np.flatnonzero(sizes == n)
        at = starts[which][:, None] + np.arange(n)
        sig = _signature(gs[at], count[at], last_rank[at], features)
        keys, index, inverse = np.unique(sig.key, axis=0, return_index=True, return_inverse=True)
        distinct = Games(sig.state[index], sig.count[index], sig.last_rank[index])
        games += len(keys)
        if n <= max_exact:
            phi, se = _exact(distinct, coef, paths.n_stage_columns), None
        else:
            phi, se = _sampled(distinct, coef, paths.n_stage_columns, n_samples, rng)
            sampled += len(which)
        total = phi.sum(axis=1, keepdims=True)
        inv = inverse.ravel()
        # shares follow the signature's player order; put them back in the path's
        back = at[np.arange(len(which))[:, None], sig.order]
        share[back] = (phi / total)[inv]
        if se is not None:
            error[back] = (se / total)[inv]
    return PathShares(gp, gs, share, error, games, sampled)


@dataclass(frozen=True)
class _Signature:
    key: IntArray
    state: IntArray
    count: FloatArray
    last_rank: IntArray
    order: IntArray


def _signature(
    state: IntArray, count: FloatArray, last_rank: IntArray, features: Features
) -> _Signature:
    """What a game depends on, as an integer row per path, and the players' order in it."""
    m, n = state.shape
    if features.position:
        order = np.tile(np.arange(n), (m, 1))
    else:  # no first/last features: the order of players does not matter
        order = np.argsort(state, axis=1, kind="stable")
        state = np.take_along_axis(state, order, axis=1)
        count = np.take_along_axis(count, order, axis=1)
        last_rank = np.zeros_like(last_rank)
    if not features.repeats:
        count = np.ones_like(count)
    key = np.hstack([state, count.astype(np.int64), last_rank])
    return _Signature(key, state, count, last_rank, order)


def _players(
    paths: PathSet, rows: IntArray
) -> tuple[IntArray, IntArray, FloatArray, IntArray, IntArray]:
    """Distinct players of each path in ``rows``, in order of first touch.

    Returns, per (path, player), the path (index into the set), the state, the
    number of touches and the rank of the player's last touch among the path's
    players; and the number of players of each path.
    """
    lengths = paths.lengths[rows]
    local = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    touches = _touches_of(paths, rows, lengths)
    states = paths.states[touches]
    position = paths.position[touches]
    order = np.lexsort((position, states, local))
    lp, st, pos = local[order], states[order], position[order]
    new = np.ones(len(lp), dtype=bool)
    new[1:] = (lp[1:] != lp[:-1]) | (st[1:] != st[:-1])
    heads = np.flatnonzero(new)
    ends = np.append(heads[1:], len(lp)) - 1
    gp, gs = lp[heads], st[heads]
    count = (ends - heads + 1).astype(np.float64)
    first, last = pos[heads], pos[ends]
    by_first = np.lexsort((first, gp))
    gp, gs, count, last = gp[by_first], gs[by_first], count[by_first], last[by_first]
    sizes = np.bincount(gp, minlength=len(rows)).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    by_last = np.lexsort((last, gp))
    last_rank = np.empty(len(gp), dtype=np.int64)
    last_rank[by_last] = np.arange(len(gp)) - starts[gp[by_last]]
    return rows[gp], gs, count, last_rank, sizes


def _touches_of(paths: PathSet, rows: IntArray, lengths: IntArray) -> IntArray:
    """Indices of the touches of the paths in ``rows``, path by path."""
    starts = paths.offsets[rows]
    first_of = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    step = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(first_of, lengths)
    return np.asarray(np.repeat(starts, lengths) + step, dtype=np.int64)


# ---------------------------------------------------------------------- worth
def worth(games: Games, members: BoolArray, coef: Coefficients, n_stages: int) -> FloatArray:
    """Fitted probability ``(m, K)`` of each game's path restricted to each coalition.

    ``members`` is ``(K, n)``, shared by the ``m`` games; the empty coalition is worth 0.
    Arrays are laid out coalition first, ``(K, m, slots)``, so that each product with
    the membership rows is a single matrix product over every game at once.
    """
    ch, stage = games.state // n_stages, games.state % n_stages
    member_f = members.astype(np.float64)
    counts = _per_slot(member_f, games.count[:, :, None] * _slots(ch))
    present = counts > 0
    used = _first_of_kind(ch)
    z = coef.intercept + _dot(present, np.where(used, coef.presence[ch], 0.0))
    z += _dot(np.log(np.maximum(counts, 1.0)), np.where(used, coef.repeats[ch], 0.0))
    stage_present = _per_slot(member_f, _slots(stage)) > 0
    z += _dot(stage_present, np.where(_first_of_kind(stage), coef.stage[stage], 0.0))
    if coef.pair.any():
        z += member_f @ coef.pair[games.state].T
    z += coef.first[ch][:, np.argmax(members, axis=1)].T
    latest = np.argmax(np.where(members[:, None, :], games.last_rank[None], -1), axis=2)
    z += np.take_along_axis(coef.last[ch].T, latest, axis=0)
    if coef.pairwise.any():
        weights = coef.pairwise[ch[:, :, None], ch[:, None, :]] * used[:, :, None] * used[:, None]
        p = present.astype(np.float64)
        z += np.einsum("kma,mab,kmb->km", p, weights, p)
    out = _sigmoid(z.T)
    out[:, ~members.any(axis=1)] = 0.0
    return out


def _per_slot(member_f: FloatArray, weights: FloatArray) -> FloatArray:
    """``(K, m, s)``: each coalition's sum of its members' ``weights (m, n, s)``."""
    return np.tensordot(member_f, weights, axes=([1], [1]))


def _dot(values: FloatArray | BoolArray, per_slot: FloatArray) -> FloatArray:
    """``(K, m)``: each coalition's ``values (K, m, s)`` weighted by ``per_slot (m, s)``."""
    return np.asarray(np.einsum("kms,ms->km", values.astype(np.float64), per_slot))


def _slots(kind: IntArray) -> FloatArray:
    """``(m, n, n)``: player j counts towards slot s, the first player of j's kind."""
    same = kind[:, :, None] == kind[:, None, :]
    slot = np.argmax(same, axis=2)
    out = np.zeros(same.shape)
    np.put_along_axis(out, slot[:, :, None], 1.0, axis=2)
    return out


def _first_of_kind(kind: IntArray) -> BoolArray:
    """Whether each player is the first of its kind (channel, stage) in its game."""
    same = kind[:, :, None] == kind[:, None, :]
    return np.asarray(np.argmax(same, axis=2) == np.arange(kind.shape[1]), dtype=bool)


# ---------------------------------------------------------------------- Shapley values
def _exact(games: Games, coef: Coefficients, n_stages: int) -> FloatArray:
    """Exact Shapley values ``(m, n)`` over all ``2**n`` coalitions, in chunks of games."""
    m, n = games.state.shape
    members = coalition_masks(0, 1 << n, n)
    chunk = max(1, ELEMENT_BUDGET // ((1 << n) * n))
    parts = []
    for a in range(0, m, chunk):
        cut = slice(a, a + chunk)
        part = Games(games.state[cut], games.count[cut], games.last_rank[cut])
        parts.append(exact_shapley(worth(part, members, coef, n_stages).T).T)
    return np.concatenate(parts, axis=0)


def _sampled(
    games: Games, coef: Coefficients, n_stages: int, n_samples: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """Permutation-sampled Shapley values and their standard errors, each ``(m, n)``.

    Along each permutation the marginal contributions telescope to the worth of the
    whole path, so the estimates keep efficiency exactly.
    """
    m, n = games.state.shape
    phi, se = np.zeros((m, n)), np.zeros((m, n))
    batch = max(1, ELEMENT_BUDGET // ((n + 1) * n * n))
    for g in range(m):
        game = Games(games.state[g : g + 1], games.count[g : g + 1], games.last_rank[g : g + 1])
        total, squares = np.zeros(n), np.zeros(n)
        for a in range(0, n_samples, batch):
            t = min(batch, n_samples - a)
            perms = rng.permuted(np.tile(np.arange(n), (t, 1)), axis=1)
            rank = np.argsort(perms, axis=1)
            members = rank[:, None, :] < np.arange(n + 1)[None, :, None]
            v = worth(game, members.reshape(-1, n), coef, n_stages).reshape(t, n + 1)
            contrib = np.empty((t, n))
            np.put_along_axis(contrib, perms, np.diff(v, axis=1), axis=1)
            total += contrib.sum(axis=0)
            squares += (contrib**2).sum(axis=0)
        phi[g] = total / n_samples
        var = (squares - n_samples * phi[g] ** 2) / max(1, n_samples - 1)
        se[g] = np.sqrt(np.maximum(var, 0.0) / n_samples)
    return phi, se
