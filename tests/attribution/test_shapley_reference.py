"""The Shapley models against slow, obvious references.

Each reference evaluates its game coalition by coalition with plain Python loops over
the journeys, and takes Shapley values with the textbook formula over every subset
(or, for one check, every permutation). The fast models must agree to ``rel=1e-9``
over hypothesis-drawn path sets with at most 6 players.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from conftest import path_sets
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution import PathSet
from attribution._coalitions import ChainGame, coalition_masks, exact_shapley, subset_sums
from attribution.chain import build_chain, conversion_probability, solve_removals
from attribution.shapley import (
    Shapley,
    ShapleyOrdered,
    ShapleyRate,
    ShapleySimple,
    chain_game,
)

Game = Callable[[frozenset[int]], float]

# at most 6 players: up to 6 channels without stages, 3 channels x 2 stages with them
SMALL = st.one_of(
    path_sets(max_channels=6, stages=False, max_paths=8),
    path_sets(max_channels=3, stages=True, max_stages=2, max_paths=8),
)
SETTINGS = settings(max_examples=30, deadline=None)


# ---------------------------------------------------------------------- references
def journeys(paths: PathSet) -> list[tuple[list[int], float, float, float]]:
    """(states in touch order, conversions, nulls, value) per path, as Python values."""
    states = paths.states.tolist()
    bounds = paths.offsets.tolist()
    return [
        (states[a:b], float(c), float(u), float(v))
        for a, b, c, u, v in zip(
            bounds[:-1], bounds[1:], paths.conversions, paths.nulls, paths.value, strict=True
        )
    ]


def textbook_shapley(players: Sequence[int], v: Game) -> dict[int, float]:
    """phi_j = sum over S without j of |S|! (n - |S| - 1)! / n! (v(S + j) - v(S))."""
    n = len(players)
    phi = {}
    for j in players:
        others = [p for p in players if p != j]
        total = 0.0
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for s in itertools.combinations(others, size):
                total += weight * (v(frozenset(s) | {j}) - v(frozenset(s)))
        phi[j] = total
    return phi


def permutation_shapley(players: Sequence[int], v: Game) -> dict[int, float]:
    """Mean marginal contribution over all n! orderings."""
    phi = dict.fromkeys(players, 0.0)
    orders = list(itertools.permutations(players))
    for order in orders:
        for k, j in enumerate(order):
            phi[j] += v(frozenset(order[: k + 1])) - v(frozenset(order[:k]))
    return {j: x / len(orders) for j, x in phi.items()}


def conversions_game(paths: PathSet, amount: int) -> Game:
    """Zhao et al.: conversions (amount 1) or value (amount 3) of journeys inside S."""
    rows = journeys(paths)
    return lambda s: sum(row[amount] for row in rows if set(row[0]) <= s)


def rate_game(paths: PathSet, amount: int) -> Game:
    """Dalessandro et al.: conversions (or value) per journey of the journeys inside S."""
    rows = journeys(paths)

    def v(s: frozenset[int]) -> float:
        inside = [row for row in rows if set(row[0]) <= s]
        n = sum(row[1] + row[2] for row in inside)
        return sum(row[amount] for row in inside) / n if n else 0.0

    return v


def chain_games(paths: PathSet) -> tuple[Game, Game]:
    """The order-1 chain's conversion and value games, one dense solve per coalition.

    Transitions are counted with a loop over paths; removing a state sends every
    transition into it to null.
    """
    count: dict[int, dict[int | str, float]] = defaultdict(lambda: defaultdict(float))
    value: dict[int, float] = defaultdict(float)
    for states, conv, nulls, val in journeys(paths):
        weight = conv + nulls
        walk = ["start", *states]
        for src, dst in itertools.pairwise(walk):
            count[-1 if src == "start" else int(src)][dst] += weight
        count[states[-1]]["conv"] += conv
        count[states[-1]]["null"] += nulls
        value[states[-1]] += val

    def solve(s: frozenset[int]) -> tuple[float, float]:
        kept = sorted(s)
        index = {state: i for i, state in enumerate(kept)}
        a = np.eye(len(kept))
        b = np.zeros((len(kept), 2))
        start = np.zeros(len(kept))
        start_out = sum(count[-1].values())
        for dst, w in count[-1].items():
            if dst in index:
                start[index[dst]] = w / start_out
        for state in kept:
            out = sum(count[state].values())
            if out == 0:
                continue
            for dst, w in count[state].items():
                if dst in index:
                    a[index[state], index[dst]] -= w / out
            b[index[state]] = count[state]["conv"] / out, value[state] / out
        result = start @ np.linalg.solve(a, b) if kept else np.zeros(2)
        return float(result[0]), float(result[1])

    return (lambda s: solve(s)[0]), (lambda s: solve(s)[1])


def players_of(paths: PathSet) -> list[int]:
    return np.flatnonzero(paths.state_present.ravel()).tolist()


def expected_credit(paths: PathSet, phi: dict[int, float], total: float) -> np.ndarray:
    """Shapley values scaled to ``total``, on the credit grid."""
    out = np.zeros(paths.n_states)
    norm = sum(phi.values())
    for j, x in phi.items():
        out[j] = x / norm * total if norm else 0.0
    return out.reshape(paths.n_channels, paths.n_stage_columns)


# ---------------------------------------------------------------------- fast = slow
@SETTINGS
@given(SMALL)
def test_simple_equals_textbook_shapley_of_the_conversions_game(paths: PathSet) -> None:
    credit = ShapleySimple().attribute(paths)
    for amount, grid_ in ((1, credit.conversions), (3, credit.value)):
        phi = textbook_shapley(players_of(paths), conversions_game(paths, amount))
        expected = np.zeros(paths.n_states)
        expected[list(phi)] = list(phi.values())
        np.testing.assert_allclose(grid_.ravel(), expected, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(SMALL)
def test_simple_equals_its_closed_form(paths: PathSet) -> None:
    # phi_j = sum over journeys containing j of conversions / (number of distinct players)
    expected = np.zeros(paths.n_states)
    for states, conv, _nulls, _value in journeys(paths):
        for j in set(states):
            expected[j] += conv / len(set(states))
    credit = ShapleySimple().attribute(paths)
    np.testing.assert_allclose(credit.conversions.ravel(), expected, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(SMALL)
def test_ordered_totals_equal_simple(paths: PathSet) -> None:
    ordered = ShapleyOrdered(max_position=3).attribute(paths)
    simple = ShapleySimple().attribute(paths)
    np.testing.assert_allclose(ordered.conversions, simple.conversions, rtol=1e-12)
    np.testing.assert_allclose(
        ordered.details["by_position_value"].sum(axis=1), simple.value.ravel(), rtol=1e-9, atol=1e-9
    )


@SETTINGS
@given(SMALL)
def test_rate_equals_textbook_shapley_of_the_rate_game(paths: PathSet) -> None:
    credit = ShapleyRate().attribute(paths)
    players = players_of(paths)
    for amount, total, grid_ in (
        (1, paths.total_conversions, credit.conversions),
        (3, paths.total_value, credit.value),
    ):
        phi = textbook_shapley(players, rate_game(paths, amount))
        expected = expected_credit(paths, phi, total)
        np.testing.assert_allclose(grid_, expected, rtol=1e-9, atol=1e-9 * max(1.0, total))


@SETTINGS
@given(SMALL)
def test_markov_equals_textbook_shapley_of_the_chain_game(paths: PathSet) -> None:
    credit = Shapley().attribute(paths)
    conv_game, value_game = chain_games(paths)
    players = players_of(paths)
    for game, total, grid_ in (
        (conv_game, paths.total_conversions, credit.conversions),
        (value_game, paths.total_value, credit.value),
    ):
        expected = expected_credit(paths, textbook_shapley(players, game), total)
        np.testing.assert_allclose(grid_, expected, rtol=1e-9, atol=1e-9 * max(1.0, total))
    assert credit.conversions.min() >= 0.0


@SETTINGS
@given(SMALL)
def test_markov_grand_coalition_is_the_conversion_rate(paths: PathSet) -> None:
    credit = Shapley().attribute(paths)
    p = conversion_probability(build_chain(paths, 1))
    journeys_ = paths.total_conversions + paths.total_nulls
    assert credit.details["conversion_probability"] == pytest.approx(p, rel=1e-9)
    assert p == pytest.approx(paths.total_conversions / journeys_, rel=1e-9)


@SETTINGS
@given(SMALL)
def test_batched_coalition_solves_agree_with_the_chain_solver(paths: PathSet) -> None:
    players, game = chain_game(paths)
    members = coalition_masks(0, 1 << len(players), len(players))
    removals = solve_removals(build_chain(paths, 1), ~members)
    values = game.values(members)
    np.testing.assert_allclose(values[:, 0], removals.conversion, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(values[:, 1], removals.value, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(SMALL)
def test_per_journey_split_sums_to_each_path(paths: PathSet) -> None:
    for model in (Shapley(), ShapleySimple(), ShapleyOrdered(), ShapleyRate()):
        credit = model.attribute(paths)
        assert credit.touch_conversions is not None and credit.touch_value is not None
        per_path = np.bincount(paths.path_index, credit.touch_conversions, paths.n_paths)
        np.testing.assert_allclose(per_path, paths.conversions, rtol=1e-9, atol=1e-12)
        per_path = np.bincount(paths.path_index, credit.touch_value, paths.n_paths)
        np.testing.assert_allclose(per_path, paths.value, rtol=1e-9, atol=1e-9)
        assert credit.conversions.sum() == pytest.approx(paths.total_conversions, rel=1e-9)
        assert credit.value.sum() == pytest.approx(paths.total_value, rel=1e-9, abs=1e-9)


def test_subset_sums_against_enumeration() -> None:
    rng = np.random.default_rng(3)
    f = rng.random((1 << 5, 2))
    expected = np.array([[f[t] for t in range(32) if t & s == t] for s in range(32)], dtype=object)
    expected = np.stack([np.sum(np.stack(list(rows)), axis=0) for rows in expected])
    np.testing.assert_allclose(subset_sums(f), expected, rtol=1e-12)


# ---------------------------------------------------------------------- sampling
def sampling_paths() -> PathSet:
    """Six channels with loops, drop-outs and a channel that never converts."""
    return PathSet.from_lists(
        [list("ab"), list("bca"), list("c"), list("dab"), list("ef"), list("fe"),
         list("adcf"), list("f"), list("bb"), list("eb")],
        conversions=[3, 2, 1, 0, 2, 1, 4, 0, 1, 2],
        nulls=[5, 2, 6, 3, 1, 4, 2, 7, 1, 3],
        value=[30, 20, 5, 0, 40, 10, 60, 0, 8, 25],
    )  # fmt: skip


def test_permutation_sampling_agrees_with_exact_within_standard_errors() -> None:
    paths = sampling_paths()
    exact = Shapley().attribute(paths)
    sampled = Shapley(max_exact_players=0, n_samples=4000, random_state=11).attribute(paths)
    se = sampled.details["standard_error"]
    assert se.max() > 0
    assert np.all(np.abs(sampled.conversions - exact.conversions) <= 4 * se + 1e-12)
    se_value = sampled.details["standard_error_value"]
    assert np.all(np.abs(sampled.value - exact.value) <= 4 * se_value + 1e-9)


def test_permutation_contributions_over_every_ordering_give_the_exact_values() -> None:
    # averaged over all n! orderings, marginal contributions are the Shapley values
    paths = PathSet.from_lists(
        [list("ab"), list("bca"), list("c"), list("dab"), list("ad"), list("eb")],
        conversions=[3, 2, 1, 0, 4, 2],
        nulls=[5, 2, 6, 3, 2, 3],
        value=[30, 20, 5, 0, 60, 25],
    )
    players, game = chain_game(paths)
    orders = np.array(list(itertools.permutations(range(len(players)))))
    mean = game._permutation_contributions(orders).mean(axis=0)
    np.testing.assert_allclose(mean, exact_shapley(game.all_values()), rtol=1e-9)
    by_order = permutation_shapley(players.tolist(), chain_games(paths)[0])
    np.testing.assert_allclose(mean[:, 0], list(by_order.values()), rtol=1e-9)


def test_chain_game_of_no_players_is_zero() -> None:
    game = ChainGame(np.zeros((0, 0)), np.zeros(0), np.zeros((0, 2)))
    assert game.all_values().tolist() == [[0.0, 0.0]]


@SETTINGS
@given(SMALL)
def test_collapsing_repeats_leaves_credit_unchanged(paths: PathSet) -> None:
    # the set-based games see only player sets; the chain game's absorption does not
    # depend on self-transitions
    collapsed = paths.collapse_repeats()
    for model in (Shapley(), ShapleySimple(), ShapleyRate()):
        before, after = model.attribute(paths), model.attribute(collapsed)
        np.testing.assert_allclose(after.conversions, before.conversions, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(after.value, before.value, rtol=1e-9, atol=1e-9)
