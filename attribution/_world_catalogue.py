"""The worlds of :mod:`attribution.worlds`: what a world is, and the catalogue.

Each catalogue world isolates one thing that tells the models apart; the
numbers are round on purpose so the truth can be reasoned about by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .exceptions import InvalidParameter

__all__ = ["WORLDS", "Synergy", "World"]


@dataclass(frozen=True)
class Synergy:
    """Extra conversion probability ``lift`` for journeys that touched both channels.

    With ``ordered``, only when some touch of ``first`` comes before some touch of
    ``second`` (``second`` then ``first`` earns nothing).
    """

    first: str
    second: str
    lift: float
    ordered: bool = False


@dataclass(frozen=True)
class World:
    """A generative process for journeys (see :mod:`attribution.worlds`).

    ``effects[c][s]`` is the conversion probability that touching channel ``c`` in
    stage ``s`` adds (one column when the world has no stages); ``repeats`` (optional)
    the mean extra consecutive touches each time a channel is drawn; ``closer``
    (optional) names a channel with zero popularity that is appended last, with
    probability ``closer_rates[0]`` to journeys that convert without it and
    ``closer_rates[1]`` to the others.
    """

    name: str
    description: str
    channel_names: tuple[str, ...]
    popularity: tuple[float, ...]
    effects: tuple[tuple[float, ...], ...]
    base_rate: float = 0.01
    synergies: tuple[Synergy, ...] = ()
    stage_names: tuple[str, ...] | None = None
    mean_length: float = 3.0
    max_length: int = 12
    advance_probability: float = 0.4
    repeats: tuple[float, ...] | None = None
    closer: str | None = None
    closer_rates: tuple[float, float] = (0.8, 0.05)

    def __post_init__(self) -> None:
        k = len(self.channel_names)
        n_stages = 1 if self.stage_names is None else len(self.stage_names)
        if k == 0 or len(set(self.channel_names)) != k:
            raise InvalidParameter("channel_names", self.channel_names, "distinct and not empty")
        _check_length("popularity", self.popularity, k)
        if min(self.popularity) < 0 or sum(self.popularity) <= 0:
            raise InvalidParameter("popularity", self.popularity, "non-negative, not all zero")
        _check_length("effects", self.effects, k)
        for row in self.effects:
            _check_length("effects row", row, n_stages)
            _check_probabilities("effects", row)
        _check_probabilities("base_rate", (self.base_rate,))
        _check_probabilities("advance_probability", (self.advance_probability,))
        _check_probabilities("closer_rates", self.closer_rates)
        if not 1 <= self.mean_length <= self.max_length:
            raise InvalidParameter("mean_length", self.mean_length, "between 1 and max_length")
        if self.repeats is not None:
            _check_length("repeats", self.repeats, k)
            if min(self.repeats) < 0:
                raise InvalidParameter("repeats", self.repeats, "non-negative")
        for synergy in self.synergies:
            for channel in (synergy.first, synergy.second):
                _check_channel("synergies", channel, self.channel_names)
        if self.closer is not None:
            _check_channel("closer", self.closer, self.channel_names)
            if self.popularity[self.channel_names.index(self.closer)] != 0:
                raise InvalidParameter("popularity", self.popularity, "zero for the closer")


def _check_length(name: str, values: tuple[object, ...], n: int) -> None:
    if len(values) != n:
        raise InvalidParameter(name, values, f"of length {n}")


def _check_probabilities(name: str, values: tuple[float, ...]) -> None:
    if any(not 0 <= v <= 1 for v in values):
        raise InvalidParameter(name, values, "between 0 and 1")


def _check_channel(name: str, channel: str, names: tuple[str, ...]) -> None:
    if channel not in names:
        raise InvalidParameter(name, channel, "one of " + ", ".join(names))


FIVE = ("search", "social", "email", "display", "video")
FOUR = ("search", "social", "email", "display")
STAGES = ("awareness", "consideration", "decision")


def _flat(effects: tuple[float, ...]) -> tuple[tuple[float, ...], ...]:
    return tuple((e,) for e in effects)


def _catalogue() -> Mapping[str, World]:
    worlds = (
        World(
            "additive",
            "Each channel adds its own conversion probability, whatever else happened.",
            FIVE,
            (0.3, 0.25, 0.2, 0.15, 0.1),
            _flat((0.06, 0.03, 0.05, 0.01, 0.02)),
        ),
        World(
            "synergy",
            "social and email add 0.15 together and little alone.",
            FIVE,
            (0.3, 0.25, 0.2, 0.15, 0.1),
            _flat((0.02, 0.01, 0.01, 0.02, 0.02)),
            synergies=(Synergy("social", "email", 0.15),),
        ),
        World(
            "order",
            "display then search adds 0.15; search then display adds nothing.",
            FIVE,
            (0.3, 0.2, 0.2, 0.2, 0.1),
            _flat((0.01, 0.01, 0.02, 0.0, 0.02)),
            synergies=(Synergy("display", "search", 0.15, ordered=True),),
        ),
        World(
            "stages",
            "social works only in awareness, email only in decision, display never.",
            FOUR,
            (0.3, 0.3, 0.2, 0.2),
            ((0.02, 0.02, 0.02), (0.06, 0.0, 0.0), (0.0, 0.0, 0.08), (0.0, 0.0, 0.0)),
            stage_names=STAGES,
            mean_length=4.0,
        ),
        World(
            "closer",
            "brand_search comes last, mostly to people who buy anyway, and causes nothing.",
            (*FOUR, "brand_search"),
            (0.3, 0.3, 0.2, 0.2, 0.0),
            _flat((0.05, 0.03, 0.04, 0.01, 0.0)),
            closer="brand_search",
        ),
        World(
            "repeats",
            "display is touched 5 times in a row on average and causes nothing.",
            FOUR,
            (0.25, 0.2, 0.15, 0.4),
            _flat((0.04, 0.03, 0.05, 0.0)),
            repeats=(0.2, 0.2, 0.2, 4.0),
        ),
        World(
            "sparse",
            "The additive world with every probability divided by 20: few conversions.",
            FIVE,
            (0.3, 0.25, 0.2, 0.15, 0.1),
            _flat((0.003, 0.0015, 0.0025, 0.0005, 0.001)),
            base_rate=0.0005,
        ),
    )
    return {w.name: w for w in worlds}


WORLDS: Mapping[str, World] = _catalogue()
"""The catalogue by name: additive, synergy, order, stages, closer, repeats, sparse."""
