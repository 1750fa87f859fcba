"""The truth harness (``bench/truth.py``'s scoring) on every world, at a small size.

Only what holds for certain is asserted: the truth's totals, the free-riding closer's
true credit of exactly zero against the credit last touch gives it, and the share
error's arithmetic. How far each model is from the truth is computed for every model
and world and printed (``pytest -s``), never assumed.
"""

from __future__ import annotations

import numpy as np
import pytest

from attribution import MODEL_NAMES
from attribution.truth import MODELS, TOUCH_SPACING_SECONDS, clocked, score, score_models
from attribution.worlds import WORLDS, simulate

SMALL = 2_000


@pytest.fixture(scope="module")
def scored() -> dict[str, dict]:
    """Every model on every world, once for the module."""
    out = {}
    for name, world in WORLDS.items():
        sim = simulate(world, SMALL, seed=7)
        out[name] = {"sim": sim, "scores": score_models(sim, list(MODELS))}
    return out


def test_every_registered_model_is_scored() -> None:
    assert {name for name, _ in MODELS.values()} == set(MODEL_NAMES)
    assert {"markov_1", "markov_4", "time_decay"} <= set(MODELS)


@pytest.mark.parametrize("world", list(WORLDS))
def test_true_credit_sums_to_total_conversions_and_value(scored, world: str) -> None:
    sim = scored[world]["sim"]
    assert sim.true_credit().sum() == pytest.approx(sim.total_conversions, rel=1e-12)
    total_value = float(sim.values @ sim.converted)
    assert sim.true_value_credit().sum() == pytest.approx(total_value, rel=1e-12)
    weights = np.arange(sim.n_journeys) % 3  # a resample: journeys counted 0, 1 or 2 times
    assert sim.true_value_credit(weights).sum() == pytest.approx(
        float((sim.values * weights) @ sim.converted), rel=1e-12
    )


@pytest.mark.parametrize("world", list(WORLDS))
def test_every_model_gets_an_error_for_conversions_and_value(scored, world: str) -> None:
    scores = scored[world]["scores"]
    assert set(scores) == set(MODELS)
    for label, result in scores.items():
        for kind in (result.conversions, result.value):
            # no upper bound: a model may give a channel negative credit (shapley_rate)
            assert np.isfinite(kind.error) and kind.error >= 0.0, label
            # the worst channel's gap is part of the total, and gaps sum to zero, so
            # the total is at least twice the worst one
            assert kind.error >= 2 * abs(kind.worst_error) - 1e-9, label
        print(
            f"{world:8} {label:16} error {result.conversions.error:6.1f} pp, "
            f"value error {result.value.error:6.1f} pp"
        )


def test_the_closer_earns_nothing_while_last_touch_gives_it_what_it_closes(scored) -> None:
    sim, scores = scored["closer"]["sim"], scored["closer"]["scores"]
    names = list(sim.world.channel_names)
    k = names.index("brand_search")
    assert sim.true_credit()[k] == 0.0 and sim.true_value_credit()[k] == 0.0
    closes = sim.converted & (sim.tokens[sim.offsets[1:] - 1] == k)
    closed, closed_value = int(closes.sum()), float(sim.values @ closes)
    assert closed > 0
    # last touch's share for the closer is the share of conversions it closes, and the
    # truth's is 0: that is last touch's gap on the closer, exactly
    last = scores["last_touch"]
    share = 100 * closed / sim.total_conversions
    value_share = 100 * closed_value / float(sim.values @ sim.converted)
    assert last.conversions.worst == "brand_search"
    assert last.conversions.worst_error == pytest.approx(share, rel=1e-12)
    assert last.conversions.error >= 2 * share - 1e-9
    assert last.value.worst == "brand_search"
    assert last.value.worst_error == pytest.approx(value_share, rel=1e-12)


def test_score_by_hand() -> None:
    exact = score(["a", "b"], [3.0, 1.0], [30.0, 10.0])
    assert (exact.error, exact.tau) == (0.0, 1.0)
    wrong = score(["a", "b", "c"], [0.0, 1.0, 3.0], [2.0, 1.0, 1.0])
    # shares 0, 25, 75 against 50, 25, 25: gaps -50, 0, +50
    assert (wrong.error, wrong.worst, wrong.worst_error) == (100.0, "a", -50.0)
    assert np.isnan(score(["a", "b"], [1.0, 1.0], [2.0, 1.0]).tau)  # no ranking to compare


def test_the_clock_puts_one_touch_a_day_and_the_last_at_zero() -> None:
    paths = clocked(simulate(WORLDS["additive"], 50, seed=0).to_pathset())
    assert paths.times is not None
    for a, b in zip(paths.offsets[:-1], paths.offsets[1:], strict=True):
        np.testing.assert_array_equal(
            paths.times[a:b], -TOUCH_SPACING_SECONDS * np.arange(b - a - 1, -1, -1)
        )
