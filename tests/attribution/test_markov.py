"""Markov removal-effect attribution: hand-worked fractions, references and invariants."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_chain import base_label, reference_counts, reference_solve, small_sets
from threadpoolctl import threadpool_limits

from attribution import Credit, InvalidParameter, PathSet, get_model
from attribution import chain as chain_module
from attribution._order_choice import fold_counts
from attribution.markov import Markov, order_scores, touch_split


@pytest.fixture(autouse=True)
def one_blas_thread() -> Iterator[None]:
    # BLAS threads fighting over a shared machine's cores make dense solves 20x slower
    with threadpool_limits(1):
        yield


def close(x: object, fraction: F, rel: float = 1e-12) -> bool:
    return bool(x == pytest.approx(float(fraction), rel=rel, abs=1e-14))


# ---------------------------------------------------------------------- the hand example
# 1. a > b > c   1 conversion (value 10), 1 null
# 2. a > a > b   1 conversion (value 40)           (a repeated channel)
# 3. b           2 nulls                           (a single touch that never converts)
# 4. d > a       1 null                            (d only appears in non-converting paths)
# 5. c           1 conversion (value 30)
#
# Counts: start -> a 3, b 2, d 1, c 1 (7 journeys); a -> b 3, a -> a 1, a -> null 1;
# b -> c 2, b -> conv 1, b -> null 2; c -> conv 2, c -> null 1; d -> a 1.
# With x_s = P(conversion | at s): x_c = 2/3; x_b = 2/5 x_c + 1/5 = 7/15;
# x_a = 3/5 x_b + 1/5 x_a => x_a = 7/20; x_d = x_a = 7/20.
# P = (3 x_a + 2 x_b + x_d + x_c) / 7 = 3/7 = conversions / journeys.
# Remove a (x_a = x_d = 0):          P = (2 * 7/15 + 2/3) / 7 = 8/35  -> effect 7/15
# Remove b (x_b = x_a = x_d = 0):    P = (2/3) / 7 = 2/21             -> effect 7/9
# Remove c (x_b = 1/5, x_a = x_d = 3/20): P = 1/7                     -> effect 2/3
# Remove d (start -> d goes to null): P = (21/20 + 14/15 + 2/3) / 7 = 53/140 -> 7/60
# Sum of effects 365/180, so credit a = 3 * 84/365, b = 3 * 140/365, c = 3 * 120/365,
# d = 3 * 21/365: d earns credit because removing it also cuts walks d -> a -> ... -> conv.
#
# Value: y_s = expected value collected from s on; one-step value is the value of
# paths ending in s over s's outgoing count: c 40/3, b 40/5 = 8, a and d 0.
# y_c = 40/3; y_b = 2/5 y_c + 8 = 40/3; y_a = 3/5 y_b + 1/5 y_a => y_a = 10; y_d = 10.
# V = (3 * 10 + 2 * 40/3 + 10 + 40/3) / 7 = 80/7 = value / journeys.
# Remove a: V = 40/7 -> 1/2.  Remove b: V = (40/3)/7 -> 5/6.
# Remove c: y_b = 8, y_a = y_d = 6, V = 40/7 -> 1/2.  Remove d: V = 10 -> 1/8.
# Sum 47/24, so value credit a = 80 * 12/47, b = 80 * 20/47, c = 80 * 12/47, d = 80 * 3/47:
# not the conversion credit rescaled.
HAND = PathSet.from_lists(
    [["a", "b", "c"], ["a", "a", "b"], ["b"], ["d", "a"], ["c"]],
    conversions=[1, 1, 0, 0, 1],
    nulls=[1, 0, 2, 1, 0],
    value=[10, 40, 0, 0, 30],
)
EFFECTS = {"a": F(7, 15), "b": F(7, 9), "c": F(2, 3), "d": F(7, 60)}
VALUE_EFFECTS = {"a": F(1, 2), "b": F(5, 6), "c": F(1, 2), "d": F(1, 8)}


def test_hand_example_removal_effects_and_credit() -> None:
    credit = Markov().attribute(HAND)
    names = HAND.channel_names
    assert credit.details["p_conversion"] == pytest.approx(3 / 7, rel=1e-13)
    assert credit.details["expected_value"] == pytest.approx(80 / 7, rel=1e-13)
    assert credit.details["solver"] == "dense" and credit.details["order"] == 1
    assert credit.removal_effects is not None and credit.value_removal_effects is not None
    total_effect = sum(EFFECTS.values())
    total_value_effect = sum(VALUE_EFFECTS.values())
    for i, name in enumerate(names):
        assert close(credit.removal_effects["channel"][i], EFFECTS[name])
        assert close(credit.value_removal_effects["channel"][i], VALUE_EFFECTS[name])
        assert close(credit.conversions[i, 0], 3 * EFFECTS[name] / total_effect)
        assert close(credit.value[i, 0], 80 * VALUE_EFFECTS[name] / total_value_effect)
    assert set(credit.removal_effects) == {"channel"}
    assert credit.warnings == ()


def test_hand_example_per_journey_split() -> None:
    # a > a > b: a's effect 7/15 is halved over its two touches, b keeps 7/9;
    # normalised by 7/15 + 7/9 = 56/45: each a touch 3/16, b 5/8 of the conversion
    credit = Markov().attribute(HAND)
    assert credit.touch_conversions is not None and credit.touch_value is not None
    touches = credit.touch_conversions[3:6]
    for got, want in zip(touches, [F(3, 16), F(3, 16), F(5, 8)], strict=True):
        assert close(got, want)
    # its value (40) by the value effects: a 1/2 halved, b 5/6, normalised by 4/3
    expected_value = [F(1, 4) / F(4, 3), F(1, 4) / F(4, 3), F(5, 6) / F(4, 3)]
    for got, want in zip(credit.touch_value[3:6], expected_value, strict=True):
        assert close(got, 40 * want)
    # paths that never convert get nothing; every path's split sums to its totals
    np.testing.assert_array_equal(credit.touch_conversions[6:9], 0.0)
    per_path = np.bincount(HAND.path_index, credit.touch_conversions)
    np.testing.assert_allclose(per_path, HAND.conversions, rtol=1e-12)
    np.testing.assert_allclose(np.bincount(HAND.path_index, credit.touch_value), HAND.value)


def test_the_per_touch_split_waits_until_it_is_read() -> None:
    """Runs that report the grid never compute the split (two arrays the size of the
    touches); the first read computes both halves once, with the same numbers."""
    credit = Markov().attribute(HAND)
    assert credit.__dict__["touch_conversions"] is None and credit.touch_split is not None
    copied = Credit(**credit.__dict__)  # a copy defers too
    first = credit.touch_conversions
    assert credit.touch_split is None and credit.touch_conversions is first
    assert credit.touch_value is not None and first is not None
    np.testing.assert_array_equal(copied.touch_conversions, first)
    np.testing.assert_array_equal(copied.touch_value, credit.touch_value)


def test_two_channels_with_identical_roles_get_equal_credit() -> None:
    paths = PathSet.from_lists(
        [["x", "y"], ["y", "x"], ["x"], ["y"], ["z", "x"], ["z", "y"]],
        conversions=[2, 2, 1, 1, 1, 1],
        nulls=[1, 1, 3, 3, 2, 2],
        value=[20, 20, 5, 5, 9, 9],
    )
    for order in (1, 2, 3):
        credit = Markov(order=order).attribute(paths)
        x, y = paths.channel_names.index("x"), paths.channel_names.index("y")
        assert credit.conversions[x, 0] == pytest.approx(credit.conversions[y, 0], rel=1e-12)
        assert credit.value[x, 0] == pytest.approx(credit.value[y, 0], rel=1e-12)


def test_orders_two_to_four_by_hand() -> None:
    # a > b converts, b > b fails, a fails. At order 2 the states are (a,b), (b,b), (-,a).
    # start -> (a,b) 1 -> conv; start -> (b,b) 1 -> null; start -> (-,a) 1 -> null.
    # P = 1/3. Removing a kills (a,b) and (-,a): P = 0, effect 1. Removing b kills
    # (a,b) and (b,b): effect 1. Equal credit, 1/2 each. At order 1 instead:
    # start -> a 2, b 1; a -> b 1, a -> null 1; b -> b 1, b -> conv 1, b -> null 1.
    # x_b = 1/3 x_b + 1/3 => 1/2; x_a = 1/4; P = (2 * 1/4 + 1/2)/3 = 1/3.
    # Remove a: P = 1/6, effect 1/2. Remove b: effect 1. Credit a 1/3, b 2/3.
    paths = PathSet.from_lists([["a", "b"], ["b", "b"], ["a"]], [1, 0, 0], [0, 1, 1])
    one = Markov(order=1).attribute(paths)
    assert close(one.conversions[0, 0], F(1, 3)) and close(one.conversions[1, 0], F(2, 3))
    for order in (2, 3, 4):
        credit = Markov(order=order).attribute(paths)
        assert credit.details["order"] == order
        assert close(credit.details["p_conversion"], F(1, 3))
        assert credit.removal_effects is not None
        np.testing.assert_allclose(credit.removal_effects["channel"], [1.0, 1.0])
        np.testing.assert_allclose(credit.conversions[:, 0], [0.5, 0.5])


def test_stages_use_channel_stage_pairs_and_report_every_dimension() -> None:
    # the hand example with every touch of a in "s" except the repeat, which is "t"
    stages = [["s", "s", "s"], ["s", "t", "s"], ["s"], ["s", "s"], ["s"]]
    paths = PathSet.from_lists(
        HAND.paths_as_lists(), HAND.conversions, HAND.nulls, HAND.value, stages=stages
    )
    credit = Markov().attribute(paths)
    fx = credit.removal_effects
    assert fx is not None and set(fx) == {"channel", "stage", "channel_stage"}
    assert paths.stage_names is not None
    a, s, t = (paths.channel_names.index("a"), *map(paths.stage_names.index, "st"))
    # removing channel a (both its pairs) is the order-1 hand example's removal of a
    assert close(fx["channel"][a], EFFECTS["a"])
    # removing stage t only cuts the a(t) state: the walk a(s) -> a(t) now goes to null
    assert fx["stage"][t] == pytest.approx(fx["channel_stage"][a, t])
    assert fx["channel_stage"][a, s] > 0 and fx["channel_stage"][a, t] > 0
    np.testing.assert_allclose(credit.conversions.sum(), 3.0, rtol=1e-12)
    np.testing.assert_allclose(credit.value.sum(), 80.0, rtol=1e-12)
    # absent pairs get nothing
    assert np.all(credit.conversions[~credit.present] == 0)


def test_no_conversions_gives_zero_credit_and_says_so() -> None:
    paths = PathSet.from_lists([["a", "b"], ["b"]], [0, 0], [3, 1])
    credit = Markov().attribute(paths)
    np.testing.assert_array_equal(credit.conversions, 0.0)
    assert credit.details["p_conversion"] == 0.0
    assert any("no conversions" in w for w in credit.warnings)


def test_no_null_journeys_warns() -> None:
    credit = Markov().attribute(PathSet.from_lists([["a", "b"], ["b"]], [1, 2], [0, 0]))
    assert any("non-converting" in w for w in credit.warnings)
    np.testing.assert_allclose(credit.conversions.sum(), 3.0)


def test_transitions_agree_with_channelattribution() -> None:
    # ChannelAttribution 2.2.5 on the hand example (matplotlib stubbed: CA imports it
    # but transition_matrix does not use it):
    #   d = pd.DataFrame({"path": ["a > b > c", "a > a > b", "b", "d > a", "c"],
    #                     "total_conversions": [1, 1, 0, 0, 1], "total_null": [1, 0, 2, 1, 0]})
    #   transition_matrix(d, "path", "total_conversions", "total_null", order=1)
    #   ["transition_matrix"].to_csv(index=False, float_format="%.17g")
    # channels: 1 a, 2 b, 3 c, 4 d
    ca = """
    (start),1,0.42857142857142855
    (start),2,0.2857142857142857
    (start),4,0.14285714285714285
    (start),3,0.14285714285714285
    1,2,0.59999999999999998
    1,1,0.20000000000000001
    1,(null),0.20000000000000001
    2,3,0.40000000000000002
    2,(conversion),0.20000000000000001
    2,(null),0.40000000000000002
    3,(conversion),0.66666666666666663
    3,(null),0.33333333333333331
    4,1,1
    """
    ids = {"1": "a", "2": "b", "3": "c", "4": "d"}
    expected = {}
    for line in ca.split():
        src, dst, p = line.split(",")
        expected[ids.get(src, src), ids.get(dst, dst)] = float(p)
    rows = Markov().attribute(HAND).details["transitions"]
    got = {(r["from_channel"], r["to_channel"]): r["probability"] for r in rows}
    assert got.keys() == expected.keys()
    for key, p in expected.items():
        assert got[key] == pytest.approx(p, rel=1e-15)  # rtol 1e-15: the same division
    counts = {(r["from_channel"], r["to_channel"]): r["count"] for r in rows}
    assert counts["(start)", "a"] == 3 and counts["a", "a"] == 1


def test_removal_effects_agree_with_channelattribution_simulation() -> None:
    # ChannelAttribution 2.2.5 simulates the same chain (its defaults: conv_par=0.05,
    # seed=0); on the hand example, with d["v"] = [10, 40, 0, 0, 30]:
    #   markov_model(d, "path", "total_conversions", var_value="v", var_null="total_null",
    #                order=1, out_more=True)["removal_effects"]
    #     channel_name  removal_effects_conversion  removal_effects_conversion_value
    #   0            a                    0.466512                          0.501943
    #   1            b                    0.776593                          0.835737
    #   2            c                    0.663963                          0.499093
    #   3            d                    0.119351                          0.129977
    # Its answer is a simulation that stops at about 5% variation between folds, so
    # rtol = 0.05 against our exact fractions (7/15, 7/9, 2/3, 7/60; 1/2, 5/6, 1/2, 1/8).
    ca = {
        "a": (0.466512, 0.501943),
        "b": (0.776593, 0.835737),
        "c": (0.663963, 0.499093),
        "d": (0.119351, 0.129977),
    }
    credit = Markov().attribute(HAND)
    assert credit.removal_effects is not None and credit.value_removal_effects is not None
    for i, name in enumerate(HAND.channel_names):
        assert credit.removal_effects["channel"][i] == pytest.approx(ca[name][0], rel=0.05)
        assert credit.value_removal_effects["channel"][i] == pytest.approx(ca[name][1], rel=0.05)


# ---------------------------------------------------------------------- references
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=small_sets(stages=False) | small_sets(stages=True), order=st.integers(1, 4))
def test_removal_effects_match_dense_reference(
    data: tuple[list[list[str]], PathSet], order: int
) -> None:
    labels, paths = data
    conv, nulls, value = (list(x) for x in (paths.conversions, paths.nulls, paths.value))
    counts, value_at = reference_counts(labels, conv, nulls, value, order)
    p0, v0 = reference_solve(counts, value_at)
    credit = Markov(order=order).attribute(paths)
    fx, vfx = credit.removal_effects, credit.value_removal_effects
    assert fx is not None and vfx is not None
    grid = fx["channel_stage"] if paths.has_stages else fx["channel"][:, None]
    vgrid = vfx["channel_stage"] if paths.has_stages else vfx["channel"][:, None]
    for state in np.flatnonzero(paths.state_present.ravel()):
        p, v = reference_solve(counts, value_at, frozenset([base_label(paths, state)]))
        c, s = divmod(int(state), paths.n_stage_columns)
        assert grid[c, s] == pytest.approx(1 - p / p0 if p0 > 0 else 0.0, abs=1e-10)
        assert vgrid[c, s] == pytest.approx(1 - v / v0 if v0 > 0 else 0.0, abs=1e-10)
    # and each channel: all of its pairs removed together
    for c, name in enumerate(paths.channel_names):
        members = [lab for path in labels for lab in path if lab.split("|")[0] == name]
        p, _ = reference_solve(counts, value_at, frozenset(members))
        assert fx["channel"][c] == pytest.approx(1 - p / p0 if p0 > 0 else 0.0, abs=1e-10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=small_sets(stages=False) | small_sets(stages=True), order=st.integers(1, 4))
def test_credit_is_efficient_non_negative_and_marginal(
    data: tuple[list[list[str]], PathSet], order: int
) -> None:
    _, paths = data
    credit = Markov(order=order).attribute(paths)
    assert np.all(credit.conversions >= 0) and np.all(credit.value >= 0)
    if paths.total_conversions > 0:
        assert credit.conversions.sum() == pytest.approx(paths.total_conversions, rel=1e-9)
    if paths.total_value > 0:
        assert credit.value.sum() == pytest.approx(paths.total_value, rel=1e-9)
    journeys = paths.total_conversions + paths.total_nulls
    rate = paths.total_conversions / journeys if journeys else 0.0
    assert credit.details["p_conversion"] == pytest.approx(rate, rel=1e-9, abs=1e-15)
    assert credit.touch_conversions is not None and credit.touch_value is not None
    assert np.all(credit.touch_conversions >= 0)
    per_path = np.bincount(paths.path_index, credit.touch_conversions, minlength=paths.n_paths)
    np.testing.assert_allclose(per_path, paths.conversions, rtol=1e-12, atol=1e-12)
    per_value = np.bincount(paths.path_index, credit.touch_value, minlength=paths.n_paths)
    np.testing.assert_allclose(per_value, paths.value, rtol=1e-12, atol=1e-9)
    if paths.has_stages:
        conv_ch, _ = credit.by_channel()
        conv_st, _ = credit.by_stage()
        assert conv_ch.sum() == pytest.approx(conv_st.sum())


@settings(max_examples=30, deadline=None)
@given(data=small_sets(stages=True), seed=st.integers(0, 2**32 - 1))
def test_rows_order_does_not_matter(data: tuple[list[list[str]], PathSet], seed: int) -> None:
    _, paths = data
    order = np.random.default_rng(seed).permutation(paths.n_paths)
    lists = paths.paths_as_lists()
    assert paths.stage_names is not None and paths.stage_tokens is not None
    stage_lists = [
        [paths.stage_names[s] for s in paths.stage_tokens[a:b]]
        for a, b in zip(paths.offsets[:-1], paths.offsets[1:], strict=True)
    ]
    shuffled = PathSet.from_lists(
        [lists[i] for i in order],
        paths.conversions[order],
        paths.nulls[order],
        paths.value[order],
        stages=[stage_lists[i] for i in order],
    )
    for model in (Markov(order=2), Markov(order="auto", auto_orders=(1, 2))):
        a, b = model.attribute(paths).to_rows(), model.attribute(shuffled).to_rows()
        key = lambda r: (r["dimension"], r["channel"] or "", r["stage"] or "")  # noqa: E731
        for x, y in zip(sorted(a, key=key), sorted(b, key=key), strict=True):
            assert key(x) == key(y)
            assert x["conversions"] == pytest.approx(y["conversions"], rel=1e-9, abs=1e-12)
            assert x["value"] == pytest.approx(y["value"], rel=1e-9, abs=1e-9)


def test_iterative_solver_gives_the_dense_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    lengths = rng.integers(1, 8, 600)
    tokens = rng.integers(0, 9, int(lengths.sum()))
    conv = rng.integers(0, 3, 600).astype(float)
    paths = PathSet.from_arrays(
        [f"c{i}" for i in range(9)],
        tokens,
        np.concatenate([[0], np.cumsum(lengths)]),
        conv,
        rng.integers(0, 4, 600),
        conv * 7.5,
    )
    iterative = Markov(order=3).attribute(paths)
    assert iterative.details["n_states"] > chain_module.DENSE_LIMIT
    assert iterative.details["solver"] == "bicgstab"
    monkeypatch.setattr(chain_module, "DENSE_LIMIT", 10**6)
    dense = Markov(order=3).attribute(paths)
    assert dense.details["solver"] == "dense"
    np.testing.assert_allclose(iterative.conversions, dense.conversions, rtol=1e-10)
    np.testing.assert_allclose(iterative.value, dense.value, rtol=1e-10)


# ---------------------------------------------------------------------- order choice
def _second_order_data(seed: int) -> PathSet:
    """Journeys that convert often only after ``a`` then ``b``: order 1 cannot see it."""
    rng = np.random.default_rng(seed)
    n = 3000
    lengths = rng.integers(2, 5, n)
    tokens = rng.integers(0, 3, int(lengths.sum()))
    ends = np.cumsum(lengths) - 1
    pattern = (tokens[ends - 1] == 0) & (tokens[ends] == 1)
    converts = rng.random(n) < np.where(pattern, 0.8, 0.05)
    return PathSet.from_arrays(
        ["a", "b", "c"],
        tokens,
        np.concatenate([[0], np.cumsum(lengths)]),
        converts.astype(float),
        (~converts).astype(float),
    ).aggregate()


def test_auto_order_prefers_the_order_the_data_needs() -> None:
    paths = _second_order_data(0)
    credit = Markov(order="auto").attribute(paths)
    scores = credit.details["order_scores"]
    assert set(scores) == {1, 2, 3, 4}
    assert scores[2] > scores[1]
    assert credit.details["order"] == max(scores, key=lambda k: scores[k])
    assert credit.details["order"] >= 2
    # the same seed gives the same scores
    again = Markov(order="auto").attribute(paths).details["order_scores"]
    assert again == scores


def test_auto_order_respects_auto_orders() -> None:
    credit = Markov(order="auto", auto_orders=[1, 3]).attribute(_second_order_data(1))
    assert set(credit.details["order_scores"]) == {1, 3}
    assert credit.details["order"] == 3


def test_folds_partition_every_journey() -> None:
    paths = PathSet.from_lists([["a"], ["b", "a"], ["c"]], [3, 0, 2.5], [4, 7, 0.25])
    conv, nulls = fold_counts(paths, 5, seed=3)
    np.testing.assert_allclose(conv.sum(axis=1), paths.conversions)
    np.testing.assert_allclose(nulls.sum(axis=1), paths.nulls)
    assert np.all(conv >= 0) and np.all(nulls >= 0)
    # integer counts are dealt as whole journeys, as evenly as possible
    assert set(np.unique(nulls[1])) <= {1.0, 2.0}
    scores = order_scores(paths, (1, 2), 5, seed=3)
    assert all(np.isfinite(v) and v < 0 for v in scores.values())


def test_touch_split_is_equal_when_no_state_has_an_effect() -> None:
    paths = PathSet.from_lists([["a", "b", "b"]], [3])
    split = touch_split(paths, np.zeros(2), paths.conversions)
    np.testing.assert_allclose(split, [1.0, 1.0, 1.0])


# ---------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"order": 0}, "order"),
        ({"order": 5}, "order"),
        ({"order": "best"}, "order"),
        ({"order": 1.5}, "order"),
        ({"n_folds": 1}, "n_folds"),
        ({"random_state": -1}, "random_state"),
        ({"auto_orders": ()}, "auto_orders"),
        ({"auto_orders": (1, 5)}, "auto_orders"),
        ({"auto_orders": (2, 2)}, "auto_orders"),
        ({"auto_orders": "12"}, "auto_orders"),
    ],
)
def test_invalid_parameters_name_the_parameter(options: dict[str, object], name: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        get_model("markov", **options)
    assert info.value.name == name


def test_registry_builds_the_model() -> None:
    model = get_model("markov", order=2)
    assert isinstance(model, Markov) and model.order == 2 and model.name == "markov"
    assert Markov(auto_orders=[3, 1]).auto_orders == (1, 3)
