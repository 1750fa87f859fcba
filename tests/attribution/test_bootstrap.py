"""Bootstrap intervals: coverage where the truth is known, reproducibility, scaling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from attribution import MODEL_NAMES, InvalidParameter, PathSet, get_model
from attribution.bootstrap import bootstrap, resample
from attribution.result import Credit, credit_from_touch_weights
from attribution.synthetic import generate

PATHS = [["a"], ["a", "b"], ["b", "c"], ["c"], ["a", "b", "c"], ["b"]]
MEAN_CONVERSIONS = np.array([30.0, 20.0, 25.0, 40.0, 15.0, 35.0])
MEAN_NULLS = np.array([200.0, 150.0, 90.0, 300.0, 60.0, 250.0])
VALUE_PER_CONVERSION = np.array([50.0, 80.0, 20.0, 35.0, 120.0, 10.0])


@dataclass(frozen=True)
class PerTouch:
    """A tiny linear model: each touch gets 1/length of its path (the test's own)."""

    name: ClassVar[str] = "per_touch"

    def attribute(self, paths: PathSet) -> Credit:
        weights = 1.0 / paths.lengths[paths.path_index]
        return credit_from_touch_weights(self.name, paths, weights)


def dataset(conversions: np.ndarray, nulls: np.ndarray) -> PathSet:
    return PathSet.from_lists(PATHS, conversions, nulls, conversions * VALUE_PER_CONVERSION)


def true_credit() -> tuple[np.ndarray, np.ndarray]:
    """Expected per-channel conversions and value under the Poisson data model."""
    expected = dataset(MEAN_CONVERSIONS, MEAN_NULLS)
    conv, val = PerTouch().attribute(expected).by_channel()
    return conv, val


@pytest.fixture(scope="module")
def synthetic() -> PathSet:
    return generate(3000, n_channels=5, n_stages=3, seed=11).to_pathset()


def test_poisson_intervals_cover_the_truth_about_95_percent() -> None:
    """Repeated datasets drawn from known means: the truth falls inside ~95% of intervals."""
    truth_conv, truth_val = true_credit()
    rng = np.random.default_rng(2024)
    hits = []
    for k in range(60):
        paths = dataset(rng.poisson(MEAN_CONVERSIONS), rng.poisson(MEAN_NULLS))
        credit = bootstrap(PerTouch(), paths, n_replicates=200, random_state=k)
        ci = credit.intervals["channel"]
        hits.append((ci.conversions_low <= truth_conv) & (truth_conv <= ci.conversions_high))
        hits.append((ci.value_low <= truth_val) & (truth_val <= ci.value_high))
    coverage = np.mean(hits)
    assert 0.88 <= coverage <= 0.99, coverage


def test_same_seed_same_intervals(synthetic: PathSet) -> None:
    model = get_model("linear")
    a = bootstrap(model, synthetic, n_replicates=30, random_state=5)
    b = bootstrap(model, synthetic, n_replicates=30, random_state=5)
    c = bootstrap(model, synthetic, n_replicates=30, random_state=6)
    for dim in ("channel", "stage", "channel_stage"):
        np.testing.assert_array_equal(
            a.intervals[dim].conversions_low, b.intervals[dim].conversions_low
        )
        np.testing.assert_array_equal(a.intervals[dim].value_high, b.intervals[dim].value_high)
    assert not np.array_equal(
        a.intervals["channel"].conversions_low, c.intervals["channel"].conversions_low
    )


@pytest.mark.parametrize("method", ["poisson", "multinomial"])
@pytest.mark.parametrize("name", ["first_touch", "linear", "markov", "shapley_simple"])
def test_intervals_contain_the_point_estimate(synthetic: PathSet, name: str, method: str) -> None:
    credit = bootstrap(get_model(name), synthetic, n_replicates=100, method=method, random_state=1)
    for dim in ("channel", "stage", "channel_stage"):
        keys, conv, val = credit.table(dim)
        ci = credit.intervals[dim]
        assert len(ci.conversions_low) == len(keys)
        solid = conv >= 10  # tiny cells may sit at a bound of their skewed replicates
        assert np.all(ci.conversions_low[solid] <= conv[solid] + 1e-9)
        assert np.all(conv[solid] <= ci.conversions_high[solid] + 1e-9)
        assert np.all(ci.value_low[solid] <= val[solid] + 1e-6)
        assert np.all(val[solid] <= ci.value_high[solid] + 1e-6)


def test_width_shrinks_like_one_over_root_n() -> None:
    """Four times the journeys: relative width halves (absolute width doubles, sqrt(4))."""
    small = dataset(MEAN_CONVERSIONS, MEAN_NULLS)
    large = dataset(4 * MEAN_CONVERSIONS, 4 * MEAN_NULLS)
    relative = []
    for paths in (small, large):
        credit = bootstrap(PerTouch(), paths, n_replicates=1000, random_state=3)
        ci = credit.intervals["channel"]
        relative.append((ci.conversions_high - ci.conversions_low) / credit.by_channel()[0])
    ratio = relative[1] / relative[0]
    assert np.all((ratio > 0.42) & (ratio < 0.58)), ratio


def test_result_carries_point_estimate_details_and_rows(synthetic: PathSet) -> None:
    model = get_model("first_touch")
    credit = bootstrap(model, synthetic, n_replicates=20, level=0.9, random_state=0)
    point = model.attribute(synthetic)
    np.testing.assert_array_equal(credit.conversions, point.conversions)
    assert credit.details["bootstrap"] == {
        "method": "poisson",
        "replicates": 20,
        "level": 0.9,
        "seed": 0,
    }
    assert set(credit.intervals) == {"channel", "stage", "channel_stage"}
    assert credit.intervals["stage"].level == 0.9
    rows = credit.to_rows()
    assert all(r["ci_low"] is not None and r["ci_low"] <= r["ci_high"] for r in rows)


def test_no_stages_means_a_channel_interval_only() -> None:
    paths = dataset(MEAN_CONVERSIONS, MEAN_NULLS)
    credit = bootstrap("linear", paths, n_replicates=10, random_state=0)
    assert set(credit.intervals) == {"channel"}


def test_poisson_resampling_is_centred_on_the_counts() -> None:
    paths = dataset(MEAN_CONVERSIONS, MEAN_NULLS)
    conv, nulls, value = resample(paths, np.random.default_rng(0), 4000, "poisson")
    assert conv.shape == (4000, 6)
    np.testing.assert_allclose(conv.mean(axis=0), MEAN_CONVERSIONS, rtol=0.03)
    np.testing.assert_allclose(nulls.var(axis=0), MEAN_NULLS, rtol=0.1)
    np.testing.assert_allclose(value, conv * VALUE_PER_CONVERSION)


def test_multinomial_resampling_keeps_the_total() -> None:
    paths = dataset(MEAN_CONVERSIONS, MEAN_NULLS)
    conv, nulls, _ = resample(paths, np.random.default_rng(0), 500, "multinomial")
    total = MEAN_CONVERSIONS.sum() + MEAN_NULLS.sum()
    np.testing.assert_array_equal(conv.sum(axis=1) + nulls.sum(axis=1), total)
    np.testing.assert_allclose(conv.mean(axis=0), MEAN_CONVERSIONS, rtol=0.06)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"n_replicates": 9}, "n_replicates"),
        ({"n_replicates": 10_001}, "n_replicates"),
        ({"n_replicates": 50.0}, "n_replicates"),
        ({"level": 0.5}, "level"),
        ({"level": 1.0}, "level"),
        ({"method": "jackknife"}, "method"),
        ({"random_state": -1}, "random_state"),
    ],
)
def test_bad_parameters_are_named(options: dict[str, object], name: str) -> None:
    paths = dataset(MEAN_CONVERSIONS, MEAN_NULLS)
    with pytest.raises(InvalidParameter) as err:
        bootstrap(PerTouch(), paths, **options)  # type: ignore[arg-type]
    assert err.value.name == name


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_registered_model_gets_intervals(name: str) -> None:
    journeys = generate(150, n_channels=3, n_stages=2, seed=4).to_pathset(aggregate=False)
    credit = bootstrap(name, journeys, n_replicates=10, random_state=0)
    for dim in ("channel", "stage", "channel_stage"):
        keys, _, _ = credit.table(dim)
        ci = credit.intervals[dim]
        assert len(ci.conversions_low) == len(keys)
        assert np.all(ci.conversions_low <= ci.conversions_high)
        assert np.all(ci.value_low <= ci.value_high)


@pytest.mark.parametrize("method", ["poisson", "multinomial"])
def test_no_paths_resample_to_no_paths(method: str) -> None:
    empty = PathSet.from_lists([], [], [])
    conv, nulls, value = resample(empty, np.random.default_rng(0), 4, method)
    assert conv.shape == nulls.shape == value.shape == (4, 0)
