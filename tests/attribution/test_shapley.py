"""Hand-worked examples for the Shapley models, with exact fractions.

Each example is small enough to work out on paper; the working is in the comments.
Float results are compared to the fractions at ``rel=1e-12``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from attribution import InvalidParameter, PathSet, get_model
from attribution.chain import build_chain, conversion_probability
from attribution.shapley import Shapley, ShapleyOrdered, ShapleyRate, ShapleySimple

SHAPLEY_MODELS = ("shapley", "shapley_simple", "shapley_ordered", "shapley_rate")


def close(actual: object, expected: list[Fraction | int]) -> None:
    assert np.asarray(actual, dtype=float).ravel() == pytest.approx(
        [float(x) for x in expected], rel=1e-12, abs=1e-12
    )


def simple_paths() -> PathSet:
    """a, b, c, d. d appears only in a journey that never converts; b repeats."""
    return PathSet.from_lists(
        [["a", "b"], ["a"], ["b", "c", "b"], ["c"], ["d", "a"]],
        conversions=[1, 0, 2, 0, 0],
        nulls=[1, 1, 0, 3, 2],
        value=[10, 0, 30, 0, 0],
    )


def test_simple_splits_each_conversion_equally_among_distinct_channels() -> None:
    # (a, b): 1 conversion -> a 1/2, b 1/2; (b, c, b): 2 -> b 1, c 1 (b's share over its
    # two touches); journeys that never convert give nothing, so d gets 0
    credit = ShapleySimple().attribute(simple_paths())
    close(credit.conversions, [Fraction(1, 2), Fraction(3, 2), 1, 0])
    close(credit.value, [5, 20, 15, 0])
    close(
        credit.touch_conversions,
        [Fraction(1, 2), Fraction(1, 2), 0, Fraction(1, 2), 1, Fraction(1, 2), 0, 0, 0],
    )
    close(credit.touch_value, [5, 5, 0, Fraction(15, 2), 15, Fraction(15, 2), 0, 0, 0])
    assert credit.warnings == ()


def test_ordered_breaks_simple_credit_down_by_position() -> None:
    paths = simple_paths()
    ordered = ShapleyOrdered(max_position=2).attribute(paths)
    simple = ShapleySimple().attribute(paths)
    np.testing.assert_array_equal(ordered.conversions, simple.conversions)
    np.testing.assert_array_equal(ordered.touch_value, simple.touch_value)
    # a: 1/2 at position 1 of (a, b); b: 1/2 at 2 of (a, b), 1/2 at 1 and 1/2 at 3 of
    # (b, c, b), where 3 falls in the last bucket "2+"; c: 1 at position 2
    by_position = ordered.details["by_position"]
    close(by_position, [Fraction(1, 2), 0, Fraction(1, 2), 1, 0, 1, 0, 0])
    close(
        ordered.details["by_position_value"], [5, 0, Fraction(15, 2), Fraction(25, 2), 0, 15, 0, 0]
    )
    assert ordered.details["position_labels"] == ("1", "2+")
    np.testing.assert_allclose(by_position.sum(axis=1), ordered.conversions.ravel())


def rate_paths() -> PathSet:
    """Player sets {a, b} 1 of 2 convert, {a} 0 of 1, {b} 1 of 1, {b, c} 0 of 1."""
    return PathSet.from_lists(
        [["a", "b"], ["a"], ["b"], ["c", "b", "c"]],
        conversions=[1, 0, 1, 0],
        nulls=[1, 1, 0, 1],
        value=[10, 0, 20, 0],
    )


def test_rate_game_by_hand() -> None:
    # v: {a} 0, {b} 1, {c} 0, {a,b} 2/4, {a,c} 0, {b,c} 1/2, {a,b,c} 2/5.
    # weights 1/3 (size 0), 1/6 (size 1), 1/3 (size 2):
    # phi_a = 1/6 (1/2 - 1) + 1/6 (0 - 0) + 1/3 (2/5 - 1/2) = -7/60
    # phi_b = 1/3 + 1/6 (1/2) + 1/6 (1/2) + 1/3 (2/5) = 19/30
    # phi_c = 1/6 (0 - 0) + 1/6 (1/2 - 1) + 1/3 (2/5 - 1/2) = -7/60
    # sum = 2/5 = v(N); credit = phi / (2/5) * 2 conversions = 5 phi
    credit = ShapleyRate().attribute(rate_paths())
    close(
        credit.details["shapley_values"][:, 0],
        [Fraction(-7, 60), Fraction(19, 30), Fraction(-7, 60)],
    )
    close(credit.conversions, [Fraction(-7, 12), Fraction(19, 6), Fraction(-7, 12)])
    # value per journey: {b} 20, {a,b} 30/4, {b,c} 10, {a,b,c} 6, others 0:
    # phi_a = 1/6 (15/2 - 20) + 1/3 (6 - 10) = -41/12
    # phi_b = 1/3 20 + 1/6 15/2 + 1/6 10 + 1/3 6 = 139/12
    # phi_c = 1/6 (10 - 20) + 1/3 (6 - 15/2) = -13/6; credit = phi / 6 * 30 = 5 phi
    close(credit.value, [Fraction(-205, 12), Fraction(695, 12), Fraction(-65, 6)])
    # per journey: (a, b) goes wholly to b, whose global credit is the only positive one
    close(credit.touch_conversions, [0, 1, 0, 1, 0, 0, 0])
    close(credit.touch_value, [0, 10, 0, 20, 0, 0, 0])


def test_rate_warns_about_noise_and_negative_credit() -> None:
    credit = ShapleyRate().attribute(rate_paths())
    assert any("negative credit" in w for w in credit.warnings)
    assert credit.conversions.min() < 0


def markov_paths() -> PathSet:
    """(a, b) 1 of 2 convert, (b, b) converts, (a) and (c) never convert."""
    return PathSet.from_lists(
        [["a", "b"], ["b", "b"], ["a"], ["c"]],
        conversions=[1, 1, 0, 0],
        nulls=[1, 0, 1, 1],
        value=[10, 20, 0, 0],
    )


def test_markov_game_by_hand() -> None:
    # start -> a 3/5, b 1/5, c 1/5; a -> b 2/3, null 1/3; b -> b 1/4, conv 1/2,
    # null 1/4, so from b a walk converts with (1/2) / (3/4) = 2/3; c -> null.
    # v: {b} = 1/5 * 2/3 = 2/15, {a, b} = 3/5 * 2/3 * 2/3 + 2/15 = 2/5; every
    # coalition without b is 0, and c adds nothing to any coalition.
    # phi_a = 1/6 (2/5 - 2/15) + 1/3 (2/5 - 2/15) = 2/15
    # phi_b = 1/3 (2/15) + 1/6 (2/5) + 1/6 (2/15) + 1/3 (2/5) = 4/15, phi_c = 0
    # credit = phi / (2/5) * 2 conversions = 5 phi
    credit = Shapley().attribute(markov_paths())
    close(credit.details["shapley_values"][:, 0], [Fraction(2, 15), Fraction(4, 15), 0])
    close(credit.conversions, [Fraction(2, 3), Fraction(4, 3), 0])
    # value: b collects 30 over 4 steps, 15/2 per step; visits to b: {b} 1/5 * 4/3,
    # {a, b} (1/5 + 3/5 * 2/3) * 4/3: v_val {b} = 2, {a, b} = 6 = 30 / 5 journeys.
    # phi_a = 1/2 (6 - 2) = 2, phi_b = 1/2 2 + 1/2 6 = 4; credit = phi / 6 * 30
    close(credit.value, [10, 20, 0])
    # per journey: (a, b) split 1 : 2 as phi_a : phi_b; (b, b) halves between touches
    close(
        credit.touch_conversions,
        [Fraction(1, 3), Fraction(2, 3), Fraction(1, 2), Fraction(1, 2), 0, 0],
    )
    close(credit.touch_value, [Fraction(10, 3), Fraction(20, 3), 10, 10, 0, 0])


def test_markov_grand_coalition_is_the_chain_conversion_probability() -> None:
    paths = markov_paths()
    credit = Shapley().attribute(paths)
    expected = conversion_probability(build_chain(paths, 1))
    assert credit.details["conversion_probability"] == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(2 / 5, rel=1e-12)


@pytest.mark.parametrize("name", SHAPLEY_MODELS)
def test_players_with_identical_roles_get_equal_credit(name: str) -> None:
    paths = PathSet.from_lists(
        [["x", "y"], ["y", "x"], ["z"]], conversions=[1, 1, 1], nulls=[1, 1, 2], value=[3, 3, 2]
    )
    credit = get_model(name).attribute(paths)
    assert credit.conversions[0, 0] == pytest.approx(credit.conversions[1, 0], rel=1e-12)
    assert credit.value[0, 0] == pytest.approx(credit.value[1, 0], rel=1e-12)
    assert credit.conversions.sum() == pytest.approx(3, rel=1e-12)


@pytest.mark.parametrize("name", SHAPLEY_MODELS)
def test_stages_make_channel_stage_players(name: str) -> None:
    # the same channel in two stages is two players: search@aware and search@buy
    paths = PathSet.from_lists(
        [["search", "search"], ["search", "email"], ["email"]],
        conversions=[1, 2, 0],
        nulls=[1, 0, 2],
        value=[5, 8, 0],
        stages=[["aware", "buy"], ["aware", "buy"], ["aware"]],
    )
    credit = get_model(name).attribute(paths)
    assert credit.conversions.shape == (2, 2)
    assert credit.conversions.sum() == pytest.approx(3, rel=1e-12)
    assert credit.value.sum() == pytest.approx(13, rel=1e-12)
    assert credit.conversions[0, 1] > 0  # search@buy is a player of its own


def test_sampling_is_seeded_and_reports_standard_errors() -> None:
    paths = simple_paths()
    model = Shapley(max_exact_players=2, n_samples=200, random_state=7)
    first, again = model.attribute(paths), model.attribute(paths)
    np.testing.assert_array_equal(first.conversions, again.conversions)
    other = Shapley(max_exact_players=2, n_samples=200, random_state=8).attribute(paths)
    assert not np.array_equal(first.conversions, other.conversions)
    assert first.details["standard_error"].shape == first.conversions.shape
    assert any("random permutations" in w for w in first.warnings)
    # sampled marginal contributions telescope, so efficiency still holds exactly
    assert first.conversions.sum() == pytest.approx(paths.total_conversions, rel=1e-12)


def test_rate_refuses_more_players_than_max_players() -> None:
    with pytest.raises(InvalidParameter, match=r"max_players=3 is not allowed.* 4 channels"):
        ShapleyRate(max_players=3).attribute(simple_paths())


@pytest.mark.parametrize(
    ("model", "options"),
    [
        (ShapleyRate, {"max_players": 23}),
        (Shapley, {"max_exact_players": 21}),
        (Shapley, {"n_samples": 1}),
        (Shapley, {"random_state": -1}),
        (ShapleyOrdered, {"max_position": 0}),
    ],
)
def test_parameters_out_of_range_are_refused(model: type, options: dict[str, int]) -> None:
    with pytest.raises(InvalidParameter):
        model(**options)


@pytest.mark.parametrize("name", SHAPLEY_MODELS)
def test_no_conversions_gives_zero_credit(name: str) -> None:
    paths = PathSet.from_lists([["a", "b"], ["b"]], conversions=[0, 0], nulls=[2, 1])
    credit = get_model(name).attribute(paths)
    assert not credit.conversions.any() and not credit.value.any()


@pytest.mark.parametrize("name", SHAPLEY_MODELS)
def test_all_converting_data_carries_the_no_null_warning(name: str) -> None:
    paths = PathSet.from_lists([["a", "b"], ["b"]], conversions=[1, 2], value=[1, 1])
    credit = get_model(name).attribute(paths)
    assert any("no non-converting" in w for w in credit.warnings)
