"""Simulated worlds whose true channel credit is known.

A :class:`World` is a generative process for journeys; :func:`simulate` draws
``n_journeys`` of them from a seed and works out, journey by journey, which
conversions each channel *caused*. The models are then scored against that truth
(``bench/truth.py``, ``docs/which-model.md``). :data:`WORLDS` holds the catalogue of
worlds built to separate the models; its worlds are defined in
:mod:`attribution._world_catalogue`.

The process
-----------
- **Length**: geometric with mean ``mean_length``, capped at ``max_length``.
- **Channels**: each touch independently from ``popularity``; a channel with a
  ``repeats`` mean ``r`` is touched ``1 + Poisson(r)`` times in a row each time it
  is drawn.
- **Stages** (when the world has them): the first touch is in the first stage, each
  later touch moves one stage on with probability ``advance_probability``.
- **Conversion**: each journey has its own uniform ``u`` and converts when
  ``u < p``, where ``p = base_rate + sum of effects[c][s] over the distinct
  (channel, stage) pairs the journey touched + the lift of every synergy it meets``,
  clipped to [0, 1]. A synergy adds its lift when the journey touched both its
  channels, or, when it is ``ordered``, when some touch of ``first`` comes before
  some touch of ``second``.
- **Closer**: a channel that only ever comes last. After the rest of the journey is
  drawn, the closer is appended with probability ``closer_rates[0]`` when the
  journey converts without it and ``closer_rates[1]`` otherwise: it targets people
  who are about to buy anyway (brand search, retargeting), in the last stage.
- **Value**: each journey has a lognormal value, counted when it converts.

The truth
---------
Switching a channel off means its touches never happen; every other draw (the other
touches and their stages, each journey's ``u`` and value) stays as it was: common
random numbers, so the only difference between the two worlds is the channel. The
*incremental conversions* of channel ``c`` are

    conversions of the world as generated - conversions with ``c`` switched off,

counted on the same journeys, and its incremental value likewise. Every world here
is monotone (removing touches never raises ``p``), so these are never negative.
The *true credit* scales the incremental conversions to the total conversions, so
that it can be compared with a model's credit:
``true_credit[c] = total conversions * incremental[c] / sum of incremental``
(zero everywhere when no channel changes anything); the *true value credit* scales
the incremental value (value generated minus value with ``c`` switched off) to the
total value the same way. Conversions that no channel caused (the base rate) and
conversions that two channels each caused on their own (synergy) are shared in
proportion to the incremental conversions; that choice is the definition, not an
estimate.

References
----------
.. [1] Lewis, R. A., Rao, J. M. (2015). "The unfavorable economics of measuring the
   returns to advertising." Quarterly Journal of Economics 130(4), 1941-1973
   (incrementality: conversions with the ad minus conversions without it).
.. [2] Glasserman, P., Yao, D. D. (1992). "Some guidelines and guarantees for common
   random numbers." Management Science 38(6), 884-908.
.. [3] Dalessandro, B., Perlich, C., Stitelman, O., Provost, F. (2012). "Causally
   motivated attribution for online advertising." Proceedings of ADKDD '12
   (attribution judged against the causal effect of each channel).
.. [4] Shao, X., Li, L. (2011). "Data-driven multi-touch attribution models."
   Proceedings of KDD '11, 258-264 (simulated journeys with known effects).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._grouping import _group_paths
from ._world_catalogue import WORLDS, Synergy, World
from .exceptions import InvalidParameter
from .params import Param
from .paths import PathSet

__all__ = ["WORLDS", "Simulation", "Synergy", "World", "simulate"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

_SIZE = {"n_journeys": Param("int", 0, 10**8), "seed": Param("int", 0, 2**63 - 1)}


@dataclass(frozen=True, eq=False)
class Simulation:
    """Journeys drawn from a world, with what each channel caused.

    ``tokens[offsets[i]:offsets[i + 1]]`` are journey ``i``'s channel codes (indexing
    ``world.channel_names``), ``stage_tokens`` their stages (None without stages).
    ``lifts[i, c]`` is 1 when journey ``i`` converts as generated and not with channel
    ``c`` switched off, else 0.
    """

    world: World
    seed: int
    tokens: IntArray
    stage_tokens: IntArray | None
    offsets: IntArray
    uniforms: FloatArray
    values: FloatArray
    converted: BoolArray
    lifts: NDArray[np.int8]

    @property
    def n_journeys(self) -> int:
        return len(self.offsets) - 1

    @property
    def total_conversions(self) -> float:
        return float(self.converted.sum())

    @property
    def incremental(self) -> FloatArray:
        """Incremental conversions per channel (see the module docstring)."""
        return np.asarray(self.lifts.sum(axis=0), dtype=np.float64)

    @property
    def incremental_value(self) -> FloatArray:
        return np.asarray(self.values @ self.lifts, dtype=np.float64)

    def true_credit(self, weights: ArrayLike | None = None) -> FloatArray:
        """True conversion credit per channel; ``weights`` counts each journey that often."""
        w = np.ones(self.n_journeys) if weights is None else np.asarray(weights, np.float64)
        return _scale(w @ self.lifts, float(w @ self.converted))

    def true_value_credit(self, weights: ArrayLike | None = None) -> FloatArray:
        """True value credit per channel: incremental value scaled to the total value;
        ``weights`` counts each journey that often."""
        w = self.values if weights is None else self.values * np.asarray(weights, np.float64)
        return _scale(w @ self.lifts, float(w @ self.converted))

    def converted_without(self, channel: str) -> BoolArray:
        """Which journeys convert with ``channel`` switched off (same draws otherwise)."""
        code = self.world.channel_names.index(channel)
        return self.uniforms < self._probability(self.tokens != code)

    def journeys(self) -> PathSet:
        """One path per journey (not aggregated)."""
        conv = self.converted.astype(np.float64)
        world = self.world
        return PathSet.from_arrays(
            world.channel_names,
            self.tokens,
            self.offsets,
            conv,
            1.0 - conv,
            self.values * conv,
            stage_names=world.stage_names,
            stage_tokens=self.stage_tokens,
        )

    def to_pathset(self) -> PathSet:
        """The journeys aggregated to unique paths, as the store keeps them."""
        return self.journeys().aggregate()

    def reweighted(self, weights: ArrayLike) -> PathSet:
        """The unique paths with each journey counted ``weights[i]`` times (a resample)."""
        w = np.asarray(weights, np.float64)
        paths, group = self._grouped
        conv = w * self.converted
        m = paths.n_paths
        return paths.with_counts(
            np.bincount(group, conv, minlength=m),
            np.bincount(group, w - conv, minlength=m),
            np.bincount(group, conv * self.values, minlength=m),
        )

    @cached_property
    def _grouped(self) -> tuple[PathSet, IntArray]:
        journeys = self.journeys()
        _, group = _group_paths(journeys.states, journeys.offsets)
        return journeys.aggregate(), group

    def _probability(self, keep: BoolArray) -> FloatArray:
        return _probability(self.world, self.tokens, self.stage_tokens, self.offsets, keep)


def simulate(world: World, n_journeys: int, seed: int = 0) -> Simulation:
    """Draw ``n_journeys`` journeys of ``world`` and the truth (see the module docstring).

    Parameters
    ----------
    world : World
        The generative process, e.g. one of :data:`WORLDS`.
    n_journeys : int
        Journeys to draw.
    seed : int
        Seed of every draw: the same world, size and seed give the same journeys.

    Returns
    -------
    Simulation
        The journeys, whether each converted, and each channel's lift on each journey.
    """
    for name, param in _SIZE.items():
        value = n_journeys if name == "n_journeys" else seed
        if not param.accepts(value):
            raise InvalidParameter(name, value, param.describe())
    rng = np.random.default_rng(seed)
    tokens, stages, offsets = _touches(world, rng, n_journeys)
    uniforms = rng.random(n_journeys)
    values = np.round(rng.lognormal(np.log(60.0), 0.5, n_journeys), 2)
    if world.closer is not None:
        before = _probability(world, tokens, stages, offsets, np.ones(len(tokens), bool))
        tokens, stages, offsets = _add_closer(
            world, rng, tokens, stages, offsets, uniforms < before
        )
    everything = np.ones(len(tokens), dtype=bool)
    converted = uniforms < _probability(world, tokens, stages, offsets, everything)
    lifts = np.zeros((n_journeys, len(world.channel_names)), dtype=np.int8)
    for code in range(len(world.channel_names)):
        keep = tokens != code
        if keep.all():  # the channel never appears: switching it off changes nothing
            continue
        without = uniforms < _probability(world, tokens, stages, offsets, keep)
        lifts[:, code] = converted.astype(np.int8) - without.astype(np.int8)
    return Simulation(world, seed, tokens, stages, offsets, uniforms, values, converted, lifts)


# ---------------------------------------------------------------------- the process
def _touches(
    world: World, rng: np.random.Generator, n: int
) -> tuple[IntArray, IntArray | None, IntArray]:
    """Channels and stages of every touch, and the journeys' offsets."""
    lengths = np.minimum(rng.geometric(1.0 / world.mean_length, n), world.max_length)
    journey = np.repeat(np.arange(n), lengths)
    popularity = np.asarray(world.popularity, dtype=np.float64)
    tokens = rng.choice(len(popularity), size=len(journey), p=popularity / popularity.sum())
    stages = None
    if world.stage_names is not None:
        step = rng.random(len(journey)) < world.advance_probability
        starts = _offsets(lengths)[:-1]
        step[starts] = False
        climbed = np.cumsum(step)
        stages = np.minimum(
            climbed - np.repeat(climbed[starts], lengths), len(world.stage_names) - 1
        )
    if world.repeats is not None:
        counts = 1 + rng.poisson(np.asarray(world.repeats, dtype=np.float64)[tokens])
        tokens, journey = np.repeat(tokens, counts), np.repeat(journey, counts)
        stages = None if stages is None else np.repeat(stages, counts)
    offsets = _offsets(np.bincount(journey, minlength=n))
    return tokens.astype(np.int64), stages, offsets


def _add_closer(
    world: World,
    rng: np.random.Generator,
    tokens: IntArray,
    stages: IntArray | None,
    offsets: IntArray,
    would_convert: BoolArray,
) -> tuple[IntArray, IntArray | None, IntArray]:
    """Append the closer as the last touch, mostly where the journey converts anyway."""
    assert world.closer is not None
    rate = np.where(would_convert, *world.closer_rates)
    closes = rng.random(len(rate)) < rate
    at = offsets[1:][closes]
    code = world.channel_names.index(world.closer)
    tokens = np.insert(tokens, at, code)
    if stages is not None and world.stage_names is not None:
        stages = np.insert(stages, at, len(world.stage_names) - 1)
    return tokens, stages, _offsets(np.diff(offsets) + closes)


def _probability(
    world: World,
    tokens: IntArray,
    stages: IntArray | None,
    offsets: IntArray,
    keep: BoolArray,
) -> FloatArray:
    """Each journey's conversion probability from the touches in ``keep``."""
    n, k = len(offsets) - 1, len(world.channel_names)
    n_stages = 1 if world.stage_names is None else len(world.stage_names)
    journey = np.repeat(np.arange(n), np.diff(offsets))[keep]
    state = tokens[keep] * n_stages + (0 if stages is None else stages[keep])
    present = np.zeros((n, k * n_stages), dtype=bool)
    present[journey, state] = True
    effects = np.asarray(world.effects, dtype=np.float64).ravel()
    p = world.base_rate + present.astype(np.float64) @ effects
    touched: BoolArray = np.asarray(present.reshape(n, k, n_stages).any(axis=2))
    position = np.flatnonzero(keep)
    for synergy in world.synergies:
        a = world.channel_names.index(synergy.first)
        b = world.channel_names.index(synergy.second)
        if synergy.ordered:
            first = _first(journey, position, tokens[keep] == a, n)
            met = first < _last(journey, position, tokens[keep] == b, n)
        else:
            met = touched[:, a] & touched[:, b]
        p += synergy.lift * met
    return np.clip(p, 0.0, 1.0)


def _first(journey: IntArray, position: IntArray, where: BoolArray, n: int) -> FloatArray:
    out = np.full(n, np.inf)
    np.minimum.at(out, journey[where], position[where])
    return out


def _last(journey: IntArray, position: IntArray, where: BoolArray, n: int) -> FloatArray:
    out = np.full(n, -np.inf)
    np.maximum.at(out, journey[where], position[where])
    return out


def _offsets(lengths: IntArray) -> IntArray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _scale(incremental: FloatArray, total: float) -> FloatArray:
    caused = float(incremental.sum())
    if caused <= 0:
        return np.zeros(len(incremental))
    return np.asarray(total * incremental / caused, dtype=np.float64)
