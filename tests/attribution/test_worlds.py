"""Simulated worlds with a known truth: what holds by construction.

The vectorised process is checked against a slow, obvious reference that recomputes
every journey's conversion probability from plain lists, with and without each
channel; hand-worked worlds (one decisive channel, a pure synergy, a pure order
effect, a stage-bound effect) have a truth that follows from their definition. How
far each model is from the truth is what ``bench/truth.py`` reports; nothing here
assumes it.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from attribution import InvalidParameter, get_model
from attribution.worlds import WORLDS, Simulation, Synergy, World, simulate

SMALL = 3_000


def journeys_of(sim: Simulation) -> list[tuple[list[str], list[int]]]:
    names = sim.world.channel_names
    stages = sim.stage_tokens if sim.stage_tokens is not None else np.zeros_like(sim.tokens)
    return [
        ([names[t] for t in sim.tokens[a:b].tolist()], stages[a:b].tolist())
        for a, b in pairwise(sim.offsets.tolist())
    ]


def reference_probability(world: World, channels: list[str], stages: list[int]) -> float:
    """A journey's conversion probability, written out from the module docstring."""
    p = world.base_rate
    for channel, stage in set(zip(channels, stages, strict=True)):
        p += world.effects[world.channel_names.index(channel)][stage]
    for s in world.synergies:
        if s.ordered:
            met = any(
                a == s.first and b == s.second
                for i, a in enumerate(channels)
                for b in channels[i + 1 :]
            )
        else:
            met = s.first in channels and s.second in channels
        p += s.lift * met
    return min(max(p, 0.0), 1.0)


def tiny_world(**overrides: object) -> World:
    """Two channels that do nothing, unless overridden."""
    fields: dict[str, object] = {
        "name": "tiny",
        "description": "",
        "channel_names": ("a", "b"),
        "popularity": (1.0, 1.0),
        "effects": ((0.0,), (0.0,)),
        "base_rate": 0.0,
    }
    fields.update(overrides)
    return World(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(WORLDS))
def test_matches_the_reference_with_and_without_each_channel(name: str) -> None:
    world = WORLDS[name]
    sim = simulate(world, 400, seed=3)
    for i, (channels, stages) in enumerate(journeys_of(sim)):
        u = sim.uniforms[i]
        converted = u < reference_probability(world, channels, stages)
        assert sim.converted[i] == converted
        for code, channel in enumerate(world.channel_names):
            kept = [(c, s) for c, s in zip(channels, stages, strict=True) if c != channel]
            without = u < reference_probability(world, [c for c, _ in kept], [s for _, s in kept])
            assert sim.lifts[i, code] == int(converted) - int(without)


@pytest.mark.parametrize("name", list(WORLDS))
def test_true_credit_sums_to_total_conversions(name: str) -> None:
    sim = simulate(WORLDS[name], SMALL, seed=1)
    assert sim.true_credit().sum() == pytest.approx(sim.total_conversions, rel=1e-12)
    assert sim.true_value_credit().sum() == pytest.approx(
        float(sim.values @ sim.converted), rel=1e-12
    )
    assert (sim.lifts >= 0).all()  # every catalogue world is monotone


def test_same_seed_same_world() -> None:
    world = WORLDS["closer"]
    one, two, other = (
        simulate(world, SMALL, 5),
        simulate(world, SMALL, 5),
        simulate(world, SMALL, 6),
    )
    for field in ("tokens", "offsets", "uniforms", "values", "converted", "lifts"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
    assert not np.array_equal(one.converted, other.converted)


def test_the_closer_causes_nothing_and_last_touch_gives_it_what_it_closes() -> None:
    sim = simulate(WORLDS["closer"], SMALL, seed=2)
    closer = sim.world.channel_names.index("brand_search")
    # its effect is zero, so switching it off changes no journey: exactly zero
    assert not sim.lifts[:, closer].any()
    assert sim.true_credit()[closer] == 0.0
    np.testing.assert_array_equal(sim.converted_without("brand_search"), sim.converted)
    # it is only ever the last touch
    is_closer = sim.tokens == closer
    assert is_closer.any()
    assert set(np.flatnonzero(is_closer) + 1) <= set(sim.offsets[1:].tolist())
    closed = int((sim.converted & (sim.tokens[sim.offsets[1:] - 1] == closer)).sum())
    assert closed > 0
    credit = get_model("last_touch").attribute(sim.to_pathset())
    by_channel = dict(zip(credit.channel_names, credit.by_channel()[0], strict=True))
    assert by_channel["brand_search"] == pytest.approx(closed, rel=1e-12)


def test_switching_off_a_channel_that_never_appears_changes_nothing() -> None:
    world = tiny_world(
        channel_names=("a", "b", "ghost"),
        popularity=(1.0, 1.0, 0.0),
        effects=((0.1,), (0.2,), (0.9,)),
        base_rate=0.05,
    )
    sim = simulate(world, SMALL, seed=0)
    np.testing.assert_array_equal(sim.converted_without("ghost"), sim.converted)
    assert sim.incremental[2] == 0.0
    assert sim.true_credit()[2] == 0.0
    assert "ghost" not in sim.to_pathset().channel_names


def test_a_decisive_channel_earns_everything() -> None:
    sim = simulate(tiny_world(effects=((1.0,), (0.0,))), SMALL, seed=0)
    has_a = np.array(["a" in channels for channels, _ in journeys_of(sim)])
    np.testing.assert_array_equal(sim.converted, has_a)
    np.testing.assert_array_equal(sim.true_credit(), [has_a.sum(), 0.0])


@pytest.mark.parametrize("ordered", [False, True])
def test_a_pure_synergy_is_shared_equally(ordered: bool) -> None:
    sim = simulate(tiny_world(synergies=(Synergy("a", "b", 1.0, ordered),)), SMALL, seed=0)

    def meets(channels: list[str]) -> bool:
        if not ordered:
            return "a" in channels and "b" in channels
        return "a" in channels and "b" in channels[channels.index("a") + 1 :]

    expected = np.array([meets(channels) for channels, _ in journeys_of(sim)])
    np.testing.assert_array_equal(sim.converted, expected)
    # either channel switched off loses every conversion: each is credited half
    np.testing.assert_array_equal(sim.incremental, [expected.sum()] * 2)
    np.testing.assert_allclose(sim.true_credit(), [expected.sum() / 2] * 2, rtol=1e-12)


def test_b_before_a_earns_nothing_in_an_ordered_world() -> None:
    sim = simulate(tiny_world(synergies=(Synergy("a", "b", 1.0, ordered=True),)), SMALL, seed=4)
    for (channels, _), converted in zip(journeys_of(sim), sim.converted, strict=True):
        if "a" in channels and "b" in channels and channels.index("b") < channels.index("a"):
            # b came first; it converts only if another b follows some a
            assert converted == ("b" in channels[channels.index("a") :])


def test_a_stage_bound_effect_needs_its_stage() -> None:
    world = tiny_world(
        effects=((1.0, 0.0), (0.0, 0.0)), stage_names=("early", "late"), advance_probability=0.5
    )
    sim = simulate(world, SMALL, seed=0)
    expected = [
        any(c == "a" and s == 0 for c, s in zip(channels, stages, strict=True))
        for channels, stages in journeys_of(sim)
    ]
    np.testing.assert_array_equal(sim.converted, expected)
    assert sim.to_pathset().stage_names == ("early", "late")


def test_repeats_come_in_runs_of_the_same_channel() -> None:
    world = tiny_world(repeats=(0.0, 3.0))
    sim = simulate(world, SMALL, seed=0)
    runs = [len(list(run)) for channels, _ in journeys_of(sim) for run in _runs(channels, "b")]
    # one draw of b is 1 + Poisson(3) touches; runs can merge, so at least that long
    assert np.mean(runs) >= 4.0 * 0.9


def _runs(channels: list[str], channel: str) -> list[list[str]]:
    out: list[list[str]] = []
    for i, c in enumerate(channels):
        if c != channel:
            continue
        if i and channels[i - 1] == channel:
            out[-1].append(c)
        else:
            out.append([c])
    return out


def test_reweighting_counts_journeys_that_often() -> None:
    sim = simulate(WORLDS["synergy"], SMALL, seed=0)
    paths = sim.to_pathset()
    twice = sim.reweighted(np.full(sim.n_journeys, 2.0))
    np.testing.assert_array_equal(twice.conversions, 2 * paths.conversions)
    np.testing.assert_array_equal(twice.nulls, 2 * paths.nulls)
    np.testing.assert_allclose(twice.value, 2 * paths.value, rtol=1e-12)
    np.testing.assert_allclose(sim.true_credit(np.full(sim.n_journeys, 2.0)), 2 * sim.true_credit())
    only_first = np.zeros(sim.n_journeys)
    only_first[0] = 1.0
    assert sim.reweighted(only_first).conversions.sum() == float(sim.converted[0])


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"popularity": (1.0,)}, "popularity"),
        ({"effects": ((0.1,), (1.5,))}, "effects"),
        ({"closer": "a"}, "popularity"),
        ({"closer": "z"}, "closer"),
        ({"synergies": (Synergy("a", "z", 0.1),)}, "synergies"),
        ({"channel_names": ("a", "a")}, "channel_names"),
    ],
)
def test_a_bad_world_names_its_parameter(overrides: dict[str, object], name: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        tiny_world(**overrides)
    assert info.value.name == name


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(InvalidParameter, match="n_journeys"):
        simulate(tiny_world(), -1)
    with pytest.raises(InvalidParameter, match="seed"):
        simulate(tiny_world(), 10, seed=-1)
