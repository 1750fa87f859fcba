"""Sequence effects against an independent dense solve of each cut chain.

The reference builds the order-k chain from the paths in plain Python (a dict of
window -> next window counts), cuts every step "A then B" by sending its probability
to null, and solves the absorbing chain with ``numpy.linalg.solve``: nothing is
shared with the engine but the definition.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import pytest

from attribution import InvalidParameter, PathSet
from attribution import chain as chain_module
from attribution.sequences import MAX_TOP, SEQUENCE_COLUMNS, sequence_effects
from attribution.synthetic import generate

RTOL = 1e-9

Window = tuple[str, ...]


def reference(
    paths: list[list[str]],
    conversions: list[float],
    nulls: list[float],
    values: list[float],
    order: int,
    cut: tuple[str, str] | None,
) -> tuple[float, float]:
    """(P(conversion), expected value per journey) of the order-k chain, ``cut`` cut."""
    moves: dict[Window, dict[Window, float]] = defaultdict(lambda: defaultdict(float))
    ends: dict[Window, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])  # conv, null, value
    start = ("(start)",)
    for path, conv, null, value in zip(paths, conversions, nulls, values, strict=True):
        weight = conv + null
        windows = [tuple(path[max(0, i - order + 1) : i + 1]) for i in range(len(path))]
        windows = windows[min(len(path), order) - 1 :]
        moves[start][windows[0]] += weight
        for a, b in itertools.pairwise(windows):
            moves[a][b] += weight
        ends[windows[-1]][0] += conv
        ends[windows[-1]][1] += null
        ends[windows[-1]][2] += value
    nodes = sorted(set(moves) | set(ends))
    index = {w: i for i, w in enumerate(nodes)}
    n = len(nodes)
    q = np.zeros((n, n))
    b = np.zeros((n, 2))
    for src in nodes:
        targets = moves.get(src, {})
        out = sum(targets.values()) + ends[src][0] + ends[src][1]
        for dst, w in targets.items():
            if cut is None or not makes(src, dst, cut):
                q[index[src], index[dst]] = w / out
        b[index[src]] = ends[src][0] / out, ends[src][2] / out
    h = np.linalg.solve(np.eye(n) - q, b)
    p, v = h[index[start]]
    return float(p), float(v)


def makes(src: Window, dst: Window, step: tuple[str, str]) -> bool:
    """Whether the move src -> dst makes the step: its new touch after the old last
    one, or, from the start, any two neighbours inside the first window."""
    if src == ("(start)",):
        return any(pair == step for pair in itertools.pairwise(dst))
    return (src[-1], dst[-1]) == step


def small_world(seed: int, n_paths: int = 60) -> tuple[list[list[str]], list[float], ...]:
    rng = np.random.default_rng(seed)
    channels = ["a", "b", "c", "d"]
    paths = [
        [channels[i] for i in rng.integers(0, 4, size=rng.integers(1, 6))] for _ in range(n_paths)
    ]
    conv = rng.integers(0, 4, size=n_paths).astype(float)
    null = rng.integers(0, 4, size=n_paths).astype(float)
    null[conv + null == 0] = 1.0
    value = conv * rng.uniform(5, 50, size=n_paths)
    return paths, conv.tolist(), null.tolist(), value.tolist()


def pathset(paths, conv, null, value) -> PathSet:
    return PathSet.from_lists(paths, conversions=conv, nulls=null, value=value)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dense_limit", [chain_module.DENSE_LIMIT, 0])
def test_every_cut_matches_the_dense_reference(
    order: int, seed: int, dense_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dense_limit 0 sends the same chains through the iterative solver
    monkeypatch.setattr("attribution.sequences.DENSE_LIMIT", dense_limit)
    data = small_world(seed)
    fx = sequence_effects(pathset(*data), order=order, top=MAX_TOP)
    assert fx.solver == ("dense" if dense_limit else "bicgstab")
    p0, v0 = reference(*data, order, None)
    assert fx.p_conversion == pytest.approx(p0, rel=RTOL)
    assert fx.expected_value == pytest.approx(v0, rel=RTOL)
    assert len(fx.source) == fx.n_transitions  # every transition fits under MAX_TOP
    for row in fx.to_rows():
        p, v = reference(*data, order, (row["source"], row["target"]))
        assert row["p_conversion_cut"] == pytest.approx(p, rel=RTOL, abs=1e-14)
        assert row["removal_effect"] == pytest.approx(1 - p / p0, rel=RTOL, abs=1e-12)
        assert row["value_removal_effect"] == pytest.approx(1 - v / v0, rel=RTOL, abs=1e-12)


def test_steps_count_every_step_of_every_journey() -> None:
    data = small_world(3)
    paths, conv, null, _ = data
    want: dict[tuple[str, str], float] = defaultdict(float)
    for path, c, n in zip(paths, conv, null, strict=True):
        for pair in itertools.pairwise(path):
            want[pair] += c + n
    for order in (1, 2, 3):
        rows = sequence_effects(pathset(*data), order=order, top=MAX_TOP).to_rows()
        assert {(r["source"], r["target"]): r["steps"] for r in rows} == pytest.approx(want)
        assert [r["steps"] for r in rows] == sorted((r["steps"] for r in rows), reverse=True)


@pytest.mark.parametrize("dense_limit", [chain_module.DENSE_LIMIT, 0])
def test_order_matters_where_only_a_then_b_converts(
    dense_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("attribution.sequences.DENSE_LIMIT", dense_limit)
    # a > b converts, b > a never does: cutting "a then b" loses every conversion,
    # cutting "b then a" loses none
    paths = PathSet.from_lists(
        [["a", "b"], ["b", "a"], ["a"], ["b"]],
        conversions=[10, 0, 0, 0],
        nulls=[0, 10, 10, 10],
        value=[100, 0, 0, 0],
    )
    rows = {r["sequence"]: r for r in sequence_effects(paths, order=2).to_rows()}
    assert rows["a > b"]["removal_effect"] == pytest.approx(1.0)
    assert rows["a > b"]["p_conversion_cut"] == 0.0
    assert rows["b > a"]["removal_effect"] == 0.0
    assert rows["a > b"]["p_conversion"] == pytest.approx(10 / 40)


@pytest.mark.parametrize("dense_limit", [chain_module.DENSE_LIMIT, 0])
def test_a_cut_every_walk_makes_leaves_nothing(
    dense_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every journey opens with a then b: the cut takes all the start's probability
    monkeypatch.setattr("attribution.sequences.DENSE_LIMIT", dense_limit)
    paths = PathSet.from_lists(
        [["a", "b"], ["a", "b", "c"]], conversions=[1, 1], nulls=[1, 0], value=[5, 7]
    )
    rows = {r["sequence"]: r for r in sequence_effects(paths, order=2).to_rows()}
    assert rows["a > b"]["p_conversion_cut"] == 0.0
    assert rows["a > b"]["removal_effect"] == rows["a > b"]["value_removal_effect"] == 1.0
    assert rows["b > c"]["p_conversion_cut"] == pytest.approx(1 / 3)


def test_top_keeps_the_busiest_transitions_and_the_columns() -> None:
    data = small_world(4, n_paths=200)
    full = sequence_effects(pathset(*data), order=2, top=MAX_TOP).to_rows()
    three = sequence_effects(pathset(*data), order=2, top=3).to_rows()
    assert three == full[:3]
    assert tuple(three[0]) == SEQUENCE_COLUMNS


def test_stages_cut_every_channel_stage_pair_of_the_channels() -> None:
    paths = PathSet.from_lists(
        [["a", "b"], ["a", "b"], ["b"]],
        stages=[["s1", "s2"], ["s2", "s2"], ["s1"]],
        conversions=[1, 1, 0],
        nulls=[0, 0, 1],
    )
    rows = {r["sequence"]: r for r in sequence_effects(paths, order=2).to_rows()}
    assert rows["a > b"]["steps"] == 2.0
    assert rows["a > b"]["removal_effect"] == pytest.approx(1.0)


def test_larger_chain_matches_between_solvers(monkeypatch: pytest.MonkeyPatch) -> None:
    paths = generate(4000, n_channels=8, seed=5).to_pathset(stages=False)
    dense = sequence_effects(paths, order=2, top=25)
    monkeypatch.setattr("attribution.sequences.DENSE_LIMIT", 0)
    iterative = sequence_effects(paths, order=2, top=25)
    assert dense.solver == "dense" and iterative.solver == "bicgstab"
    np.testing.assert_allclose(iterative.p_cut, dense.p_cut, rtol=1e-10)
    np.testing.assert_allclose(iterative.value_cut, dense.value_cut, rtol=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"order": 0}, "order"),
        ({"order": 5}, "order"),
        ({"order": True}, "order"),
        ({"top": 0}, "top"),
        ({"top": MAX_TOP + 1}, "top"),
    ],
)
def test_parameters_out_of_range_are_named(kwargs: dict[str, int], name: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        sequence_effects(pathset(*small_world(0)), **kwargs)
    assert err.value.name == name


def test_no_conversions_gives_zero_effects() -> None:
    paths = PathSet.from_lists([["a", "b"], ["b", "a"]], conversions=[0, 0], nulls=[1, 1])
    fx = sequence_effects(paths, order=2)
    assert fx.p_conversion == 0.0
    assert not fx.removal_effects.any()
