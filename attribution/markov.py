"""Markov-chain attribution: exact removal effects of an absorbing chain of order 1 to 4.

The chain is counted and solved by :mod:`attribution.chain`; this module turns its
removal effects into credit per channel, per stage and per channel-stage pair, and
picks the order by cross-validation when asked.

The transition rows of ``details["transitions"]`` are built in
:mod:`attribution._transitions` and the order is chosen in
:mod:`attribution._order_choice`; import them from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from . import chain as chain_module
from ._order_choice import best_order, order_scores
from ._transitions import CONVERSION, NULL, START, transition_rows
from .chain import Chain, Removals, SolverError, build_chain, solve_removals
from .exceptions import InvalidParameter
from .params import Param, check_params
from .paths import PathSet
from .result import Credit, no_null_warning

__all__ = [
    "CONVERSION",
    "IDENTITY_RTOL",
    "NULL",
    "ORDERS",
    "START",
    "Effects",
    "Markov",
    "best_order",
    "order_scores",
    "removal_effects",
    "touch_split",
    "transition_rows",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

ORDERS = (1, 2, 3, 4)
"""Orders a chain may have."""

IDENTITY_RTOL = 1e-9
"""Relative tolerance of the check P(conversion) = conversions / journeys."""

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
    States are channels, or channel-stage pairs when the set has stages, or
    channel-campaign pairs in a campaign set (:mod:`attribution.campaigns`). Each
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
    the training folds' overall rate with the weight of one journey: the chain's
    probability that a walk which made the path's touches ends in conversion
    rather than null, since the transitions before the last state cancel. The
    score is the held-out log-likelihood per journey, the negative of the pooled
    log-loss :func:`attribution.holdout.validate` reports for the same folds and
    seed. The highest score wins; ties go to the lower order.

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

    def split() -> tuple[FloatArray, FloatArray]:
        share = paths.derived("repeat_share", _repeat_share)
        return (
            touch_split(paths, grid_fx.ravel(), paths.conversions, share),
            touch_split(paths, grid_vfx.ravel(), paths.value, share),
        )

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
        touch_split=split,  # most runs never read it
        warnings=warnings,
        details=details,
        columns=paths.columns,
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
    shaped) when the set has stages; ``"campaign"`` (grid shaped) in a campaign set.
    Effects are clipped to [0, 1]: removing states can only lower P(conversion), so
    anything outside is rounding.
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
    if paths.has_campaigns:
        present = np.flatnonzero(paths.state_present.ravel())
        add("campaign", state[None, :] == present[:, None], (n_ch, n_sc), present)
    elif paths.has_stages:
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
    """Effects on the credit grid: the pairs' with stages or campaigns, else the channels'."""
    if paths.has_campaigns:
        return effects["campaign"]
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
    weight *= paths.derived("repeat_share", _repeat_share) if repeat_share is None else repeat_share
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
