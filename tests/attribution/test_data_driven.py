"""The data-driven model against slow, obvious references.

The reference takes each converting path, builds the path with every touch of the
players outside a coalition removed, runs it through the same feature builder and
fitted weights as a one-path set, and averages marginal contributions over every
ordering of the players (the textbook Shapley value). The fit is checked against
scipy's L-BFGS on the same objective, written out here.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from conftest import path_sets
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from attribution import PathSet, get_model
from attribution._logistic import INTERCEPT_SHARE, design, fit, predict
from attribution.data_driven import DataDriven

SMALL = st.one_of(
    path_sets(max_channels=5, stages=False, max_paths=8, max_length=6),
    path_sets(max_channels=3, stages=True, max_stages=2, max_paths=6, max_length=5),
)
OPTIONS = st.fixed_dictionaries(
    {
        "repeats": st.booleans(),
        "position": st.booleans(),
        "pairwise": st.booleans(),
        "alpha": st.sampled_from([0.1, 1.0, 10.0]),
    }
)
SETTINGS = settings(max_examples=40, deadline=None)


def restricted(paths: PathSet, row: int, keep: set[int]) -> PathSet:
    """Path ``row`` with only the touches whose state is in ``keep``, as a one-path set
    coded with the full set's dictionaries (so its features line up)."""
    a, b = int(paths.offsets[row]), int(paths.offsets[row + 1])
    mask = np.isin(paths.states[a:b], sorted(keep))
    tokens = paths.tokens[a:b][mask]
    stages = None if paths.stage_tokens is None else paths.stage_tokens[a:b][mask]
    return PathSet(
        channel_names=paths.channel_names,
        tokens=tokens,
        offsets=np.array([0, len(tokens)]),
        conversions=np.array([1.0]),
        nulls=np.zeros(1),
        value=np.zeros(1),
        stage_names=paths.stage_names,
        stage_tokens=stages,
    )


def reference_credit(paths: PathSet, model: DataDriven) -> dict[tuple[int, int], float]:
    """Conversions credited to each (path, state) by Shapley over every ordering."""
    w = fit(design(paths, model.features), paths.conversions, paths.nulls, model.alpha)

    def worth(row: int, coalition: set[int]) -> float:
        if not coalition:
            return 0.0
        return float(predict(design(restricted(paths, row, coalition), model.features), w)[0])

    out: dict[tuple[int, int], float] = {}
    for row in np.flatnonzero(paths.conversions > 0).tolist():
        a, b = int(paths.offsets[row]), int(paths.offsets[row + 1])
        players = sorted(set(paths.states[a:b].tolist()))
        phi = dict.fromkeys(players, 0.0)
        for order in itertools.permutations(players):
            before: set[int] = set()
            for j in order:
                phi[j] += worth(row, before | {j}) - worth(row, before)
                before.add(j)
        whole = worth(row, set(players))
        for j in players:
            share = phi[j] / math.factorial(len(players)) / whole
            out[(row, j)] = share * float(paths.conversions[row])
    return out


def model_credit(paths: PathSet, model: DataDriven) -> dict[tuple[int, int], float]:
    credit = model.attribute_replicate(paths)
    assert credit.touch_conversions is not None
    out: dict[tuple[int, int], float] = {}
    for t, amount in enumerate(credit.touch_conversions.tolist()):
        row = int(paths.path_index[t])
        if paths.conversions[row] > 0:
            key = (row, int(paths.states[t]))
            out[key] = out.get(key, 0.0) + amount
    return out


@SETTINGS
@given(paths=SMALL, options=OPTIONS)
def test_matches_brute_force_shapley_over_the_fitted_function(
    paths: PathSet, options: dict[str, object]
) -> None:
    model = DataDriven(**options)  # type: ignore[arg-type]
    expected = reference_credit(paths, model)
    got = model_credit(paths, model)
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@SETTINGS
@given(paths=SMALL, options=OPTIONS)
def test_each_converting_path_is_shared_out_exactly(
    paths: PathSet, options: dict[str, object]
) -> None:
    credit = DataDriven(**options).attribute_replicate(paths)  # type: ignore[arg-type]
    assert credit.touch_conversions is not None and credit.touch_value is not None
    per_path = np.bincount(paths.path_index, credit.touch_conversions, minlength=paths.n_paths)
    np.testing.assert_allclose(per_path, paths.conversions, rtol=1e-12, atol=1e-12)
    per_path = np.bincount(paths.path_index, credit.touch_value, minlength=paths.n_paths)
    np.testing.assert_allclose(per_path, paths.value, rtol=1e-12, atol=1e-9)


def test_symmetric_channels_get_equal_credit() -> None:
    """Data unchanged by swapping a and b, and a game blind to order: a and b are
    symmetric players of every path, so each path's share is equal between them."""
    paths = PathSet.from_lists(
        [["a", "b"], ["b", "a"], ["a"], ["b"], ["a", "c"], ["b", "c"], ["c"]],
        conversions=[4, 4, 1, 1, 2, 2, 1],
        nulls=[3, 3, 6, 6, 5, 5, 9],
        value=[40, 40, 10, 10, 20, 20, 10],
    )
    credit = DataDriven(position=False).attribute(paths)
    conv, val = credit.by_channel()
    a, b = paths.channel_names.index("a"), paths.channel_names.index("b")
    assert conv[a] == pytest.approx(conv[b], rel=1e-12)
    assert val[a] == pytest.approx(val[b], rel=1e-12)
    assert credit.touch_conversions is not None
    # the path a > b: its 4 conversions split 2 and 2
    np.testing.assert_allclose(credit.touch_conversions[:2], [2.0, 2.0], rtol=1e-12)


def test_a_channel_on_no_converting_path_gets_exactly_zero() -> None:
    """What holds under any penalty: its credit is exactly 0 (only converting paths
    are shared, among their own players); its fitted presence weight is negative."""
    paths = PathSet.from_lists(
        [["a"], ["a", "dud"], ["dud"], ["b", "a"], ["dud", "b"]],
        conversions=[5, 0, 0, 3, 0],
        nulls=[5, 7, 9, 4, 6],
        value=[50, 0, 0, 30, 0],
    )
    dud = paths.channel_names.index("dud")
    for alpha in (1e-3, 1.0, 1e3):
        model = DataDriven(alpha=alpha)
        credit = model.attribute(paths)
        conv, val = credit.by_channel()
        assert conv[dud] == 0.0 and val[dud] == 0.0
        assert conv.sum() == pytest.approx(8.0, rel=1e-12)
        assert model.fit(paths).presence[dud] < 0


def test_fit_matches_an_independent_optimiser() -> None:
    """Newton's optimum equals L-BFGS's on the same penalised log-loss (written out)."""
    paths = PathSet.from_lists(
        [["a", "b"], ["b"], ["a", "a", "c"], ["c", "b"], ["c"], ["b", "a", "c"]],
        conversions=[4, 1, 3, 2, 0, 5],
        nulls=[6, 9, 5, 4, 8, 2],
    )
    model = DataDriven(alpha=0.5, pairwise=True)
    x = design(paths, model.features).toarray()
    c, n = paths.conversions, paths.nulls
    penalty = np.full(x.shape[1] + 1, 0.5)
    penalty[0] *= INTERCEPT_SHARE

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = w[0] + x @ w[1:]
        p = 1.0 / (1.0 + np.exp(-z))
        loss = float(np.sum((c + n) * np.logaddexp(0.0, z) - c * z) + 0.5 * penalty @ w**2)
        r = (c + n) * p - c
        return loss, np.concatenate([[r.sum()], x.T @ r]) + penalty * w

    found = optimize.minimize(
        objective, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B", tol=1e-14
    )
    w = fit(design(paths, model.features), c, n, 0.5)
    np.testing.assert_allclose(w, found.x, atol=1e-5)


def test_paths_with_one_signature_are_solved_once() -> None:
    """Without order and repeat features the game is the player set: four paths, two games."""
    paths = PathSet.from_lists(
        [["a", "b"], ["b", "a"], ["a", "b", "a"], ["c"]],
        conversions=[1, 2, 3, 1],
        nulls=[1, 1, 1, 1],
    )
    credit = DataDriven(position=False, repeats=False).attribute(paths)
    assert credit.details["games"] == 2
    assert DataDriven().attribute(paths).details["games"] == 4


def test_sampled_paths_agree_with_exact_within_their_error() -> None:
    paths = PathSet.from_lists(
        [["a", "b", "c", "d"], ["a", "c"], ["b", "d", "a"], ["d"], ["c", "b"]],
        conversions=[5, 2, 3, 1, 2],
        nulls=[3, 6, 4, 8, 5],
        value=[50, 20, 30, 10, 20],
    )
    exact = get_model("data_driven").attribute(paths)
    sampled = get_model("data_driven", max_exact_players=2, n_samples=4000).attribute(paths)
    assert sampled.details["sampled_paths"] == 2
    assert sampled.conversions.sum() == pytest.approx(13.0, rel=1e-12)
    se = sampled.details["standard_error"]
    assert np.all(se > 0)
    assert np.all(np.abs(sampled.conversions - exact.conversions) <= 5 * se + 1e-12)
    assert sampled.warnings and "max_exact_players=2" in sampled.warnings[-1]


def test_held_out_scores_are_reported() -> None:
    paths = PathSet.from_lists(
        [["a", "b"], ["b"], ["a"], ["c", "a"], ["c"]],
        conversions=[30, 10, 20, 10, 1],
        nulls=[20, 40, 50, 30, 60],
    )
    held = DataDriven(n_folds=4).attribute(paths).details["held_out"]
    assert len(held["folds"]) == 4
    for metric in ("log_loss", "brier", "auc"):
        assert held["low"][metric] <= held["scores"][metric] <= held["high"][metric]
    # better than the constant prediction's log-loss, the overall rate's entropy
    rate = 71 / 271
    constant = -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate))
    assert held["scores"]["log_loss"] < constant


def test_no_conversions_no_credit() -> None:
    for paths in (
        PathSet.from_lists([], conversions=[]),
        PathSet.from_lists([["a"], ["b", "a"]], conversions=[0, 0], nulls=[3, 4]),
    ):
        credit = DataDriven().attribute(paths)
        assert not credit.conversions.any() and credit.details["games"] == 0


def test_a_vanishing_penalty_on_separable_data_still_shares_every_path() -> None:
    """With almost no penalty a channel on converting paths only has no finite weight
    and the Newton system is singular; the fit still ends, and each converting path
    is still shared out exactly."""
    paths = PathSet.from_lists(
        [["a"], ["a", "b"], ["b"], ["c"]],
        conversions=[3.0, 2.0, 0.0, 0.0],
        nulls=[0.0, 1.0, 4.0, 2.0],
        value=[30.0, 20.0, 0.0, 0.0],
    )
    credit = DataDriven(alpha=5e-324, pairwise=True).attribute(paths)
    keys, conv, value = credit.table("channel")
    conversions = {key[0]: float(c) for key, c in zip(keys, conv, strict=True)}
    assert sum(conversions.values()) == pytest.approx(5.0)
    assert float(value.sum()) == pytest.approx(50.0)
    assert conversions.get("c", 0.0) == 0.0
