"""The stage funnel and drop-off reports of :mod:`attribution.journeys`.

:func:`funnel` follows journeys through the stages in order; :func:`dropoff` ranks
the stage x channel pairs where journeys end without converting, with a Wilson
interval on each rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtri

from ._reports import _cells, _distinct, _first_entries, _ratio, _rows, _stage_ranks, _sum_by
from .exceptions import InvalidParameter
from .paths import PathSet

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

FUNNEL_COLUMNS = (
    "stage", "step", "reached", "moved_on", "converted", "dropped_out", "looped_back",
    "converting", "step_rate", "cumulative_rate", "conversion_rate",
)  # fmt: skip
DROPOFF_COLUMNS = (
    "rank", "stage", "channel", "passing", "dropped_out", "rate", "ci_low", "ci_high",
)  # fmt: skip


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


# ---------------------------------------------------------------------- helpers
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
