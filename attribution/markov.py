"""Markov-chain attribution: exact removal effects of an absorbing chain of order 1 to 4.

The chain is counted and solved by :mod:`attribution.chain`; this module turns its
removal effects into credit per channel, per stage and per channel-stage pair, and
picks the order by cross-validation when asked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from . import chain as chain_module
from .chain import Chain, Removals, SolverError, build_chain, order_one, solve_removals
from .exceptions import InvalidParameter
from .params import Param, check_params
from .paths import PathSet
from .result import Credit, no_null_warning

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

ORDERS = (1, 2, 3, 4)
"""Orders a chain may have."""

IDENTITY_RTOL = 1e-9
"""Relative tolerance of the check P(conversion) = conversions / journeys."""

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
"""Labels of the chain's start and absorbing nodes in ``details["transitions"]``."""

_SET_ELEMENTS = 1 << 24
"""Removal-set x state (x order) elements built at once (bounds memory)."""


@dataclass(frozen=True)
class Markov:
    """Markov-chain removal-effect attribution, solved exactly.

    Parameters
    ----------
    order : int or "auto", default 1
        Length of the window of touches that makes a state (1 to 4). ``"auto"``
        picks among ``auto_orders`` by cross-validated log-likelihood.
    auto_orders : tuple of int, default (1, 2, 3, 4)
        Orders compared when ``order="auto"``.
    n_folds : int, default 5
        Folds of the cross-validation when ``order="auto"``.
    random_state : int or None, default 0
        Seed of the fold assignment when ``order="auto"``.

    Notes
    -----
    States are channels, or channel-stage pairs when the set has stages. Each
    unique path is a walk start → its states → conversion (weight: its conversions)
    or null (weight: its nulls); order-``k`` states are windows of ``k`` touches.
    Transition probabilities are the weighted transition counts divided by each
    state's total outgoing count. P(conversion) is the probability that a walk
    from the start is absorbed in conversion, solved exactly from the fundamental
    matrix; it equals conversions / (conversions + nulls) at every order, which is
    checked.

    The removal effect of a set of base states (a channel-stage pair, a channel = all
    its pairs, a stage = all pairs in it) is 1 - P(conversion with the set
    removed) / P(conversion), where removing makes every state whose window
    contains one of them unreachable (transitions into them go to null).

    The expected conversion value of a walk is the sum over states of P(the walk
    leaves that state into conversion) x the mean value per conversion of the
    paths that end in it. The value removal effect of a set is the relative drop
    of that expectation when the set is removed.

    Conversion credit on the channel x stage grid is the pairs' removal effects
    normalised to total conversions (the channels' when there are no stages);
    value credit is the pairs' value removal effects normalised to total value.
    The channel and stage tables are the grid's marginals; the channel and stage
    removal effects are reported beside them.

    Per-journey split: each path's conversions (value) go to its touches in
    proportion to the (value) removal effect of each touch's state, a state's
    share divided equally among the path's touches in that state; a path whose
    states all have zero effect splits equally over its touches.

    With ``order="auto"``, each journey is dealt to one of ``n_folds`` folds (the
    journeys of a unique path round-robin, from a fold chosen by a seeded hash of
    the path, so the folds do not depend on row order). For each order and fold,
    a journey's predicted conversion probability is the training folds' conversion
    rate of journeys whose path ends in the same state (window), smoothed towards
    the training folds' overall rate with the weight of one journey; the score is
    the held-out log-likelihood per journey. The highest score wins; ties go to
    the lower order.

    References
    ----------
    .. [1] Anderl, E., Becker, I., von Wangenheim, F., Schumann, J. H. (2016).
       "Mapping the customer journey: Lessons learned from graph-based online
       attribution modeling." International Journal of Research in Marketing
       33(3), 457-474.
    .. [2] Kemeny, J. G., Snell, J. L. (1960). *Finite Markov Chains*. Van
       Nostrand, chapter III (absorbing chains, the fundamental matrix).
    .. [3] van der Vorst, H. A. (1992). "Bi-CGSTAB: a fast and smoothly converging
       variant of Bi-CG for the solution of nonsymmetric linear systems." SIAM
       Journal on Scientific and Statistical Computing 13(2), 631-644.
    """

    name: ClassVar[str] = "markov"
    _constraints: ClassVar[Mapping[str, Param]] = {
        "order": Param("int", 1, 4, choices=("auto",)),
        "n_folds": Param("int", 2, 20),
        "random_state": Param("seed"),
    }

    order: int | str = 1
    auto_orders: tuple[int, ...] = ORDERS
    n_folds: int = 5
    random_state: int | None = 0

    def __post_init__(self) -> None:
        check_params(self)
        orders = self.auto_orders
        if (
            isinstance(orders, str | bytes)
            or not hasattr(orders, "__iter__")
            or not (ok := tuple(orders))
            or any(isinstance(k, bool) or k not in ORDERS for k in ok)
            or len(set(ok)) != len(ok)
        ):
            raise InvalidParameter(
                "auto_orders", orders, "a non-empty list of distinct integers in [1, 4]"
            )
        object.__setattr__(self, "auto_orders", tuple(sorted(ok)))

    def attribute(self, paths: PathSet) -> Credit:
        """Credit conversions and value by exact Markov removal effects.

        ``details`` holds ``order`` (the order used), ``p_conversion``,
        ``expected_value`` (per journey), ``n_states`` (transient states of the
        chain), ``solver`` (``"dense"`` or ``"bicgstab"``), ``transitions`` (the
        order-1 matrix, see :func:`transition_rows`) and, with ``order="auto"``,
        ``order_scores`` (held-out log-likelihood per journey, by order).
        """
        details: dict[str, Any] = {}
        if self.order == "auto":
            scores = order_scores(paths, self.auto_orders, self.n_folds, self.random_state)
            details["order_scores"] = scores
            order = best_order(scores)
        else:
            order = int(self.order)
        chain = build_chain(paths, order)
        fx = removal_effects(paths, chain)
        details.update(
            order=order,
            p_conversion=fx.p_conversion,
            expected_value=fx.expected_value,
            n_states=chain.n_states,
            solver=fx.solver,
            transitions=transition_rows(paths, chain),
        )
        return _credit(self.name, paths, fx, details)


def _credit(model: str, paths: PathSet, fx: Effects, details: dict[str, Any]) -> Credit:
    """Normalise the grid's removal effects to the totals and split them per touch."""
    grid_fx = _grid_effects(paths, fx.conversion)
    grid_vfx = _grid_effects(paths, fx.value)
    warnings = no_null_warning(paths)
    if not grid_fx.any():
        warnings += (
            "There are no conversions, so every removal effect is 0 and no credit is given.",
        )
    share = _repeat_share(paths)
    return Credit(
        model=model,
        channel_names=paths.channel_names,
        stage_names=paths.stage_names,
        conversions=_normalise(grid_fx, paths.total_conversions),
        value=_normalise(grid_vfx, paths.total_value),
        present=paths.state_present,
        total_conversions=paths.total_conversions,
        total_value=paths.total_value,
        removal_effects=fx.conversion,
        value_removal_effects=fx.value,
        touch_conversions=touch_split(paths, grid_fx.ravel(), paths.conversions, share),
        touch_value=touch_split(paths, grid_vfx.ravel(), paths.value, share),
        warnings=warnings,
        details=details,
    )


# ---------------------------------------------------------------------- removal effects
@dataclass(frozen=True)
class Effects:
    """Removal effects per dimension, for conversions and value, and the baseline."""

    conversion: dict[str, FloatArray]
    value: dict[str, FloatArray]
    p_conversion: float
    expected_value: float
    solver: str


def removal_effects(paths: PathSet, chain: Chain) -> Effects:
    """Conversion and value removal effects of every channel, stage and pair.

    Dimensions: ``"channel"`` always; ``"stage"`` and ``"channel_stage"`` (grid
    shaped) when the set has stages. Effects are clipped to [0, 1]: removing
    states can only lower P(conversion), so anything outside is rounding.
    """
    sets, slots = _base_sets(paths)
    solved = _solve_sets(chain, np.vstack([np.zeros((1, paths.n_states), bool), sets]))
    p0, v0 = float(solved.conversion[0]), float(solved.value[0])
    _check_identity(paths, chain.order, p0, v0)
    conv = _relative_drop(solved.conversion[1:], p0)
    val = _relative_drop(solved.value[1:], v0)
    conv_fx: dict[str, FloatArray] = {}
    val_fx: dict[str, FloatArray] = {}
    for dim, (start, stop, shape, where) in slots.items():
        conv_fx[dim] = _scatter(conv[start:stop], shape, where)
        val_fx[dim] = _scatter(val[start:stop], shape, where)
    return Effects(conv_fx, val_fx, p0, v0, solved.solver)


_Slot = tuple[int, int, tuple[int, ...], IntArray]


def _base_sets(paths: PathSet) -> tuple[BoolArray, dict[str, _Slot]]:
    """Sets of base states to remove, stacked, and where each dimension's rows are.

    A slot is (first row, end row, shape of the dimension's array, flat positions
    in that array of the rows' effects).
    """
    n_ch, n_sc = paths.n_channels, paths.n_stage_columns
    state = np.arange(paths.n_states)
    blocks: list[BoolArray] = []
    slots: dict[str, _Slot] = {}
    row = 0

    def add(dim: str, members: BoolArray, shape: tuple[int, ...], where: IntArray) -> None:
        nonlocal row
        blocks.append(members)
        slots[dim] = (row, row + len(members), shape, where)
        row += len(members)

    add("channel", (state // n_sc)[None, :] == np.arange(n_ch)[:, None], (n_ch,), np.arange(n_ch))
    if paths.has_stages:
        add("stage", (state % n_sc)[None, :] == np.arange(n_sc)[:, None], (n_sc,), np.arange(n_sc))
        present = np.flatnonzero(paths.state_present.ravel())
        add("channel_stage", state[None, :] == present[:, None], (n_ch, n_sc), present)
    return np.vstack(blocks), slots


def _solve_sets(chain: Chain, base_sets: BoolArray) -> Removals:
    """Solve every removal set, building the state masks a chunk at a time."""
    per_set = max(1, chain.n_states * chain.order)
    step = max(1, _SET_ELEMENTS // per_set)
    parts = [
        solve_removals(
            chain,
            chain.contains(base_sets[i : i + step]),
            dense_limit=chain_module.DENSE_LIMIT,
        )
        for i in range(0, len(base_sets), step)
    ]
    return Removals(
        np.concatenate([p.conversion for p in parts]),
        np.concatenate([p.value for p in parts]),
        parts[0].solver,
    )


def _check_identity(paths: PathSet, order: int, p0: float, v0: float) -> None:
    """The chain must reproduce the data's conversion rate and value per journey."""
    journeys = paths.total_conversions + paths.total_nulls
    rate = paths.total_conversions / journeys if journeys > 0 else 0.0
    per_journey = paths.total_value / journeys if journeys > 0 else 0.0
    for what, got, want in (("P(conversion)", p0, rate), ("expected value", v0, per_journey)):
        if abs(got - want) > IDENTITY_RTOL * max(abs(want), 1e-300):
            raise SolverError(
                f"internal error: the order-{order} chain gives {what} = {got!r}, "
                f"but the data give {want!r}"
            )


def _relative_drop(removed: FloatArray, base: float) -> FloatArray:
    if base <= 0:
        return np.zeros_like(removed)
    return np.asarray(np.clip(1.0 - removed / base, 0.0, 1.0), dtype=np.float64)


def _scatter(values: FloatArray, shape: tuple[int, ...], where: IntArray) -> FloatArray:
    out = np.zeros(int(np.prod(shape)))
    out[where] = values
    return out.reshape(shape)


def _grid_effects(paths: PathSet, effects: Mapping[str, FloatArray]) -> FloatArray:
    """Effects on the credit grid: the pairs' with stages, else the channels'."""
    if paths.has_stages:
        return effects["channel_stage"]
    return effects["channel"].reshape(paths.n_channels, 1)


def _normalise(effects: FloatArray, total: float) -> FloatArray:
    s = float(effects.sum())
    if s <= 0:
        return np.zeros_like(effects)
    return effects * (total / s)


# ---------------------------------------------------------------------- per-journey split
def touch_split(
    paths: PathSet,
    state_effects: FloatArray,
    amounts: FloatArray,
    repeat_share: FloatArray | None = None,
) -> FloatArray:
    """Split each path's amount over its touches by the effects of their states.

    A touch's weight is its state's effect divided by the number of the path's
    touches in that state (``repeat_share`` is one over that number, computed
    when not given); weights are normalised within each path. A path whose
    weights are all zero splits equally.
    """
    weight = state_effects[paths.states]
    weight *= _repeat_share(paths) if repeat_share is None else repeat_share
    per_path = np.bincount(paths.path_index, weight, minlength=paths.n_paths)
    flat = per_path <= 0
    if flat.any():
        weight[flat[paths.path_index]] = 1.0
        per_path[flat] = paths.lengths[flat]
    # one per-path factor, gathered once, instead of gathering sums and amounts
    factor = np.divide(amounts, per_path, out=np.zeros(paths.n_paths), where=per_path > 0)
    weight *= factor[paths.path_index]
    return np.asarray(weight, dtype=np.float64)


def _repeat_share(paths: PathSet) -> FloatArray:
    """For each touch, one over the number of touches of its path in the same state.

    Counted with ``np.bincount`` over (path, state) codes, a block of paths at a
    time so the code domain stays small; no sort.
    """
    n_states = max(1, paths.n_states)
    block = max(1, chain_module.BINCOUNT_LIMIT // n_states)
    out = np.empty(len(paths.tokens), dtype=np.float64)
    offsets, states, index = paths.offsets, paths.states, paths.path_index
    for first in range(0, paths.n_paths, block):
        last = min(first + block, paths.n_paths)
        a, b = int(offsets[first]), int(offsets[last])
        key = index[a:b] - first
        key *= n_states
        key += states[a:b]
        np.divide(1.0, np.bincount(key, minlength=(last - first) * n_states)[key], out=out[a:b])
    return out


# ---------------------------------------------------------------------- transitions
def transition_rows(paths: PathSet, chain: Chain | None = None) -> list[dict[str, Any]]:
    """The order-1 transition matrix as rows, one per observed transition.

    Keys: ``from_channel``, ``from_stage``, ``to_channel``, ``to_stage``, ``count``
    (weighted transitions) and ``probability`` (count over the source's total).
    The start and absorbing nodes are ``(start)``, ``(conversion)`` and ``(null)``
    in the channel fields, with stage None. ``chain`` may pass a chain of any order
    already built from ``paths``: its order-1 counts follow from it.
    """
    chain = build_chain(paths, 1) if chain is None else order_one(chain)
    coo = chain.counts.tocoo()
    totals = np.asarray(chain.counts.sum(axis=1)).ravel()
    labels = [(START, None)] + [_state_label(paths, int(w)) for w in chain.windows[:, 0]]
    labels += [(CONVERSION, None), (NULL, None)]
    order = np.lexsort((coo.col, coo.row))
    rows = []
    for r, c, v in zip(coo.row[order], coo.col[order], coo.data[order], strict=True):
        src, dst = labels[int(r)], labels[int(c)]
        rows.append(
            {
                "from_channel": src[0],
                "from_stage": src[1],
                "to_channel": dst[0],
                "to_stage": dst[1],
                "count": float(v),
                "probability": float(v / totals[r]),
            }
        )
    return rows


def _state_label(paths: PathSet, state: int) -> tuple[str, str | None]:
    c, s = divmod(state, paths.n_stage_columns)
    return paths.channel_names[c], None if paths.stage_names is None else paths.stage_names[s]


# ---------------------------------------------------------------------- order selection
def order_scores(
    paths: PathSet, orders: tuple[int, ...], n_folds: int, seed: int | None
) -> dict[int, float]:
    """Held-out log-likelihood of conversion per journey, for each order.

    See the Notes of :class:`Markov` for the folds and the predictor.
    """
    conv_f, null_f = fold_counts(paths, n_folds, seed)
    journeys = float(conv_f.sum() + null_f.sum())
    scores: dict[int, float] = {}
    for order in orders:
        last = _last_window_ids(paths, order)
        total = 0.0
        for f in range(n_folds):
            train_c = paths.conversions - conv_f[:, f]
            train_n = paths.nulls - null_f[:, f]
            p = _smoothed_rate(last, train_c, train_n)
            total += float(conv_f[:, f] @ np.log(p) + null_f[:, f] @ np.log1p(-p))
        scores[order] = total / journeys if journeys > 0 else 0.0
    return scores


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
