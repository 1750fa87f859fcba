"""Heuristic models: hand-worked examples in exact fractions, a slow reference, errors.

The shop example used throughout (times in days before the conversion at day 0)::

    path                       conversions  nulls  value
    1  a(-14) > b(-7) > c(0)        2         1     100
    2  a(-14) > a(-7) > b(0)        1         0      30    repeated channel
    3  d(0)                         1         2      10    single touch
    4  e(-7) > b(0)                 0         3       0    never converts; e only here

Totals: 4 conversions, 140 value.
"""

from __future__ import annotations

import math
from collections import defaultdict
from fractions import Fraction as F
from unittest import mock

import numpy as np
import pytest
from conftest import DAY, EPOCH, path_specs
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution import InvalidParameter, MissingData, PathSet, get_model, heuristics
from attribution.heuristics import FirstTouch, LastTouch, Linear, PositionBased, TimeDecay
from attribution.result import Credit

HEURISTICS = ("first_touch", "last_touch", "linear", "position_based", "time_decay")
REL = 1e-12


def at(*days: float) -> list[float]:
    return [EPOCH + d * DAY for d in days]


def shop() -> PathSet:
    return PathSet.from_lists(
        [["a", "b", "c"], ["a", "a", "b"], ["d"], ["e", "b"]],
        conversions=[2, 1, 1, 0],
        nulls=[1, 0, 2, 3],
        value=[100, 30, 10, 0],
        times=[at(-14, -7, 0), at(-14, -7, 0), at(0), at(-7, 0)],
        conversion_times=[*at(0, 0, 0), math.nan],
    )


def by_channel(credit: Credit) -> dict[str, tuple[float, float]]:
    conv, val = credit.by_channel()
    return {c: (float(conv[i]), float(val[i])) for i, c in enumerate(credit.channel_names)}


def assert_credit(credit: Credit, expected: dict[str, tuple[F, F]]) -> None:
    got = by_channel(credit)
    assert set(got) == set(expected)
    for channel, (conv, val) in expected.items():
        assert got[channel][0] == pytest.approx(float(conv), rel=REL, abs=1e-12), channel
        assert got[channel][1] == pytest.approx(float(val), rel=REL, abs=1e-12), channel


ZERO = (F(0), F(0))

SHOP_EXPECTED: dict[str, dict[str, tuple[F, F]]] = {
    # path 1 -> a, path 2 -> a, path 3 -> d
    "first_touch": {"a": (F(3), F(130)), "b": ZERO, "c": ZERO, "d": (F(1), F(10)), "e": ZERO},
    # path 1 -> c, path 2 -> b, path 3 -> d
    "last_touch": {
        "a": ZERO,
        "b": (F(1), F(30)),
        "c": (F(2), F(100)),
        "d": (F(1), F(10)),
        "e": ZERO,
    },
    # path 1: 1/3 each of 2 and 100; path 2: a 2/3, b 1/3 of 1 and 30
    "linear": {
        "a": (F(2, 3) + F(2, 3), F(100, 3) + 20),
        "b": (F(2, 3) + F(1, 3), F(100, 3) + 10),
        "c": (F(2, 3), F(100, 3)),
        "d": (F(1), F(10)),
        "e": ZERO,
    },
    # path 1: 0.4 / 0.2 / 0.4; path 2: a 0.4 + 0.2 (first and middle), b 0.4
    "position_based": {
        "a": (F(4, 5) + F(3, 5), F(40) + 18),
        "b": (F(2, 5) + F(2, 5), F(20) + 12),
        "c": (F(4, 5), F(40)),
        "d": (F(1), F(10)),
        "e": ZERO,
    },
    # ages 14, 7, 0 days weigh 1/4, 1/2, 1 -> 1/7, 2/7, 4/7 on both long paths
    "time_decay": {
        "a": (F(2, 7) + F(3, 7), F(100, 7) + F(90, 7)),
        "b": (F(4, 7) + F(4, 7), F(200, 7) + F(120, 7)),
        "c": (F(8, 7), F(400, 7)),
        "d": (F(1), F(10)),
        "e": ZERO,
    },
}


@pytest.mark.parametrize("name", HEURISTICS)
def test_shop_example(name: str) -> None:
    credit = get_model(name).attribute(shop())
    assert credit.model == name
    assert_credit(credit, SHOP_EXPECTED[name])
    assert credit.total_conversions == 4
    assert credit.total_value == 140
    assert credit.conversions.sum() == pytest.approx(4, rel=1e-12)
    assert credit.value.sum() == pytest.approx(140, rel=1e-12)
    assert credit.warnings == ()


def test_linear_per_channel_example() -> None:
    # path 2 (a, a, b): a and b get 1/2 each, a's half split over its two touches
    credit = Linear(per="channel").attribute(shop())
    assert_credit(
        credit,
        {
            "a": (F(2, 3) + F(1, 2), F(100, 3) + 15),
            "b": (F(2, 3) + F(1, 2), F(100, 3) + 15),
            "c": (F(2, 3), F(100, 3)),
            "d": (F(1), F(10)),
            "e": ZERO,
        },
    )
    np.testing.assert_allclose(credit.touch_conversions[3:6], [1 / 4, 1 / 4, 1 / 2], rtol=REL)
    np.testing.assert_allclose(credit.touch_value[3:6], [7.5, 7.5, 15], rtol=REL)


def test_per_journey_split() -> None:
    paths = shop()
    credit = PositionBased().attribute(paths)
    # path 1 holds 2 conversions: 0.4, 0.2, 0.4 of them
    np.testing.assert_allclose(credit.touch_conversions[:3], [0.8, 0.4, 0.8], rtol=REL)
    np.testing.assert_allclose(credit.touch_value[:3], [40, 20, 40], rtol=REL)
    # the path that never converts carries nothing
    assert np.all(credit.touch_conversions[7:] == 0)
    assert np.all(credit.touch_value[7:] == 0)
    rows = credit.path_rows(paths)
    assert {(r["path"], r["channel"]): r["conversions"] for r in rows if r["path"] == 1} == {
        (1, "a"): pytest.approx(0.6),
        (1, "b"): pytest.approx(0.4),
    }


@pytest.mark.parametrize("name", HEURISTICS)
def test_identical_roles_get_identical_credit(name: str) -> None:
    # x and y play the same part: each opens one of two otherwise equal paths
    paths = PathSet.from_lists(
        [["x", "z", "z"], ["y", "z", "z"]],
        conversions=[2, 2],
        nulls=[1, 1],
        value=[20, 20],
        times=[at(-3, -2, 0), at(-3, -2, 0)],
    )
    got = by_channel(get_model(name).attribute(paths))
    assert got["x"] == got["y"]
    assert got["x"][0] + got["y"][0] + got["z"][0] == pytest.approx(4)


@pytest.mark.parametrize("name", HEURISTICS)
def test_single_touch_path_gets_everything(name: str) -> None:
    paths = PathSet.from_lists([["a"]], [3], [1], [12.5], times=[at(-2)])
    credit = get_model(name).attribute(paths)
    assert by_channel(credit) == {"a": (3.0, 12.5)}
    assert credit.touch_conversions.tolist() == [3.0]


@pytest.mark.parametrize("name", HEURISTICS)
def test_no_nulls_warns(name: str) -> None:
    paths = PathSet.from_lists([["a", "b"]], [1], [0], times=[at(-1, 0)])
    assert len(get_model(name).attribute(paths).warnings) == 1


@pytest.mark.parametrize("name", HEURISTICS)
def test_empty_path_set_gets_empty_credit(name: str) -> None:
    paths = PathSet.from_lists([], [], times=[])
    credit = get_model(name).attribute(paths)
    assert credit.conversions.shape == (0, 1)
    assert credit.touch_conversions is not None
    assert credit.touch_conversions.size == 0


# ---------------------------------------------------------------------- position-based
@pytest.mark.parametrize(
    ("first", "last", "length", "expected"),
    [
        (0.4, 0.4, 1, [F(1)]),
        (0.4, 0.4, 2, [F(1, 2), F(1, 2)]),
        (0.3, 0.5, 2, [F(3, 8), F(5, 8)]),  # in proportion 3 : 5
        (0.0, 0.0, 2, [F(1, 2), F(1, 2)]),  # no ends share: split evenly
        (1.0, 0.0, 2, [F(1), F(0)]),
        (0.4, 0.4, 3, [F(2, 5), F(1, 5), F(2, 5)]),
        (0.4, 0.4, 5, [F(2, 5), F(1, 15), F(1, 15), F(1, 15), F(2, 5)]),
        (0.5, 0.5, 4, [F(1, 2), F(0), F(0), F(1, 2)]),
        (0.0, 0.0, 4, [F(0), F(1, 2), F(1, 2), F(0)]),
        (0.1, 0.6, 3, [F(1, 10), F(3, 10), F(3, 5)]),
    ],
)
def test_position_based_weights(first: float, last: float, length: int, expected: list[F]) -> None:
    names = [f"c{i}" for i in range(length)]
    paths = PathSet.from_lists([names], [1], [1])
    credit = PositionBased(first_share=first, last_share=last).attribute(paths)
    np.testing.assert_allclose(credit.touch_conversions, [float(x) for x in expected], atol=1e-15)


# ---------------------------------------------------------------------- time decay
@pytest.mark.parametrize(
    ("half_life", "times", "conversion_time", "expected"),
    [
        # ages 14, 7, 0 days with a 7-day half-life: 1/4 : 1/2 : 1
        (7.0, at(-14, -7, 0), EPOCH, [F(1, 7), F(2, 7), F(4, 7)]),
        (1.0, at(-2, -1, 0), EPOCH, [F(1, 7), F(2, 7), F(4, 7)]),
        # no conversion time: measured back from the latest touch
        (7.0, at(0, 7), math.nan, [F(1, 3), F(2, 3)]),
        # a later conversion does not change the ratios (the decay has no memory)
        (7.0, at(0, 7), EPOCH + 14 * DAY, [F(1, 3), F(2, 3)]),
        # a touch after the conversion counts as age 0: ages 14 and 0
        (7.0, at(0, 21), EPOCH + 14 * DAY, [F(1, 5), F(4, 5)]),
        # very old paths do not underflow to zero weight
        (0.01, at(-100_000, -99_999.99), EPOCH, [F(1, 3), F(2, 3)]),
    ],
)
def test_time_decay_weights(
    half_life: float, times: list[float], conversion_time: float, expected: list[F]
) -> None:
    names = [f"c{i}" for i in range(len(times))]
    paths = PathSet.from_lists([names], [1], [0], times=[times], conversion_times=[conversion_time])
    credit = TimeDecay(half_life_days=half_life).attribute(paths)
    np.testing.assert_allclose(credit.touch_conversions, [float(x) for x in expected], rtol=1e-9)


def test_time_decay_without_conversion_times_uses_latest_touch() -> None:
    paths = PathSet.from_lists([["a", "b", "a"]], [1], [0], times=[at(-14, 0, -7)])
    credit = TimeDecay().attribute(paths)
    # ages 14, 0, 7: 1/4, 1, 1/2 of 7/4
    np.testing.assert_allclose(credit.touch_conversions, [1 / 7, 4 / 7, 2 / 7], rtol=REL)


def test_time_decay_needs_times() -> None:
    with pytest.raises(MissingData, match="time"):
        TimeDecay().attribute(shop().aggregate())


def time_decay_reference(paths: PathSet, half_life: float) -> dict[tuple[int, int], list[float]]:
    """Slow, obvious time decay: a Python loop over paths and touches."""
    assert paths.times is not None
    credit: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    stages = paths.stage_tokens
    for i in range(paths.n_paths):
        touches = range(int(paths.offsets[i]), int(paths.offsets[i + 1]))
        times = [float(paths.times[t]) for t in touches]
        end = max(times)
        if paths.conversion_times is not None and not math.isnan(paths.conversion_times[i]):
            end = float(paths.conversion_times[i])
        weights = [2.0 ** (-max(end - t, 0.0) / DAY / half_life) for t in times]
        for t, w in zip(touches, weights, strict=True):
            key = (int(paths.tokens[t]), 0 if stages is None else int(stages[t]))
            credit[key][0] += w / sum(weights) * float(paths.conversions[i])
            credit[key][1] += w / sum(weights) * float(paths.value[i])
    return credit


@settings(max_examples=40, deadline=None)
@given(path_specs(times=True, max_paths=12), st.floats(0.05, 60.0))
def test_time_decay_matches_slow_reference(spec, half_life: float) -> None:
    paths = spec.build()
    credit = TimeDecay(half_life_days=half_life).attribute(paths)
    expected = time_decay_reference(paths, half_life)
    conv = np.zeros_like(credit.conversions)
    val = np.zeros_like(credit.value)
    for (c, s), (x, v) in expected.items():
        conv[c, s], val[c, s] = x, v
    np.testing.assert_allclose(credit.conversions, conv, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(credit.value, val, rtol=1e-9, atol=1e-7)


# ---------------------------------------------------------------------- slow references
def reference_weights(name: str, path: list[int]) -> list[float]:
    """Per-touch weights of one path, written the obvious way."""
    n = len(path)
    if name == "first_touch":
        return [1.0] + [0.0] * (n - 1)
    if name == "last_touch":
        return [0.0] * (n - 1) + [1.0]
    if name == "linear":
        return [1.0 / n] * n
    if name == "linear_channel":
        distinct = set(path)
        return [1.0 / len(distinct) / path.count(s) for s in path]
    if n == 1:
        return [1.0]
    if n == 2:
        return [0.5, 0.5]
    return [0.4] + [0.2 / (n - 2)] * (n - 2) + [0.4]


@pytest.mark.parametrize(
    "name", ["first_touch", "last_touch", "linear", "linear_channel", "position_based"]
)
@settings(max_examples=30, deadline=None)
@given(spec=path_specs(max_paths=12))
def test_matches_slow_reference(name: str, spec) -> None:
    paths = spec.build()
    model = Linear(per="channel") if name == "linear_channel" else get_model(name)
    credit = model.attribute(paths)
    expected = np.zeros(len(paths.tokens))
    for i in range(paths.n_paths):
        a, b = int(paths.offsets[i]), int(paths.offsets[i + 1])
        states = [int(s) for s in paths.states[a:b]]
        expected[a:b] = reference_weights(name, states)
    conversions = paths.conversions[paths.path_index]
    np.testing.assert_allclose(credit.touch_conversions, expected * conversions, rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(spec=path_specs(max_paths=12))
def test_linear_per_channel_counts_the_same_densely_or_by_sorting(spec) -> None:
    paths = spec.build()
    dense = Linear(per="channel").attribute(paths)
    # force the sort-based count used when (path, state) codes are too many for bincount
    with mock.patch.multiple(heuristics, _DENSE_KEYS_PER_TOUCH=0, _DENSE_KEYS_MIN=-1):
        by_sorting = Linear(per="channel").attribute(paths)
    np.testing.assert_allclose(by_sorting.touch_conversions, dense.touch_conversions, rtol=1e-15)


# ---------------------------------------------------------------------- stages
def staged() -> PathSet:
    return PathSet.from_lists(
        [["a", "b", "a"], ["b", "b"], ["c"]],
        conversions=[3, 1, 0],
        nulls=[0, 0, 2],
        value=[30, 10, 0],
        stages=[["aw", "co", "de"], ["aw", "aw"], ["co"]],
    )


def test_stages_grid_example() -> None:
    credit = Linear().attribute(staged())
    assert credit.stage_names == ("aw", "co", "de")
    # path 1: 1 conversion to each of (a, aw), (b, co), (a, de); path 2: 1/2 + 1/2 to (b, aw)
    np.testing.assert_allclose(credit.conversions, [[1, 0, 1], [1, 1, 0], [0, 0, 0]], rtol=REL)
    np.testing.assert_allclose(credit.value, [[10, 0, 10], [10, 10, 0], [0, 0, 0]], rtol=REL)
    conv, val = credit.by_channel()
    np.testing.assert_allclose(conv, [2, 2, 0], rtol=REL)
    conv, val = credit.by_stage()
    np.testing.assert_allclose(conv, [2, 1, 1], rtol=REL)
    np.testing.assert_allclose(val, [20, 10, 10], rtol=REL)


@pytest.mark.parametrize("name", ["first_touch", "last_touch", "linear", "position_based"])
def test_stage_tables_are_marginals(name: str) -> None:
    credit = get_model(name).attribute(staged())
    rows = credit.to_rows()
    pairs = [r for r in rows if r["dimension"] == "channel_stage"]
    # (c, co) occurs, though without credit; absent pairs are not listed
    assert {(r["channel"], r["stage"]) for r in pairs} == {
        ("a", "aw"),
        ("a", "de"),
        ("b", "co"),
        ("b", "aw"),
        ("c", "co"),
    }
    for dim, key in (("channel", "channel"), ("stage", "stage")):
        for row in (r for r in rows if r["dimension"] == dim):
            inner = [p for p in pairs if p[key] == row[key]]
            assert row["conversions"] == pytest.approx(sum(p["conversions"] for p in inner))
            assert row["value"] == pytest.approx(sum(p["value"] for p in inner))


# ---------------------------------------------------------------------- collapse_repeats
@pytest.mark.parametrize(
    ("name", "changed"),
    [
        ("first_touch", None),
        ("last_touch", None),
        # path 2 becomes (a, b): 1/2 each
        (
            "linear",
            {"a": (F(2, 3) + F(1, 2), F(100, 3) + 15), "b": (F(2, 3) + F(1, 2), F(100, 3) + 15)},
        ),
        # path 2 becomes two touches, split 0.4 : 0.4
        ("position_based", {"a": (F(4, 5) + F(1, 2), F(55)), "b": (F(2, 5) + F(1, 2), F(35))}),
        # path 2 becomes a(-7) > b(0): 1/3, 2/3
        (
            "time_decay",
            {"a": (F(2, 7) + F(1, 3), F(100, 7) + 10), "b": (F(4, 7) + F(2, 3), F(200, 7) + 20)},
        ),
    ],
)
def test_collapse_repeats(name: str, changed: dict[str, tuple[F, F]] | None) -> None:
    expected = {**SHOP_EXPECTED[name], **(changed or {})}
    assert_credit(get_model(name).attribute(shop().collapse_repeats()), expected)


def test_collapse_repeats_keeps_linear_per_channel_credit() -> None:
    paths = shop()
    before = Linear(per="channel").attribute(paths)
    after = Linear(per="channel").attribute(paths.collapse_repeats())
    np.testing.assert_allclose(before.conversions, after.conversions, rtol=REL)
    np.testing.assert_allclose(before.value, after.value, rtol=REL)


# ---------------------------------------------------------------------- the model objects
@pytest.mark.parametrize(
    ("cls", "name"),
    [
        (FirstTouch, "first_touch"),
        (LastTouch, "last_touch"),
        (Linear, "linear"),
        (PositionBased, "position_based"),
        (TimeDecay, "time_decay"),
    ],
)
def test_registered_under_its_name(cls: type, name: str) -> None:
    model = get_model(name)
    assert type(model) is cls
    assert model.name == name
    assert get_model(name) == model  # hyper-parameters only, compared by value


def test_models_are_frozen() -> None:
    model = PositionBased()
    with pytest.raises(AttributeError):
        model.first_share = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "name", "allowed"),
    [
        (lambda: Linear(per="session"), "per", "'touch', 'channel'"),
        (lambda: PositionBased(first_share=-0.1), "first_share", "[0, 1]"),
        (lambda: PositionBased(last_share=1.5), "last_share", "[0, 1]"),
        (lambda: PositionBased(first_share="0.4"), "first_share", "[0, 1]"),
        (lambda: PositionBased(first_share=0.7, last_share=0.4), "last_share", "at most 1"),
        (lambda: TimeDecay(half_life_days=0), "half_life_days", "(0, inf)"),
        (lambda: TimeDecay(half_life_days=-3.0), "half_life_days", "(0, inf)"),
        (lambda: TimeDecay(half_life_days=math.nan), "half_life_days", "(0, inf)"),
        (lambda: TimeDecay(half_life_days=math.inf), "half_life_days", "(0, inf)"),
        (lambda: TimeDecay(half_life_days=True), "half_life_days", "(0, inf)"),
        (lambda: get_model("position_based", first_share=2), "first_share", "[0, 1]"),
        (lambda: get_model("linear", weights=2), "linear.weights", "per"),
    ],
)
def test_bad_parameters_name_parameter_and_range(build, name: str, allowed: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        build()
    assert info.value.name == name
    assert allowed in info.value.allowed
    assert name in str(info.value)
    assert isinstance(info.value, ValueError)


def test_shares_summing_to_one_are_allowed() -> None:
    credit = PositionBased(first_share=0.7, last_share=0.3).attribute(shop())
    assert credit.conversions.sum() == pytest.approx(4)
