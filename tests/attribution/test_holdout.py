"""The holdout validation against hand-worked folds and brute-force scores."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from conftest import path_sets
from hypothesis import given, settings

from attribution import MODEL_NAMES, InvalidParameter, PathSet, get_model
from attribution._order_choice import fold_counts
from attribution._scores import auc
from attribution.data_driven import DataDriven
from attribution.holdout import NOT_PREDICTING, validate


def even() -> PathSet:
    """Every path's counts are even: two folds get exactly half of each, whatever the
    seeded offset, so the held-out numbers can be worked by hand."""
    return PathSet.from_lists(
        [["a"], ["b", "a"], ["b"]], conversions=[2, 2, 0], nulls=[2, 2, 4], value=[20, 20, 0]
    )


def test_markov_scores_worked_by_hand() -> None:
    """Training half: ending in a 2 conversions of 4, in b 0 of 2; overall 2 of 6, so
    the prior is 2.5 / 7. Order 1 predicts (2 + 2.5/7) / 5 after a and (0 + 2.5/7) / 3
    after b; order 2 tells (a) from (b, a): (1 + 2.5/7) / 3 each."""
    result = validate(even(), n_folds=2, random_state=4)
    prior = 2.5 / 7
    pa, pb = (2 + prior) / 5, prior / 3
    one = result.scores[("markov", 1)]
    loss = -(2 * math.log(pa) + 2 * math.log(1 - pa) + 2 * math.log(1 - pb)) / 6
    assert one.pooled["log_loss"] == pytest.approx(loss, rel=1e-12)
    brier = (2 * (1 - pa) ** 2 + 2 * pa**2 + 2 * pb**2) / 6
    assert one.pooled["brier"] == pytest.approx(brier, rel=1e-12)
    # 2 converting journeys at pa; beat the 2 non-converting at pb, tie the 2 at pa
    assert one.pooled["auc"] == pytest.approx((2 * (2 + 0.5 * 2)) / (2 * 4), rel=1e-12)
    # both folds alike: no spread, a zero-width interval
    assert one.low["log_loss"] == pytest.approx(one.high["log_loss"], abs=1e-12)
    pa2 = (1 + prior) / 3
    two = result.scores[("markov", 2)]
    loss2 = -(2 * math.log(pa2) + 2 * math.log(1 - pa2) + 2 * math.log(1 - pb)) / 6
    assert two.pooled["log_loss"] == pytest.approx(loss2, rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(paths=path_sets(max_paths=8, max_count=6))
def test_folds_split_journeys(paths: PathSet) -> None:
    """Every journey of a path lands in exactly one fold, in whole journeys."""
    conv_f, null_f = fold_counts(paths, 3, 11)
    np.testing.assert_allclose(conv_f.sum(axis=1), paths.conversions, atol=1e-12)
    np.testing.assert_allclose(null_f.sum(axis=1), paths.nulls, atol=1e-12)
    np.testing.assert_allclose(conv_f, np.round(conv_f), atol=1e-12)
    np.testing.assert_allclose(null_f, np.round(null_f), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(paths=path_sets(max_paths=8, max_count=4, min_conversions=1))
def test_auc_matches_every_pair_of_journeys(paths: PathSet) -> None:
    p = np.round(np.linspace(0.1, 0.9, paths.n_paths) ** 2, 1)  # ties on purpose
    pos = [p[i] for i in range(paths.n_paths) for _ in range(int(paths.conversions[i]))]
    neg = [p[i] for i in range(paths.n_paths) for _ in range(int(paths.nulls[i]))]
    if not neg:
        assert math.isnan(auc(p, paths.conversions, paths.nulls))
        return
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    assert auc(p, paths.conversions, paths.nulls) == pytest.approx(
        wins / (len(pos) * len(neg)), rel=1e-12
    )


def test_markov_auto_uses_the_same_scorer() -> None:
    paths = PathSet.from_lists(
        [["a", "b"], ["b", "a"], ["a"], ["c", "b"], ["c"], ["b"], ["a", "c", "b"]],
        conversions=[9, 1, 4, 7, 0, 2, 5],
        nulls=[3, 11, 8, 6, 14, 9, 4],
    )
    result = validate(paths, n_folds=4, random_state=2)
    auto = get_model("markov", order="auto", n_folds=4, random_state=2).attribute(paths)
    for order, score in auto.details["order_scores"].items():
        pooled = result.scores[("markov", order)].pooled["log_loss"]
        assert score == pytest.approx(-pooled, rel=1e-12)
    best = min((1, 2, 3, 4), key=lambda k: result.scores[("markov", k)].pooled["log_loss"])
    assert auto.details["order"] == best


def test_data_driven_scores_are_its_held_out_scores() -> None:
    paths = PathSet.from_lists(
        [["a", "b"], ["b"], ["a"], ["c", "a"], ["c"], ["b", "c"]],
        conversions=[30, 10, 20, 10, 1, 6],
        nulls=[20, 40, 50, 30, 60, 25],
    )
    model = DataDriven(alpha=2.0, n_folds=3, random_state=5)
    result = validate(paths, n_folds=3, random_state=5, data_driven=model)
    held = model.attribute(paths).details["held_out"]["scores"]
    for metric, value in result.scores[("data_driven", None)].pooled.items():
        assert value == pytest.approx(held[metric], rel=1e-7), metric


def test_every_model_is_scored_or_said_not_to_predict() -> None:
    result = validate(even(), n_folds=2)
    scored = {model for model, _ in result.scores}
    assert scored | set(result.not_scored) == set(MODEL_NAMES)
    assert not scored & set(NOT_PREDICTING)
    rows = result.rows()
    assert len(rows) == 3 * 5
    assert {r["rank"] for r in rows if r["metric"] == "log_loss"} == {1, 2, 3, 4, 5}


def test_bad_folds_name_the_parameter() -> None:
    with pytest.raises(InvalidParameter, match="n_folds=1"):
        validate(even(), n_folds=1)
    with pytest.raises(InvalidParameter, match="orders"):
        validate(even(), orders=(5,))
