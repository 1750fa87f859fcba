"""Attribution results: credit on the channel x stage grid, and its tidy tables.

Every model returns a :class:`Credit`. Its core is two grids of shape
``(n_channels, n_stage_columns)`` — conversions and value credited to each
channel-stage pair — from which the channel and stage tables are the marginals.
Over a campaign set the grid's columns are campaigns instead of stages: the pairs
are the ``campaign`` dimension and the channel table is again their marginal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .paths import PathSet

FloatArray = NDArray[np.float64]

DIMENSIONS = ("channel", "stage", "channel_stage", "campaign")
"""The tables a model reports: ``stage`` and ``channel_stage`` over a set with stages,
``campaign`` (channel x campaign) over a campaign set."""

ROW_COLUMNS = (
    "model",
    "dimension",
    "channel",
    "campaign",
    "stage",
    "conversions",
    "value",
    "share",
    "removal_effect",
    "ci_low",
    "ci_high",
)
"""Columns of :meth:`Credit.to_rows`, in order. Stable: clients rely on them."""


@dataclass(frozen=True)
class Interval:
    """A confidence interval on each entry of a dimension's conversions and value."""

    level: float
    conversions_low: FloatArray
    conversions_high: FloatArray
    value_low: FloatArray
    value_high: FloatArray


_DEFERRED = frozenset({"touch_conversions", "touch_value"})

Key = tuple[str | None, str | None, str | None]
"""A table row's ``(channel, stage, campaign)``; None where the dimension has none."""

_GRID_DIMENSION = {"stage": "channel_stage", "campaign": "campaign"}
"""The dimension of the grid's present pairs, by what its columns are."""


@dataclass(frozen=True, eq=False)
class Credit:
    """Credit of one model over one path set.

    Attributes
    ----------
    model : str
        Registered name of the model.
    channel_names, stage_names : tuple of str
        Labels of the grid's rows and columns (``stage_names`` is None without stages;
        campaign labels when ``columns`` is ``"campaign"``).
    conversions, value : ndarray, shape (n_channels, n_stage_columns)
        Conversions and value credited to each channel-stage pair.
    present : ndarray of bool, same shape
        Pairs that occur in the data; ``channel_stage`` rows are listed for these.
    removal_effects : mapping of dimension to ndarray, optional
        Conversion removal effect per entry of a dimension (``channel`` and
        ``stage`` are 1-D, ``channel_stage`` and ``campaign`` have the grid's
        shape). Markov only.
    value_removal_effects : mapping, optional
        The same for the chain's expected conversion value.
    touch_conversions, touch_value : ndarray, optional
        Per touch (aligned with the path set's tokens): the share of its path's
        conversions and value credited to that touch. Summed over a path they give
        the path's totals. This is the per-journey split. A model may defer it
        (``touch_split``): it is then computed on first read of either attribute.
    touch_split : callable, optional
        Computes ``(touch_conversions, touch_value)`` when first read, so that runs
        that never read the per-touch split (most do not) neither compute nor hold
        two arrays the size of the set's touches.
    intervals : mapping of dimension to Interval
        Bootstrap confidence intervals, when asked for.
    warnings : tuple of str
        Caveats on this result a user should read.
    details : mapping
        Model-specific extras: transition matrix, P(conversion), order scores,
        standard errors, the solver that ran.
    columns : str
        What the grid's columns are: ``"stage"``, or ``"campaign"`` over a campaign set.
    """

    model: str
    channel_names: tuple[str, ...]
    stage_names: tuple[str, ...] | None
    conversions: FloatArray
    value: FloatArray
    present: NDArray[np.bool_]
    total_conversions: float
    total_value: float
    removal_effects: Mapping[str, FloatArray] | None = None
    value_removal_effects: Mapping[str, FloatArray] | None = None
    touch_conversions: FloatArray | None = None
    touch_value: FloatArray | None = None
    intervals: Mapping[str, Interval] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    touch_split: Callable[[], tuple[FloatArray, FloatArray]] | None = field(
        default=None, repr=False
    )
    columns: str = "stage"

    def __getattribute__(self, name: str) -> Any:
        if name in _DEFERRED:
            held = object.__getattribute__(self, "__dict__")
            split = held.get("touch_split")
            if split is not None:  # computed once, then kept as plain fields
                held["touch_conversions"], held["touch_value"] = split()
                held["touch_split"] = None
        return object.__getattribute__(self, name)

    # ------------------------------------------------------------------ marginals
    def by_channel(self) -> tuple[FloatArray, FloatArray]:
        """(conversions, value) per channel: the grid summed over stages."""
        return self.conversions.sum(axis=1), self.value.sum(axis=1)

    def by_stage(self) -> tuple[FloatArray, FloatArray]:
        """(conversions, value) per stage; empty arrays when there are no stages."""
        if self.stage_names is None or self.columns != "stage":
            return np.zeros(0), np.zeros(0)
        return self.conversions.sum(axis=0), self.value.sum(axis=0)

    def table(self, dimension: str) -> tuple[list[Key], FloatArray, FloatArray]:
        """Keys ``(channel, stage, campaign)``, conversions and value of one dimension;
        no keys for a dimension this credit does not have."""
        if dimension == "channel":
            conv, val = self.by_channel()
            return [(c, None, None) for c in self.channel_names], conv, val
        if dimension == "stage":
            conv, val = self.by_stage()
            names = self.stage_names if self.columns == "stage" else None
            return [(None, s, None) for s in names or ()], conv, val
        if dimension in ("channel_stage", "campaign"):
            if self.stage_names is None or _GRID_DIMENSION[self.columns] != dimension:
                return [], np.zeros(0), np.zeros(0)
            ci, si = np.nonzero(self.present)
            pairs = zip(ci.tolist(), si.tolist(), strict=True)
            if dimension == "campaign":
                keys: list[Key] = [
                    (self.channel_names[c], None, self.stage_names[s]) for c, s in pairs
                ]
            else:
                keys = [(self.channel_names[c], self.stage_names[s], None) for c, s in pairs]
            return keys, self.conversions[ci, si], self.value[ci, si]
        raise ValueError(f"dimension={dimension!r} is not allowed: must be one of {DIMENSIONS}")

    # ------------------------------------------------------------------ rows
    def to_rows(self) -> list[dict[str, Any]]:
        """The tidy table: one row per dimension x key, columns :data:`ROW_COLUMNS`.

        ``share`` is the key's fraction of the dimension's total conversions
        (of total value when there are no conversions). ``removal_effect``,
        ``ci_low`` and ``ci_high`` (bounds on conversions) are None where the
        model or the request does not provide them.
        """
        rows: list[dict[str, Any]] = []
        for dim in DIMENSIONS:
            keys, conv, val = self.table(dim)
            if not keys:
                continue
            share = _shares(conv, val)
            effects = self._dimension_effects(dim)
            interval = self.intervals.get(dim)
            for k, (channel, stage, campaign) in enumerate(keys):
                rows.append(
                    {
                        "model": self.model,
                        "dimension": dim,
                        "channel": channel,
                        "campaign": campaign,
                        "stage": stage,
                        "conversions": float(conv[k]),
                        "value": float(val[k]),
                        "share": float(share[k]),
                        "removal_effect": None if effects is None else float(effects[k]),
                        "ci_low": None if interval is None else float(interval.conversions_low[k]),
                        "ci_high": None
                        if interval is None
                        else float(interval.conversions_high[k]),
                    }
                )
        return rows

    def _dimension_effects(self, dim: str) -> FloatArray | None:
        if self.removal_effects is None or dim not in self.removal_effects:
            return None
        effects = self.removal_effects[dim]
        if dim in _GRID_DIMENSION.values():
            ci, si = np.nonzero(self.present)
            return effects[ci, si]
        return effects

    def path_rows(self, paths: PathSet) -> list[dict[str, Any]]:
        """Per-path split: one row per path x channel x stage with its credit.

        ``path`` is the path's index, or its id when the set carries ``path_ids``.
        Requires the model to have produced ``touch_conversions``. Over a campaign
        set, ``stage`` holds the touch's campaign.
        """
        if self.touch_conversions is None or self.touch_value is None:
            raise ValueError(f"model {self.model!r} produced no per-path split")
        key = paths.path_index * paths.n_states + paths.states
        uniq, inv = np.unique(key, return_inverse=True)
        conv = np.bincount(inv, self.touch_conversions, minlength=len(uniq))
        val = np.bincount(inv, self.touch_value, minlength=len(uniq))
        ids = paths.path_ids
        rows = []
        for k, code in enumerate(uniq.tolist()):
            p, state = divmod(code, paths.n_states)
            c, s = divmod(state, paths.n_stage_columns)
            rows.append(
                {
                    "path": ids[p] if ids is not None else p,
                    "channel": self.channel_names[c],
                    "stage": None if self.stage_names is None else self.stage_names[s],
                    "conversions": float(conv[k]),
                    "value": float(val[k]),
                }
            )
        return rows

    def table_touch_split(self, paths: PathSet) -> tuple[FloatArray, FloatArray]:
        """Per touch, conversions and value that add up, by channel-stage pair over
        all paths, to this credit's grid exactly: the table shared out over touches.

        ``paths`` is the set the model attributed. For models whose credit is a sum
        of its per-touch split (heuristics, additive Shapley) this is that split.
        Markov and the game-based Shapley values credit pairs globally; each pair's
        table credit is then shared among its touches in proportion to their split.

        Notes
        -----
        For a pair whose touches have no split at all (a Shapley value below zero, or
        a pair seen only where nothing converted), the pair's credit is shared in
        proportion to its touches' path conversions (path value, for value), and
        equally among its touches when those are zero too. Every touch of a pair with
        no credit gets zero. Per-day series use this to land each path's share of
        the table on the days its journeys converted.
        """
        if self.touch_conversions is None or self.touch_value is None:
            raise ValueError(f"model {self.model!r} produced no per-path split")
        states = paths.states
        index = paths.path_index
        return (
            _share_out(self.conversions.ravel(), states, self.touch_conversions,
                       paths.conversions[index]),
            _share_out(self.value.ravel(), states, self.touch_value, paths.value[index]),
        )  # fmt: skip

    def with_intervals(self, intervals: Mapping[str, Interval]) -> Credit:
        return replace(self, intervals=dict(intervals))

    def with_warnings(self, *warnings: str) -> Credit:
        return replace(self, warnings=self.warnings + tuple(warnings))


def _share_out(
    table: FloatArray, states: NDArray[np.int64], split: FloatArray, fallback: FloatArray
) -> FloatArray:
    """Each state's ``table`` amount shared among its touches by weight: ``split``
    where the state's split sums to more than zero, else ``fallback``, else equal."""
    n = len(table)
    out = np.zeros(len(states), dtype=np.float64)
    left = np.ones(n, dtype=bool)
    for weights in (np.maximum(split, 0.0), np.maximum(fallback, 0.0), np.ones(len(states))):
        sums = np.bincount(states, weights, minlength=n)
        use = left & (sums > 0)
        factor = np.divide(table, sums, out=np.zeros(n), where=use)
        take = use[states]
        out[take] = weights[take] * factor[states[take]]
        left &= ~use
    return out


def _shares(conv: FloatArray, val: FloatArray) -> FloatArray:
    """Fractions of total conversions; of total value when nothing converted."""
    for amounts in (conv, val):
        total = amounts.sum()
        if total > 0:
            shares: FloatArray = amounts / total
            return shares
    return np.zeros_like(conv)


# ---------------------------------------------------------------------- builders
def no_null_warning(paths: PathSet) -> tuple[str, ...]:
    """The warning every model adds when no journey failed to convert."""
    if paths.total_nulls == 0 and paths.total_conversions > 0:
        return (
            "The data has no non-converting journeys: every journey converts, so credit "
            "reflects only path structure, not what separates converters from others.",
        )
    return ()


def credit_from_touch_weights(
    model: str,
    paths: PathSet,
    weights: FloatArray,
    *,
    warnings: tuple[str, ...] = (),
    details: Mapping[str, Any] | None = None,
) -> Credit:
    """Build a :class:`Credit` from per-touch weights.

    ``weights`` is aligned with the path set's tokens; the weights of each path sum
    to 1 (its conversions and value are split in those proportions). Used by every
    model whose credit is a per-touch split: the heuristics and the additive
    Shapley variants.
    """
    conv = weights * paths.conversions[paths.path_index]
    val = weights * paths.value[paths.path_index]
    return Credit(
        model=model,
        channel_names=paths.channel_names,
        stage_names=paths.stage_names,
        conversions=grid(paths, conv),
        value=grid(paths, val),
        present=paths.state_present,
        total_conversions=paths.total_conversions,
        total_value=paths.total_value,
        touch_conversions=conv,
        touch_value=val,
        warnings=no_null_warning(paths) + warnings,
        details=dict(details or {}),
        columns=paths.columns,
    )


def grid(paths: PathSet, touch_amounts: FloatArray) -> FloatArray:
    """Sum per-touch amounts onto the ``(n_channels, n_stage_columns)`` grid."""
    flat = np.asarray(
        np.bincount(paths.states, touch_amounts, minlength=paths.n_states), dtype=np.float64
    )
    return flat.reshape(paths.n_channels, paths.n_stage_columns)


def state_grid(paths: PathSet, per_state: FloatArray) -> FloatArray:
    """Reshape a per-state vector (length ``n_states``) to the credit grid."""
    return np.asarray(per_state, dtype=np.float64).reshape(paths.n_channels, paths.n_stage_columns)
