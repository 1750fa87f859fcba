"""Journey analytics: stage funnel, drop-off, loops back, channel roles and timing.

Attribution says which channels earned the conversions; these reports say where
journeys break. All of them run on a :class:`~attribution.paths.PathSet`: an
aggregated set (each unique path weighted by its journeys, ``conversions + nulls``)
for everything but :func:`timing`, which needs per-journey touch and conversion
times. Every report is vectorised over touches (the only Python loops run over
stages) and returns a small frozen result with ``to_rows()``: tidy rows with the
fixed columns its ``COLUMNS`` constant lists.

Stage order
-----------
``stage_order`` lists stage names first to last (e.g. awareness, consideration,
decision, retention, advocacy). It must name every stage the paths use; stages it
lists that no path uses get zero rows. A stage is *later* than another when it comes
after it in this order.

Which stage's touches conversions depend on most (the Markov removal effect of every
state in a stage) is not computed here: the Markov model reports it as
``Credit.removal_effects["stage"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtri

from .exceptions import InvalidParameter, MissingData
from .paths import PathSet

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

FUNNEL_COLUMNS = (
    "stage", "step", "reached", "moved_on", "converted", "dropped_out", "looped_back",
    "converting", "step_rate", "cumulative_rate", "conversion_rate",
)  # fmt: skip
DROPOFF_COLUMNS = (
    "rank", "stage", "channel", "passing", "dropped_out", "rate", "ci_low", "ci_high",
)  # fmt: skip
LOOP_COLUMNS = ("from_stage", "to_stage", "channel", "journeys", "steps", "conversions")
LOOP_SUMMARY_COLUMNS = ("kind", "journeys", "conversions", "conversion_rate")
ROLE_COLUMNS = ("channel", "opens", "assists", "closes", "touched", "assist_ratio")
TIMING_COLUMNS = ("measure", "from_stage", "to_stage", "journeys", "percentile", "seconds")


def _sum_by(codes: IntArray, weights: FloatArray, n: int) -> FloatArray:
    """Sum ``weights`` by integer code into ``n`` bins (a typed ``np.bincount``)."""
    return np.bincount(codes, weights, minlength=n).astype(np.float64, copy=False)


def _distinct(keys: IntArray) -> IntArray:
    """Sorted distinct values; a plain sort, several times faster than ``np.unique`` here."""
    ordered = np.sort(keys)
    keep = np.ones(len(ordered), dtype=bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    distinct: IntArray = ordered[keep]
    return distinct


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    """``num / den``, NaN where ``den`` is zero (an undefined rate, not 0%)."""
    out = np.full(np.shape(num), np.nan)
    np.divide(num, den, out=out, where=np.asarray(den) > 0)
    return out


def _cells(values: FloatArray) -> list[float | None]:
    """Table cells: NaN (undefined) becomes None so JSON and CSV show it as empty."""
    return [None if np.isnan(x) else x for x in np.asarray(values, dtype=np.float64).tolist()]


def _rows(columns: tuple[str, ...], values: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Column-wise values to row dicts with ``columns`` as keys, in order."""
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


# ---------------------------------------------------------------------- funnel
@dataclass(frozen=True, eq=False)
class Funnel:
    """The stage funnel: counts per stage, in stage order (see :func:`funnel`).

    ``continued`` counts the journeys that reached both this stage and the previous
    one in the order (for the first stage, all that reached it): the numerator of
    ``step_rate``. The other counts are the columns :func:`funnel` defines.
    """

    stages: tuple[str, ...]
    reached: FloatArray
    moved_on: FloatArray
    converted: FloatArray
    dropped_out: FloatArray
    looped_back: FloatArray
    converting: FloatArray
    continued: FloatArray
    total_journeys: float

    @property
    def step_rate(self) -> FloatArray:
        """Share of the previous stage's journeys that reached this one too."""
        previous = np.concatenate([[self.total_journeys], self.reached[:-1]])
        return _ratio(self.continued, previous)

    @property
    def cumulative_rate(self) -> FloatArray:
        """Share of all journeys that reached the stage."""
        return _ratio(self.reached, np.full(len(self.reached), self.total_journeys))

    @property
    def conversion_rate(self) -> FloatArray:
        """Share of the journeys that reached the stage that converted."""
        return _ratio(self.converting, self.reached)

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per stage in order; columns :data:`FUNNEL_COLUMNS`; rates None if undefined."""
        counts = (self.reached, self.moved_on, self.converted, self.dropped_out,
                  self.looped_back, self.converting)  # fmt: skip
        rates = (self.step_rate, self.cumulative_rate, self.conversion_rate)
        steps = range(1, len(self.stages) + 1)
        return _rows(FUNNEL_COLUMNS, [self.stages, steps, *map(_cells, counts + rates)])


def funnel(paths: PathSet, stage_order: Sequence[str]) -> Funnel:
    """Per stage: journeys that reached it and what became of them there.

    Parameters
    ----------
    paths : PathSet
        Paths with stages; each path counts ``conversions + nulls`` journeys.
    stage_order : sequence of str
        Stage names first to last; must name every stage in the paths.

    Returns
    -------
    Funnel
        Rows in ``stage_order`` with the columns of :data:`FUNNEL_COLUMNS`.

    Raises
    ------
    MissingData
        The paths carry no stages.
    InvalidParameter
        ``stage_order`` repeats a stage or leaves out one the paths use.

    Notes
    -----
    A journey *reached* a stage when any of its touches is in it. Every journey
    that reached a stage has exactly one outcome there, so
    ``reached = moved_on + converted + dropped_out + looped_back``:

    - *converted*: its last touch is in the stage and it converted (it converted
      from here);
    - *dropped_out*: its last touch is in the stage and it did not convert;
    - *moved_on*: its last touch is elsewhere, and some touch after its first touch
      in the stage is in a later stage;
    - *looped_back*: its last touch is elsewhere and every touch after its first
      touch in the stage is in the same or an earlier stage: it went back and
      ended (converting or not) in an earlier stage.

    The last touch decides first, so a journey that went on and came back to end
    here counts as converted or dropped out here, never as moved on; summed over
    stages, *converted* gives all conversions and *dropped_out* all non-converting
    journeys. *converting* counts the journeys that reached the stage and converted
    anywhere. Rates: ``step_rate`` = journeys that reached both the previous stage
    and this one / journeys that reached the previous stage (for the first stage,
    journeys that reached it / all journeys); ``cumulative_rate`` = reached / all
    journeys; ``conversion_rate`` = converting / reached. Rates with a zero
    denominator are undefined (NaN, None in rows).
    """
    rank = _stage_ranks(paths, stage_order)
    n_stages = len(stage_order)
    weight = paths.conversions + paths.nulls
    last_rank = rank[paths.offsets[1:] - 1] if paths.n_paths else rank[:0]
    later = _later_max(rank, paths)
    counts = np.zeros((7, n_stages))
    reached_before = np.ones(paths.n_paths, dtype=bool)
    for k in range(n_stages):
        owner, first = _first_entries(rank, paths, k)
        ends_here = last_rank[owner] == k
        moved = ~ends_here & (later[first] > k)
        w, conv, nul = weight[owner], paths.conversions[owner], paths.nulls[owner]
        counts[:, k] = (
            w.sum(),
            w[moved].sum(),
            conv[ends_here].sum(),
            nul[ends_here].sum(),
            w[~ends_here & ~moved].sum(),
            conv.sum(),
            w[reached_before[owner]].sum(),
        )
        reached_before = np.zeros(paths.n_paths, dtype=bool)
        reached_before[owner] = True
    reached, moved_on, converted, dropped_out, looped_back, converting, continued = counts
    return Funnel(
        tuple(stage_order), reached, moved_on, converted, dropped_out, looped_back,
        converting, continued, total_journeys=float(weight.sum()),
    )  # fmt: skip


# ---------------------------------------------------------------------- drop-off
@dataclass(frozen=True, eq=False)
class Dropoff:
    """Drop-off per stage x channel, ranked (see :func:`dropoff`)."""

    stages: tuple[str | None, ...]
    channels: tuple[str, ...]
    passing: FloatArray
    dropped_out: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    level: float

    @property
    def rate(self) -> FloatArray:
        return _ratio(self.dropped_out, self.passing)

    def to_rows(self) -> list[dict[str, Any]]:
        """Rows in rank order (1 = worst); columns :data:`DROPOFF_COLUMNS`."""
        ranks = range(1, len(self.channels) + 1)
        numbers = (self.passing, self.dropped_out, self.rate, self.ci_low, self.ci_high)
        return _rows(DROPOFF_COLUMNS, [ranks, self.stages, self.channels, *map(_cells, numbers)])


def dropoff(paths: PathSet, level: float = 0.95) -> Dropoff:
    """Where journeys end without converting, by stage x channel of their last touch.

    Parameters
    ----------
    paths : PathSet
        Paths, with or without stages (without, the stage is None).
    level : float, default 0.95
        Confidence level of the Wilson interval, strictly between 0 and 1.

    Returns
    -------
    Dropoff
        One row per stage x channel pair some touch is in, worst first.

    Notes
    -----
    *passing* is the number of journeys with at least one touch in the pair;
    *dropped_out* the number whose last touch is in the pair and that did not
    convert. The rate is dropped_out / passing with the Wilson score interval
    ``(p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)``, where ``p`` is the
    rate, ``n`` passing and ``z`` the normal quantile for ``level``. Rows are ranked
    by the interval's lower bound (then rate, then passing, descending), so a pair
    seen in one journey that dropped out (rate 100%, lower bound about 0.21) does
    not outrank a well-measured 40%.

    References
    ----------
    .. [1] E. B. Wilson, "Probable inference, the law of succession, and statistical
       inference", Journal of the American Statistical Association 22(158),
       pp. 209-212, 1927.
    """
    if not isinstance(level, float | int) or isinstance(level, bool) or not 0 < level < 1:
        raise InvalidParameter("level", level, "a number in (0, 1)")
    n_states = paths.n_states
    weight = paths.conversions + paths.nulls
    pairs = _distinct(paths.path_index * n_states + paths.states)
    passing = _sum_by(pairs % n_states, weight[pairs // n_states], n_states)
    last_state = paths.states[paths.offsets[1:] - 1]
    dropped = _sum_by(last_state, paths.nulls, n_states)
    present = np.flatnonzero(passing > 0)
    low, high = wilson_interval(dropped[present], passing[present], level)
    rate = dropped[present] / passing[present]
    order = np.lexsort((-passing[present], -rate, -low))
    chosen = present[order]
    channel, stage = np.divmod(chosen, paths.n_stage_columns)
    names = paths.stage_names
    return Dropoff(
        stages=tuple(None if names is None else names[s] for s in stage.tolist()),
        channels=tuple(paths.channel_names[c] for c in channel.tolist()),
        passing=passing[chosen],
        dropped_out=dropped[chosen],
        ci_low=low[order],
        ci_high=high[order],
        level=float(level),
    )


def wilson_interval(
    successes: FloatArray, trials: FloatArray, level: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval for binomial proportions (``trials`` > 0), elementwise."""
    z = float(ndtri(0.5 + level / 2.0))
    n = np.asarray(trials, dtype=np.float64)
    p = np.asarray(successes, dtype=np.float64) / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


# ---------------------------------------------------------------------- loops
@dataclass(frozen=True, eq=False)
class Loops:
    """Journeys going back to earlier stages (see :func:`loops`)."""

    from_stages: tuple[str, ...]
    to_stages: tuple[str, ...]
    channels: tuple[str | None, ...]
    journeys: FloatArray
    steps: FloatArray
    conversions: FloatArray
    looping_journeys: float
    looping_conversions: float
    straight_journeys: float
    straight_conversions: float

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per (from, to) with channel None, then per channel; :data:`LOOP_COLUMNS`."""
        numbers = map(_cells, (self.journeys, self.steps, self.conversions))
        return _rows(LOOP_COLUMNS, [self.from_stages, self.to_stages, self.channels, *numbers])

    def summary_rows(self) -> list[dict[str, Any]]:
        """Looping against straight journeys; columns :data:`LOOP_SUMMARY_COLUMNS`."""
        journeys = np.array([self.looping_journeys, self.straight_journeys])
        conversions = np.array([self.looping_conversions, self.straight_conversions])
        rates = _ratio(conversions, journeys)
        return _rows(
            LOOP_SUMMARY_COLUMNS,
            [("looping", "straight"), *map(_cells, (journeys, conversions, rates))],
        )


def loops(paths: PathSet, stage_order: Sequence[str]) -> Loops:
    """Journeys that go back to an earlier stage: how often, where, through which channel.

    Parameters
    ----------
    paths : PathSet
        Paths with stages; each path counts ``conversions + nulls`` journeys.
    stage_order : sequence of str
        Stage names first to last; must name every stage in the paths.

    Returns
    -------
    Loops
        Transition rows and the looping-against-straight summary.

    Notes
    -----
    A *step back* is a touch whose stage is earlier in ``stage_order`` than the
    previous touch's stage; it goes *from* the previous touch's stage *to* its own,
    *through* its own channel. A journey *loops* when it has at least one step back,
    and is *straight* otherwise. Per (from, to) and per (from, to, channel):
    ``journeys`` counts the journeys with at least one such step, ``steps`` the steps
    themselves (a journey stepping back twice the same way counts twice) and
    ``conversions`` the converting journeys among ``journeys``. Rows with channel
    None sum over channels (their journeys are distinct journeys, not a sum).
    The summary compares conversions / journeys of looping and straight journeys.
    """
    rank = _stage_ranks(paths, stage_order)
    n_stages, n_channels = len(stage_order), paths.n_channels
    weight = paths.conversions + paths.nulls
    back = np.zeros(len(rank), dtype=bool)
    back[1:] = rank[1:] < rank[:-1]
    back[paths.offsets[:-1]] = False  # a first touch has no previous touch in its path
    at = np.flatnonzero(back)
    owner = paths.path_index[at]
    pair = rank[at - 1] * n_stages + rank[at]
    # channel code 0 stands for "all channels", channel c is c + 1: totals sort first
    keys = np.concatenate([pair * (n_channels + 1), pair * (n_channels + 1) + paths.tokens[at] + 1])
    owners = np.concatenate([owner, owner])
    n_keys = n_stages * n_stages * (n_channels + 1)
    steps = _sum_by(keys, weight[owners], n_keys)
    distinct = _distinct(owners * n_keys + keys)
    who, what = np.divmod(distinct, n_keys)
    journeys = _sum_by(what, weight[who], n_keys)
    conversions = _sum_by(what, paths.conversions[who], n_keys)
    looping = np.zeros(paths.n_paths, dtype=bool)
    looping[owner] = True
    used = np.flatnonzero(journeys > 0)
    pair_code, channel = np.divmod(used, n_channels + 1)
    src, dst = np.divmod(pair_code, n_stages)
    names = tuple(stage_order)
    return Loops(
        from_stages=tuple(names[s] for s in src.tolist()),
        to_stages=tuple(names[s] for s in dst.tolist()),
        channels=tuple(None if c == 0 else paths.channel_names[c - 1] for c in channel.tolist()),
        journeys=journeys[used],
        steps=steps[used],
        conversions=conversions[used],
        looping_journeys=float(weight[looping].sum()),
        looping_conversions=float(paths.conversions[looping].sum()),
        straight_journeys=float(weight[~looping].sum()),
        straight_conversions=float(paths.conversions[~looping].sum()),
    )


# ---------------------------------------------------------------------- channel roles
@dataclass(frozen=True, eq=False)
class ChannelRoles:
    """How each channel takes part in converting journeys (see :func:`channel_roles`)."""

    channels: tuple[str, ...]
    opens: FloatArray
    assists: FloatArray
    closes: FloatArray
    touched: FloatArray

    @property
    def assist_ratio(self) -> FloatArray:
        """Assisted over closed conversions; NaN where the channel closes none."""
        return _ratio(self.assists, self.closes)

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per channel in the path set's order; columns :data:`ROLE_COLUMNS`."""
        numbers = (self.opens, self.assists, self.closes, self.touched, self.assist_ratio)
        return _rows(ROLE_COLUMNS, [self.channels, *map(_cells, numbers)])


def channel_roles(paths: PathSet) -> ChannelRoles:
    """Per channel: converting journeys it opens, assists and closes.

    Parameters
    ----------
    paths : PathSet
        Paths, with or without stages; each path counts ``conversions`` converting
        journeys (its non-converting journeys play no part).

    Returns
    -------
    ChannelRoles
        One row per channel with the columns of :data:`ROLE_COLUMNS`.

    Notes
    -----
    In converting journeys: *opens* counts those whose first touch is the channel,
    *closes* those whose last touch is, *assists* those with the channel on at
    least one middle touch (neither first nor last; a journey counts once however
    many middle touches the channel has), and *touched* those with the channel on
    any touch. A single-touch journey counts as opened and closed by its channel
    and has no assist; a two-touch journey has no middle touch. The
    assisted-to-last-touch ratio is assists / closes: above 1, a channel helps
    more conversions than it closes.
    """
    k = paths.n_channels
    conv = paths.conversions
    first = paths.tokens[paths.offsets[:-1]]
    last = paths.tokens[paths.offsets[1:] - 1]
    length = paths.lengths[paths.path_index]
    middle = (paths.position > 0) & (paths.position < length - 1)
    return ChannelRoles(
        channels=paths.channel_names,
        opens=_sum_by(first, conv, k),
        assists=_per_channel_journeys(paths, middle, conv),
        closes=_sum_by(last, conv, k),
        touched=_per_channel_journeys(paths, np.ones(len(paths.tokens), dtype=bool), conv),
    )


def _per_channel_journeys(paths: PathSet, touches: BoolArray, weight: FloatArray) -> FloatArray:
    """Per channel, the weight of the paths with at least one selected touch of it."""
    k = paths.n_channels
    pairs = _distinct(paths.path_index[touches] * k + paths.tokens[touches])
    return _sum_by(pairs % k, weight[pairs // k], k)


# ---------------------------------------------------------------------- timing
@dataclass(frozen=True, eq=False)
class Timing:
    """Percentiles of time to conversion and between stages, in seconds (see :func:`timing`)."""

    percentiles: tuple[float, ...]
    conversions: float
    to_conversion: FloatArray
    stage_pairs: tuple[tuple[str, str], ...]
    pair_journeys: FloatArray
    between_stages: FloatArray

    def to_rows(self) -> list[dict[str, Any]]:
        """Long format, one row per measure x percentile; columns :data:`TIMING_COLUMNS`.

        ``measure`` is ``"time_to_conversion"`` (stages None) or ``"stage_to_stage"``;
        ``seconds`` is None when no journey qualifies.
        """
        q = list(self.percentiles)
        pairs = self.stage_pairs
        measures = ["time_to_conversion"] * len(q) + ["stage_to_stage"] * (len(pairs) * len(q))
        froms = [None] * len(q) + [a for a, _ in pairs for _ in q]
        tos = [None] * len(q) + [b for _, b in pairs for _ in q]
        journeys = np.repeat(np.concatenate([[self.conversions], self.pair_journeys]), len(q))
        seconds = np.concatenate([self.to_conversion, self.between_stages.ravel()])
        cells: list[Sequence[Any]] = [
            measures, froms, tos, _cells(journeys), q * (1 + len(pairs)), _cells(seconds),
        ]  # fmt: skip
        return _rows(TIMING_COLUMNS, cells)


def timing(
    paths: PathSet,
    stage_order: Sequence[str] | None = None,
    percentiles: Sequence[float] = (25, 50, 75, 90),
) -> Timing:
    """Time to conversion, and time between first entering consecutive stages.

    Parameters
    ----------
    paths : PathSet
        Per-journey paths with touch ``times`` and ``conversion_times`` (seconds).
    stage_order : sequence of str, optional
        Stage names first to last; without it only time to conversion is reported.
    percentiles : sequence of float, default (25, 50, 75, 90)
        Percentiles to report, each in [0, 100].

    Returns
    -------
    Timing
        Percentiles in seconds.

    Raises
    ------
    MissingData
        The paths carry no touch or conversion times, or ``stage_order`` is given
        for paths without stages.

    Notes
    -----
    *Time to conversion* of a converting journey is its conversion time minus its
    first touch's time. *Time between stages* ``a -> b`` (consecutive in
    ``stage_order``) is the time of the journey's first touch in ``b`` minus that
    of its first touch in ``a``, over journeys that entered both, ``a`` first.
    Percentiles are weighted by journeys (conversions for time to conversion) and
    use the inverted empirical distribution: the smallest observed time with at
    least that share of journeys at or below it, so every figure is a real
    journey's time.
    """
    if paths.times is None or paths.conversion_times is None:
        raise MissingData("timing needs per-journey touch times and conversion times")
    q = _check_percentiles(percentiles)
    elapsed = paths.conversion_times - paths.times[paths.offsets[:-1]]
    converted = (paths.conversions > 0) & np.isfinite(elapsed)
    to_conversion = _weighted_percentiles(elapsed[converted], paths.conversions[converted], q)
    pairs: list[tuple[str, str]] = []
    journeys: list[float] = []
    between: list[FloatArray] = []
    if stage_order is not None:
        rank = _stage_ranks(paths, stage_order)
        weight = paths.conversions + paths.nulls
        entered = [_entry_times(rank, paths, k) for k in range(len(stage_order))]
        for k in range(len(stage_order) - 1):
            gap = entered[k + 1] - entered[k]
            ok = np.isfinite(gap) & (gap >= 0)
            pairs.append((stage_order[k], stage_order[k + 1]))
            journeys.append(float(weight[ok].sum()))
            between.append(_weighted_percentiles(gap[ok], weight[ok], q))
    return Timing(
        percentiles=tuple(float(p) for p in q),
        conversions=float(paths.conversions[converted].sum()),
        to_conversion=to_conversion,
        stage_pairs=tuple(pairs),
        pair_journeys=np.array(journeys, dtype=np.float64),
        between_stages=np.array(between, dtype=np.float64).reshape(len(pairs), len(q)),
    )


def _entry_times(rank: IntArray, paths: PathSet, k: int) -> FloatArray:
    """Per path, the time of its first touch at rank ``k`` (NaN: never there)."""
    assert paths.times is not None
    owner, first = _first_entries(rank, paths, k)
    out = np.full(paths.n_paths, np.nan)
    out[owner] = paths.times[first]
    return out


def _check_percentiles(percentiles: Sequence[float]) -> FloatArray:
    try:
        q = np.asarray(percentiles, dtype=np.float64)
    except (TypeError, ValueError):
        q = np.array([np.nan])
    if q.ndim != 1 or len(q) == 0 or not np.all((q >= 0) & (q <= 100)):
        raise InvalidParameter(
            "percentiles", percentiles, "a non-empty list of numbers in [0, 100]"
        )
    return q


def _weighted_percentiles(values: FloatArray, weights: FloatArray, q: FloatArray) -> FloatArray:
    keep = weights > 0
    if not keep.any():
        return np.full(len(q), np.nan)
    out: FloatArray = np.percentile(values[keep], q, weights=weights[keep], method="inverted_cdf")
    return out


# ---------------------------------------------------------------------- helpers
def _stage_ranks(paths: PathSet, stage_order: Sequence[str]) -> IntArray:
    """Each touch's stage as its 0-based place in ``stage_order``."""
    if paths.stage_names is None or paths.stage_tokens is None:
        raise MissingData("this report needs touch stages; the paths carry none")
    order = list(stage_order)
    if isinstance(stage_order, str) or not order or len(set(order)) != len(order):
        raise InvalidParameter("stage_order", stage_order, "a non-empty list of distinct stages")
    missing = [s for s in paths.stage_names if s not in order]
    if missing:
        raise InvalidParameter(
            "stage_order", stage_order, f"a list naming every stage in the data; missing {missing}"
        )
    lookup = np.array([order.index(s) for s in paths.stage_names], dtype=np.int64)
    ranks: IntArray = lookup[paths.stage_tokens]
    return ranks


def _first_entries(rank: IntArray, paths: PathSet, k: int) -> tuple[IntArray, IntArray]:
    """Paths with a touch at rank ``k``, and the index of their first such touch."""
    at = np.flatnonzero(rank == k)
    owner = paths.path_index[at]
    # touches are in path order, so a path's first hit is where the owner changes
    new = np.ones(len(at), dtype=bool)
    new[1:] = owner[1:] != owner[:-1]
    return owner[new], at[new]


def _later_max(rank: IntArray, paths: PathSet) -> IntArray:
    """For each touch, the highest rank among the later touches of its path (-1: none).

    A reversed running maximum, kept from crossing paths by lifting each path's
    ranks above those of every later path.
    """
    if len(rank) == 0:
        return rank.copy()
    lift = (paths.n_paths - paths.path_index) * (int(rank.max()) + 2)
    running = np.maximum.accumulate((rank + lift)[::-1])[::-1] - lift
    later = np.full(len(rank), -1, dtype=np.int64)
    later[:-1] = running[1:]
    later[paths.offsets[1:] - 1] = -1
    return later
