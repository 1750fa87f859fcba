"""Seeded synthetic customer journeys with known channel effects.

Used by the benchmarks, the ``pathcredit demo`` data set and the tests. Everything is
vectorised: the only Python loop runs over touch *positions* (at most ``max_length``
iterations), each step drawing the next touch of every journey still running, so
10^7 journeys take seconds, not hours.

The process
-----------
- **Length**: geometric with mean ``mean_length``, capped at ``max_length``; a
  journey simply stops, so journeys drop out at whatever stage they had reached.
- **Stages**: the first touch is in the first stage (sometimes the second); each
  later touch advances one stage with probability ``advance_probability``, loops back
  to a uniformly chosen earlier stage with probability ``loop_probability``, and
  otherwise stays.
- **Channels**: the first channel is drawn from a Zipf-like popularity
  (``1 / rank ** zipf_exponent``) times a per-stage affinity; each later channel
  from a first-order transition row of the previous channel (a Dirichlet draw
  around the popularity) times the new stage's affinity, with an extra
  ``repeat_probability`` of touching the same channel again.
- **Conversion**: noisy-OR over touches. Each touch of channel ``c`` independently
  "fires" with probability ``true_effects[c]`` and a base rate fires once per
  journey; the journey converts when anything fired, damped by how far it got:
  ``P = stage_factor[deepest stage] * (1 - (1 - base_rate) * prod(1 - effect))``
  with ``stage_factor`` rising to 1 at the third stage (decision), so journeys that
  never reached a decision rarely convert.
- **Value**: lognormal per conversion, rounded to cents.
- **Times**: touches hours to days apart (lognormal gaps), journeys placed within the
  ``window_days`` before :data:`REFERENCE_TIME`; conversion shortly after the last
  touch.

The journeys come back as :class:`SyntheticJourneys`, which lives with the names of
the synthetic world in :mod:`attribution._synthetic_records`; import it from here.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._synthetic_records import (
    CAMPAIGN_NAMES,
    CHANNEL_NAMES,
    DEVICE_NAMES,
    REGION_NAMES,
    SEGMENT_NAMES,
    STAGE_NAMES,
    SyntheticJourneys,
)
from .exceptions import InvalidParameter
from .params import Param

__all__ = [
    "CAMPAIGN_NAMES",
    "CHANNEL_NAMES",
    "DAY",
    "DEVICE_NAMES",
    "REFERENCE_TIME",
    "REGION_NAMES",
    "SEGMENT_NAMES",
    "STAGE_NAMES",
    "SyntheticJourneys",
    "generate",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
SmallArray = NDArray[np.int8]

REFERENCE_TIME = 1767225600.0
"""2026-01-01T00:00:00Z: every synthetic journey ends before it, whatever the seed."""

DAY = 86400.0

_CONSTRAINTS = {
    "n_journeys": Param("int", 0, 10**9),
    "n_channels": Param("int", 1, 250),
    "n_stages": Param("int", 1, 50),
    "seed": Param("seed"),
    "mean_length": Param("float", 1, 64),
    "max_length": Param("int", 1, 1000),
    "zipf_exponent": Param("float", 0, 5),
    "repeat_probability": Param("float", 0, 1, open_high=True),
    "advance_probability": Param("float", 0, 1),
    "loop_probability": Param("float", 0, 1),
    "base_rate": Param("float", 0, 1),
    "window_days": Param("float", 1, 3650),
}


def generate(
    n_journeys: int,
    n_channels: int = 10,
    n_stages: int = 5,
    seed: int = 0,
    mean_length: float = 4.0,
    *,
    max_length: int = 64,
    zipf_exponent: float = 1.0,
    repeat_probability: float = 0.2,
    advance_probability: float = 0.4,
    loop_probability: float = 0.08,
    base_rate: float = 0.01,
    window_days: float = 90.0,
) -> SyntheticJourneys:
    """Generate ``n_journeys`` seeded synthetic journeys (see the module docstring).

    Parameters
    ----------
    n_journeys, n_channels, n_stages : int
        Sizes; channel and stage names follow :data:`CHANNEL_NAMES` and
        :data:`STAGE_NAMES`.
    seed : int
        Seed of the generator: the same arguments always give the same journeys.
    mean_length : float
        Mean of the geometric number of touches per journey.
    max_length : int
        Cap on a journey's touches.
    zipf_exponent : float
        Channel ``k`` (1-based) has popularity ``k ** -zipf_exponent``.
    repeat_probability : float
        Extra probability that a touch repeats the previous channel.
    advance_probability, loop_probability : float
        Per touch, the probability of moving one stage on, and of going back to an
        earlier stage; their sum must not exceed 1.
    base_rate : float
        Probability of converting without help from any touch (before the stage factor).
    window_days : float
        Journeys lie within this many days before :data:`REFERENCE_TIME`.

    Notes
    -----
    A journey converts with probability ``stage_factor[d] * (1 - (1 - base_rate) *
    prod over touches of (1 - true_effects[channel]))``, where ``d`` is the deepest
    stage it reached and ``stage_factor`` is 0.15, 0.4, then 1 from the third stage on
    (the decision stage; the last stage when there are fewer).
    """
    args = dict(locals())
    for name, param in _CONSTRAINTS.items():
        if not param.accepts(args[name]):
            raise InvalidParameter(name, args[name], param.describe())
    if advance_probability + loop_probability > 1:
        raise InvalidParameter(
            "loop_probability",
            loop_probability,
            f"at most 1 - advance_probability = {1 - advance_probability:g}",
        )
    rng = np.random.default_rng(seed)
    lengths = np.minimum(rng.geometric(1.0 / mean_length, n_journeys), max_length)
    offsets = np.zeros(n_journeys + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    walk = _Walk(rng, n_channels, n_stages, zipf_exponent, repeat_probability)
    tokens, stage_tokens = walk.run(lengths, offsets, advance_probability, loop_probability)
    effects = np.round(0.01 + 0.08 * rng.beta(1.5, 4.0, n_channels), 4)
    converted = _convert(rng, tokens, stage_tokens, offsets, effects, base_rate, n_stages)
    times, conv_times = _times(rng, lengths, offsets, converted, window_days)
    value = np.where(converted, np.round(rng.lognormal(np.log(60.0), 0.7, n_journeys), 2), 0.0)
    per_touch = len(tokens)
    return SyntheticJourneys(
        channel_names=_names(CHANNEL_NAMES, n_channels, "channel"),
        stage_names=_names(STAGE_NAMES, n_stages, "stage"),
        tokens=tokens,
        stage_tokens=stage_tokens,
        offsets=offsets,
        times=times,
        converted=converted,
        value=value,
        conversion_times=conv_times,
        journey_ids=np.arange(n_journeys, dtype=np.int64),
        customer_ids=rng.integers(0, max(1, (7 * n_journeys) // 10), n_journeys),
        devices=_devices(rng, lengths),
        campaigns=((tokens * 5 + rng.integers(0, 2, per_touch)) % len(CAMPAIGN_NAMES)).astype(
            np.int8
        ),
        segments=rng.choice(len(SEGMENT_NAMES), n_journeys, p=[0.5, 0.35, 0.15]).astype(np.int8),
        regions=rng.choice(len(REGION_NAMES), n_journeys, p=[0.4, 0.3, 0.2, 0.1]).astype(np.int8),
        true_effects=effects,
        seed=seed,
    )


class _Walk:
    """The channel and stage chain: tables drawn once, then walked position by position."""

    def __init__(
        self, rng: np.random.Generator, n_channels: int, n_stages: int, zipf: float, repeat: float
    ) -> None:
        self.rng, self.k, self.s = rng, n_channels, n_stages
        popularity = 1.0 / np.arange(1, n_channels + 1) ** zipf
        popularity /= popularity.sum()
        # each channel leans towards some stages (email and direct to decision, say)
        affinity = np.exp(0.8 * rng.standard_normal((n_stages, n_channels)))
        alpha = np.maximum(popularity * n_channels * 2.0, 1e-3)
        rows = rng.dirichlet(alpha, n_channels)
        rows = (1 - repeat) * rows + repeat * np.eye(n_channels)
        # row n_channels is the journey start: popularity alone
        base = np.vstack([rows, popularity])
        table = base[:, None, :] * affinity[None, :, :]  # (previous, stage, next)
        cum = np.cumsum(table / table.sum(axis=2, keepdims=True), axis=2)
        cum[:, :, -1] = 1.0
        # rows are laid end to end at 0, 1, 2, … so one searchsorted serves every row
        n_rows = (n_channels + 1) * n_stages
        self.cum = (cum.reshape(n_rows, n_channels) + np.arange(n_rows)[:, None]).ravel()

    def draw(self, previous: IntArray, stage: IntArray) -> IntArray:
        row = previous * self.s + stage
        u = self.rng.random(len(row))
        pick = np.searchsorted(self.cum, row + u, side="right") - row * self.k
        return np.clip(pick, 0, self.k - 1)

    def run(
        self, lengths: IntArray, offsets: IntArray, advance: float, loop: float
    ) -> tuple[IntArray, IntArray]:
        """Walk every journey; step ``j`` draws touch ``j`` of the journeys still running."""
        total = int(offsets[-1])
        tokens = np.empty(total, dtype=np.int64)
        stages = np.empty(total, dtype=np.int64)
        by_length = np.argsort(-lengths, kind="stable")
        starts = offsets[:-1][by_length]
        running = np.bincount(lengths, minlength=1)[::-1].cumsum()[::-1]  # running[j]: length >= j
        for j in range(int(lengths.max(initial=0))):
            at = starts[: running[j + 1]] + j
            if j == 0:
                stage = (self.rng.random(len(at)) < 0.15).astype(np.int64) if self.s > 1 else at * 0
                previous = np.full(len(at), self.k, dtype=np.int64)
            else:
                stage = self._step_stage(stages[at - 1], advance, loop)
                previous = tokens[at - 1]
            stages[at] = stage
            tokens[at] = self.draw(previous, stage)
        return tokens, stages

    def _step_stage(self, stage: IntArray, advance: float, loop: float) -> IntArray:
        u = self.rng.random(len(stage))
        back = (u < loop) & (stage > 0)
        earlier = (self.rng.random(len(stage)) * stage).astype(np.int64)
        forward = (u >= loop) & (u < loop + advance)
        out = np.where(forward, np.minimum(stage + 1, self.s - 1), stage)
        return np.where(back, earlier, out)


def _convert(
    rng: np.random.Generator,
    tokens: IntArray,
    stages: IntArray,
    offsets: IntArray,
    effects: FloatArray,
    base_rate: float,
    n_stages: int,
) -> NDArray[np.bool_]:
    n = len(offsets) - 1
    if n == 0:
        return np.zeros(0, dtype=bool)
    starts = offsets[:-1]
    miss = np.add.reduceat(np.log1p(-effects)[tokens], starts)
    fired = 1.0 - (1.0 - base_rate) * np.exp(miss)
    factor = _stage_factor(n_stages)
    deepest = np.maximum.reduceat(stages, starts)
    return rng.random(n) < factor[deepest] * fired


def _stage_factor(n_stages: int) -> FloatArray:
    """Damping by deepest stage: 0.15, 0.4, then 1 from the decision stage on.

    With fewer than three stages the last stage is the decision stage.
    """
    decision = min(2, n_stages - 1)
    factor = np.ones(n_stages)
    factor[:decision] = (0.15, 0.4)[:decision]
    return factor


def _times(
    rng: np.random.Generator,
    lengths: IntArray,
    offsets: IntArray,
    converted: NDArray[np.bool_],
    window_days: float,
) -> tuple[FloatArray, FloatArray]:
    """Whole-second touch times, strictly increasing within a journey, and conversion times."""
    total, n = int(offsets[-1]), len(lengths)
    window = window_days * DAY
    gaps = rng.lognormal(np.log(18 * 3600.0), 1.3, total)
    gaps[offsets[:-1]] = 0.0
    # the rare journey longer than the window is squeezed into it (a day spare for
    # its conversion), keeping at least a second between touches
    room = window - DAY
    span = np.add.reduceat(gaps, offsets[:-1]) if n else np.zeros(0)
    squeeze = np.minimum(1.0, room / np.maximum(span, 1.0))
    gaps = np.maximum(np.round(gaps * np.repeat(squeeze, lengths)), 1.0)
    gaps[offsets[:-1]] = 0.0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[offsets[:-1]], lengths)
    duration = elapsed[offsets[1:] - 1] if n else np.zeros(0)
    slack = np.maximum(room - duration, 0.0)
    start = np.round(REFERENCE_TIME - window + rng.random(n) * slack)
    times = np.repeat(start, lengths) + elapsed
    delay = np.round(np.minimum(rng.lognormal(np.log(2 * 3600.0), 1.0, n), 20 * 3600.0)) + 60.0
    conv = np.where(converted, start + duration + delay, np.nan)
    return times, conv


def _devices(rng: np.random.Generator, lengths: IntArray) -> SmallArray:
    """Each journey has a main device; a quarter of touches switch to a random one."""
    main = np.repeat(rng.choice(3, len(lengths), p=[0.45, 0.45, 0.1]), lengths)
    other = rng.integers(0, 3, len(main))
    return np.where(rng.random(len(main)) < 0.75, main, other).astype(np.int8)


def _names(defaults: tuple[str, ...], n: int, prefix: str) -> tuple[str, ...]:
    return defaults[:n] + tuple(f"{prefix}_{k}" for k in range(len(defaults) + 1, n + 1))
