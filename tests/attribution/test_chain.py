"""The absorbing chain: counting, windows, and the exact solvers.

The references here are deliberately slow and obvious: a chain counted with a Python
loop over paths into a dictionary keyed by window tuples, solved with
``numpy.linalg.solve`` on a dense matrix, and a Monte Carlo walk.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from attribution import PathSet
from attribution import chain as chain_module
from attribution.chain import (
    SolverError,
    build_chain,
    conversion_probability,
    order_one,
    solve_removals,
)

Window = tuple[str | None, ...]


@pytest.fixture(autouse=True)
def one_blas_thread() -> Iterator[None]:
    # BLAS threads fighting over a shared machine's cores make dense solves 20x slower
    with threadpool_limits(1):
        yield


# ---------------------------------------------------------------------- references
def windows_of(path: list[str], order: int) -> list[Window]:
    """A path's states at ``order``: its length-``order`` windows, or one padded window."""
    if len(path) < order:
        return [(None,) * (order - len(path)) + tuple(path)]
    return [tuple(path[i - order + 1 : i + 1]) for i in range(order - 1, len(path))]


def reference_counts(
    paths: list[list[str]], conv: list[float], nulls: list[float], value: list[float], order: int
) -> tuple[dict[tuple[object, object], float], dict[Window, float]]:
    """Transition counts by a loop over paths; and conversion value by last state."""
    counts: dict[tuple[object, object], float] = defaultdict(float)
    value_at: dict[Window, float] = defaultdict(float)
    for path, c, n, v in zip(paths, conv, nulls, value, strict=True):
        prev: object = "start"
        for state in windows_of(path, order):
            counts[prev, state] += c + n
            prev = state
        counts[prev, "conversion"] += c
        counts[prev, "null"] += n
        value_at[prev] += v  # type: ignore[index]
    return counts, value_at


def reference_solve(
    counts: dict[tuple[object, object], float],
    value_at: dict[Window, float],
    removed: frozenset[str] = frozenset(),
) -> tuple[float, float]:
    """(P(conversion), expected value) by a dense solve; removed labels unreachable."""
    states = sorted({s for pair in counts for s in pair if isinstance(s, tuple)}, key=str)
    index = {s: i for i, s in enumerate(states)}
    n = len(states)
    out = defaultdict(float)
    for (a, _), w in counts.items():
        out[a] += w
    q = np.zeros((n, n))
    b = np.zeros((n, 2))
    start = np.zeros(n)
    gone = [any(x in removed for x in s) for s in states]
    for (a, z), w in counts.items():
        if w == 0 or (isinstance(z, tuple) and gone[index[z]]):
            continue  # transitions into removed states go to null
        p = w / out[a]
        if a == "start" and isinstance(z, tuple):
            start[index[z]] += p
        elif isinstance(a, tuple) and isinstance(z, tuple):
            q[index[a], index[z]] += p
        elif isinstance(a, tuple) and z == "conversion":
            b[index[a], 0] += p
            b[index[a], 1] += value_at[a] / out[a]
    if n == 0:
        return 0.0, 0.0
    x = np.linalg.solve(np.eye(n) - q, b)
    return float(start @ x[:, 0]), float(start @ x[:, 1])


def monte_carlo(
    chain: chain_module.Chain, walks: int, seed: int, removed: np.ndarray | None = None
) -> float:
    """Fraction of random walks of the chain (from its counts) that convert.

    A walk that steps into a removed state stops without converting.
    """
    rng = np.random.default_rng(seed)
    dense = chain.counts.toarray()
    cum = np.cumsum(dense / dense.sum(axis=1, keepdims=True), axis=1)
    n = chain.n_states
    gone = np.zeros(n + 3, dtype=bool)
    if removed is not None:
        gone[1 : n + 1] = removed
    node = np.zeros(walks, dtype=np.int64)
    alive = np.ones(walks, dtype=bool)
    converted = np.zeros(walks, dtype=bool)
    while alive.any():
        u = rng.random(int(alive.sum()))
        step = (u[:, None] > cum[node[alive]]).sum(axis=1)
        node[alive] = step
        converted[alive] = step == n + 1
        alive[alive] = (step <= n) & ~gone[step]
    return float(converted.mean())


# ---------------------------------------------------------------------- strategies
@st.composite
def small_sets(draw: st.DrawFn, stages: bool = False) -> tuple[list[list[str]], PathSet]:
    """Paths over up to four channels (labels ``channel|stage`` when staged)."""
    channels = draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=4, unique=True))
    stage_pool = ["s", "t"] if stages else [None]
    n = draw(st.integers(1, 8))
    touches = st.tuples(st.sampled_from(channels), st.sampled_from(stage_pool))
    paths = [draw(st.lists(touches, min_size=1, max_size=6)) for _ in range(n)]
    conv = [float(draw(st.integers(0, 4))) for _ in range(n)]
    nulls = [float(draw(st.integers(0, 4))) for _ in range(n)]
    value = [float(draw(st.integers(0, 900))) if c > 0 else 0.0 for c in conv]
    ps = PathSet.from_lists(
        [[c for c, _ in p] for p in paths],
        conv,
        nulls,
        value,
        stages=[[s for _, s in p] for p in paths] if stages else None,
    )
    labels = [[f"{c}|{s}" if stages else c for c, s in p] for p in paths]
    return labels, ps


def base_label(paths: PathSet, state: int) -> str:
    c, s = divmod(state, paths.n_stage_columns)
    name = paths.channel_names[c]
    return name if paths.stage_names is None else f"{name}|{paths.stage_names[s]}"


# ---------------------------------------------------------------------- hand examples
def test_order_one_counts_and_probability_by_hand() -> None:
    # a > b converts once; a fails once; b converts once.
    # start -> a: 2, start -> b: 1; a -> b: 1, a -> null: 1; b -> conversion: 2.
    # P(conv) = 2/3 * 1/2 * 1 + 1/3 * 1 = 2/3 = conversions / journeys.
    # Without a: only start -> b converts: 1/3. Without b: nothing converts: 0.
    paths = PathSet.from_lists([["a", "b"], ["a"], ["b"]], [1, 0, 1], [0, 1, 0])
    chain = build_chain(paths, 1)
    a, b = 1, 2  # states are numbered in window order: a before b
    assert chain.windows.tolist() == [[0], [1]]
    expected = np.zeros((3, 5))
    expected[0, a], expected[0, b] = 2, 1
    expected[a, b], expected[a, 4] = 1, 1
    expected[b, 3] = 2
    np.testing.assert_array_equal(chain.counts.toarray(), expected)
    assert conversion_probability(chain) == pytest.approx(float(F(2, 3)), rel=1e-15)
    assert conversion_probability(chain, np.array([True, False])) == pytest.approx(1 / 3)
    assert conversion_probability(chain, np.array([False, True])) == 0.0


def test_higher_order_windows_by_hand() -> None:
    # a > b > a > c and the single touch b, at orders 2, 3 and 4
    paths = PathSet.from_lists([["a", "b", "a", "c"], ["b"]], [1, 0], [0, 1], [5.0, 0.0])
    a, b, c = 0, 1, 2
    expected = {
        2: [[-1, b], [a, b], [a, c], [b, a]],
        3: [[-1, -1, b], [a, b, a], [b, a, c]],
        4: [[-1, -1, -1, b], [a, b, a, c]],
    }
    for order, windows in expected.items():
        chain = build_chain(paths, order)
        assert chain.windows.tolist() == windows, order
        assert conversion_probability(chain) == pytest.approx(0.5)
    # order 2 walks: start -> (a,b) -> (b,a) -> (a,c) -> conversion; start -> (-,b) -> null
    chain = build_chain(paths, 2)
    dense = chain.counts.toarray()
    n = chain.n_states
    assert dense[0, 2] == 1 and dense[0, 1] == 1
    assert dense[2, 4] == 1 and dense[4, 3] == 1 and dense[3, n + 1] == 1
    assert dense[1, n + 2] == 1
    assert dense.sum() == 6
    np.testing.assert_array_equal(chain.conversion_value, [0, 0, 0, 5.0, 0])
    # removing a drops every window containing it; b alone never converts
    assert chain.contains(np.array([True, False, False])).tolist() == [False, True, True, True]
    assert conversion_probability(chain, chain.contains(np.array([True, False, False]))) == 0.0


def test_contains_many_sets_at_once() -> None:
    paths = PathSet.from_lists([["a", "b", "c"], ["c"]], [1, 1])
    chain = build_chain(paths, 2)
    sets = np.eye(3, dtype=bool)
    together = chain.contains(sets)
    assert together.shape == (3, chain.n_states)
    for i in range(3):
        np.testing.assert_array_equal(together[i], chain.contains(sets[i]))


def test_empty_path_set() -> None:
    chain = build_chain(PathSet.from_lists([], []), 2)
    assert chain.n_states == 0
    assert conversion_probability(chain) == 0.0


def test_order_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="order"):
        build_chain(PathSet.from_lists([["a"]], [1]), 0)


# ---------------------------------------------------------------------- against references
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=small_sets(stages=False) | small_sets(stages=True), order=st.integers(1, 4))
def test_matches_dense_reference(data: tuple[list[list[str]], PathSet], order: int) -> None:
    labels, paths = data
    conv, nulls, value = (list(x) for x in (paths.conversions, paths.nulls, paths.value))
    counts, value_at = reference_counts(labels, conv, nulls, value, order)
    chain = build_chain(paths, order)
    # every removal set of one base state, and the empty set
    sets = np.vstack([np.zeros(paths.n_states, bool), np.eye(paths.n_states, dtype=bool)])
    solved = solve_removals(chain, chain.contains(sets))
    iterative = solve_removals(chain, chain.contains(sets), dense_limit=0)
    for i, members in enumerate(sets):
        removed = frozenset(base_label(paths, s) for s in np.flatnonzero(members))
        p, v = reference_solve(counts, value_at, removed)
        assert solved.conversion[i] == pytest.approx(p, rel=1e-10, abs=1e-12)
        assert solved.value[i] == pytest.approx(v, rel=1e-10, abs=1e-9)
        assert iterative.conversion[i] == pytest.approx(p, rel=1e-10, abs=1e-12)
        assert iterative.value[i] == pytest.approx(v, rel=1e-10, abs=1e-9)
    assert solved.solver == "dense" and iterative.solver == "bicgstab"


@settings(max_examples=60, deadline=None)
@given(data=small_sets(stages=False) | small_sets(stages=True), order=st.integers(2, 4))
def test_order_one_counts_follow_from_any_order(
    data: tuple[list[list[str]], PathSet], order: int
) -> None:
    _, paths = data
    derived, counted = order_one(build_chain(paths, order)), build_chain(paths, 1)
    np.testing.assert_array_equal(derived.windows, counted.windows)
    np.testing.assert_allclose(derived.counts.toarray(), counted.counts.toarray(), rtol=1e-12)
    np.testing.assert_allclose(derived.conversion_value, counted.conversion_value, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(data=small_sets(stages=False) | small_sets(stages=True), order=st.integers(1, 4))
def test_conversion_probability_is_the_conversion_rate(
    data: tuple[list[list[str]], PathSet], order: int
) -> None:
    _, paths = data
    journeys = paths.total_conversions + paths.total_nulls
    p = conversion_probability(build_chain(paths, order))
    rate = paths.total_conversions / journeys if journeys else 0.0
    assert p == pytest.approx(rate, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_monte_carlo_walk_agrees(order: int) -> None:
    # 200,000 walks: the standard error of a rate near 0.4 is 0.0011; allow 4.5 of them
    paths = PathSet.from_lists(
        [["a", "b", "c"], ["a", "a", "b"], ["b"], ["d", "a"], ["c"], ["c", "b", "a", "d"]],
        [1, 1, 0, 0, 1, 2],
        [1, 0, 2, 1, 0, 1],
    )
    chain = build_chain(paths, order)
    tol = 4.5 * 0.0011
    assert monte_carlo(chain, 200_000, seed=order) == pytest.approx(
        conversion_probability(chain), abs=tol
    )
    removed = chain.contains(np.array([True, False, False, False]))
    assert monte_carlo(chain, 200_000, seed=10 + order, removed=removed) == pytest.approx(
        conversion_probability(chain, removed), abs=tol
    )


def _random_paths(n_paths: int, n_channels: int, seed: int) -> PathSet:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 8, n_paths)
    tokens = rng.integers(0, n_channels, int(lengths.sum()))
    conv = rng.integers(0, 3, n_paths).astype(float)
    return PathSet.from_arrays(
        [f"c{i}" for i in range(n_channels)],
        tokens,
        np.concatenate([[0], np.cumsum(lengths)]),
        conv,
        rng.integers(0, 5, n_paths),
        conv * rng.uniform(10, 100, n_paths),
    )


def test_iterative_solver_matches_dense_on_a_big_order_three_chain() -> None:
    paths = _random_paths(600, 9, seed=3)
    chain = build_chain(paths, 3)
    assert chain.n_states > chain_module.DENSE_LIMIT
    sets = np.vstack([np.zeros(9, bool), np.eye(9, dtype=bool)])
    removed = chain.contains(sets)
    iterative = solve_removals(chain, removed)
    dense = solve_removals(chain, removed, dense_limit=10**6)
    assert iterative.solver == "bicgstab" and dense.solver == "dense"
    np.testing.assert_allclose(iterative.conversion, dense.conversion, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(iterative.value, dense.value, rtol=1e-11, atol=1e-12)


def test_dense_batches_large_removals_by_solving_the_kept_states() -> None:
    # most states removed takes the direct branch; few removed takes the update branch
    paths = _random_paths(200, 6, seed=5)
    chain = build_chain(paths, 2)
    rng = np.random.default_rng(0)
    removed = rng.random((40, chain.n_states)) < rng.random((40, 1))
    dense = solve_removals(chain, removed)
    for i in range(len(removed)):
        one = solve_removals(chain, removed[i], dense_limit=0)
        assert dense.conversion[i] == pytest.approx(one.conversion[0], rel=1e-10, abs=1e-14)
        assert dense.value[i] == pytest.approx(one.value[0], rel=1e-10, abs=1e-12)


def test_iterative_solver_raises_when_the_residual_is_not_reached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chain_module, "RESIDUAL_TOL", 1e-300)
    chain = build_chain(_random_paths(50, 4, seed=1), 2)
    with pytest.raises(SolverError, match="residual"):
        solve_removals(chain, np.zeros((1, chain.n_states), bool), dense_limit=0)


def test_row_order_does_not_change_the_chain() -> None:
    paths = _random_paths(80, 5, seed=2)
    lists = paths.paths_as_lists()
    order = np.random.default_rng(1).permutation(paths.n_paths)
    shuffled = PathSet.from_lists(
        [lists[i] for i in order], paths.conversions[order], paths.nulls[order]
    )

    def named(ps: PathSet, k: int) -> list[tuple[tuple[str, ...], tuple[float, ...]]]:
        """Each state's window by name, with its row of counts sorted."""
        ch = build_chain(ps, k)
        dense = ch.counts.toarray()
        return sorted(
            (tuple(ps.channel_names[x] if x >= 0 else "" for x in w), tuple(sorted(dense[i + 1])))
            for i, w in enumerate(ch.windows)
        )

    for k in (1, 2, 3):
        assert named(paths, k) == named(shuffled, k)
