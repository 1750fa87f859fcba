"""Invariants every registered model keeps, checked on random path sets.

One module, parametrised over :data:`attribution.models.MODEL_NAMES`: credit sums to
the totals; swapping two channels' names swaps their credit; the order of the input
rows does not matter; the channel and stage tables are the marginals of the
channel x stage grid; the same seed gives the same result; each path's per-touch
split sums to its totals. Models that split each path over its own touches give
nothing to a channel that never converts, and the model-based ones never go negative.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import PathSpec, path_specs
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from attribution import MODEL_NAMES, Credit, PathSet, get_model, model_class

NEEDS_TIMES = frozenset({"time_decay"})
HEURISTICS = frozenset({"first_touch", "last_touch", "linear", "position_based", "time_decay"})
ZERO_WITHOUT_CONVERSIONS = HEURISTICS | {"shapley_simple", "data_driven"}
NON_NEGATIVE = HEURISTICS | {"shapley_simple", "markov", "shapley"}

# small sets keep the exact Shapley games (players = channel-stage pairs) cheap
SETTINGS = settings(max_examples=30, deadline=None)
RTOL = 1e-9

Key = tuple[str, str | None]


def specs(name: str, min_channels: int = 1) -> st.SearchStrategy[PathSpec]:
    return path_specs(
        max_paths=8,
        min_channels=min_channels,
        max_channels=4,
        max_length=5,
        max_stages=2,
        times=True if name in NEEDS_TIMES else None,
    )


def run(name: str, paths: PathSet, **options: object) -> Credit:
    return get_model(name, **options).attribute(paths)


def keyed(credit: Credit) -> dict[Key, tuple[float, float]]:
    """Credit by (channel name, stage name), so differently coded sets compare."""
    stages = credit.stage_names or (None,)
    return {
        (c, s): (float(credit.conversions[i, j]), float(credit.value[i, j]))
        for i, c in enumerate(credit.channel_names)
        for j, s in enumerate(stages)
    }


def assert_same_credit(
    got: dict[Key, tuple[float, float]], expected: dict[Key, tuple[float, float]], paths: PathSet
) -> None:
    assert set(got) == set(expected)
    conv_tol = RTOL * max(paths.total_conversions, 1.0)
    val_tol = RTOL * max(paths.total_value, 1.0)
    for key, (conv, val) in expected.items():
        assert got[key][0] == pytest.approx(conv, abs=conv_tol), key
        assert got[key][1] == pytest.approx(val, abs=val_tol), key


@pytest.mark.parametrize("name", MODEL_NAMES)
@SETTINGS
@given(data=st.data())
def test_efficiency(name: str, data: st.DataObject) -> None:
    paths = data.draw(specs(name)).build()
    credit = run(name, paths)
    assert credit.conversions.sum() == pytest.approx(paths.total_conversions, rel=RTOL)
    assert credit.value.sum() == pytest.approx(paths.total_value, rel=RTOL, abs=1e-9)
    assert credit.total_conversions == paths.total_conversions
    assert credit.total_value == paths.total_value


@pytest.mark.parametrize("name", MODEL_NAMES)
@SETTINGS
@given(data=st.data())
def test_swapping_two_channel_names_swaps_their_credit(name: str, data: st.DataObject) -> None:
    spec = data.draw(specs(name, min_channels=2))
    assume(len(spec.channels) >= 2)
    a, b = data.draw(st.permutations(spec.channels))[:2]
    swapped = spec.relabel({a: b, b: a})
    expected = {
        (b if c == a else a if c == b else c, s): v
        for (c, s), v in keyed(run(name, spec.build())).items()
    }
    assert_same_credit(keyed(run(name, swapped.build())), expected, spec.build())


@pytest.mark.parametrize("name", MODEL_NAMES)
@SETTINGS
@given(data=st.data())
def test_row_order_does_not_matter(name: str, data: st.DataObject) -> None:
    spec = data.draw(specs(name))
    order = data.draw(st.permutations(range(len(spec.paths))))
    paths = spec.build()
    expected = keyed(run(name, paths))
    assert_same_credit(keyed(run(name, spec.permute(order).build())), expected, paths)


@pytest.mark.parametrize("name", MODEL_NAMES)
@SETTINGS
@given(data=st.data())
def test_channel_and_stage_tables_are_marginals_of_the_grid(name: str, data: st.DataObject) -> None:
    paths = data.draw(specs(name)).build()
    credit = run(name, paths)
    tol = RTOL * max(paths.total_conversions, 1.0)
    # pairs that never occur carry nothing, so listing the present pairs loses nothing
    assert np.all(np.abs(credit.conversions[~credit.present]) <= tol)
    rows = credit.to_rows()
    pairs = [r for r in rows if r["dimension"] == "channel_stage"]
    if not paths.has_stages:
        assert not pairs
        assert not [r for r in rows if r["dimension"] == "stage"]
        return
    for dim in ("channel", "stage"):
        table = [r for r in rows if r["dimension"] == dim]
        assert sum(r["conversions"] for r in table) == pytest.approx(
            paths.total_conversions, rel=RTOL
        )
        for row in table:
            inner = [p for p in pairs if p[dim] == row[dim]]
            assert row["conversions"] == pytest.approx(
                sum(p["conversions"] for p in inner), abs=tol
            )
            assert row["value"] == pytest.approx(
                sum(p["value"] for p in inner), abs=RTOL * max(paths.total_value, 1.0)
            )


@pytest.mark.parametrize("name", MODEL_NAMES)
@SETTINGS
@given(data=st.data())
def test_same_seed_same_result(name: str, data: st.DataObject) -> None:
    paths = data.draw(specs(name)).build()
    fields = {f.name for f in dataclasses.fields(model_class(name))}
    options = {"random_state": 7} if "random_state" in fields else {}
    first, second = run(name, paths, **options), run(name, paths, **options)
    np.testing.assert_array_equal(first.conversions, second.conversions)
    np.testing.assert_array_equal(first.value, second.value)
    np.testing.assert_array_equal(first.touch_conversions, second.touch_conversions)


@pytest.mark.parametrize("name", MODEL_NAMES)
@SETTINGS
@given(data=st.data())
def test_per_touch_split_sums_to_each_path(name: str, data: st.DataObject) -> None:
    paths = data.draw(specs(name)).build()
    credit = run(name, paths)
    assert credit.touch_conversions is not None
    assert credit.touch_value is not None
    assert credit.touch_conversions.shape == paths.tokens.shape
    per_path = np.bincount(paths.path_index, credit.touch_conversions, minlength=paths.n_paths)
    np.testing.assert_allclose(per_path, paths.conversions, rtol=RTOL, atol=1e-12)
    per_path = np.bincount(paths.path_index, credit.touch_value, minlength=paths.n_paths)
    np.testing.assert_allclose(per_path, paths.value, rtol=RTOL, atol=1e-9)


@pytest.mark.parametrize("name", sorted(ZERO_WITHOUT_CONVERSIONS))
@SETTINGS
@given(data=st.data())
def test_channel_never_in_a_converting_journey_gets_nothing(name: str, data: st.DataObject) -> None:
    paths = data.draw(specs(name)).build()
    converting = np.zeros(paths.n_channels, dtype=bool)
    converting[paths.tokens[paths.conversions[paths.path_index] > 0]] = True
    credit = run(name, paths)
    conv, val = credit.by_channel()
    assert np.all(conv[~converting] == 0)
    assert np.all(val[~converting] == 0)


@pytest.mark.parametrize("name", sorted(NON_NEGATIVE))
@SETTINGS
@given(data=st.data())
def test_credit_is_never_negative(name: str, data: st.DataObject) -> None:
    paths = data.draw(specs(name)).build()
    credit = run(name, paths)
    assert np.all(credit.conversions >= -RTOL * max(paths.total_conversions, 1.0))
    assert np.all(credit.value >= -RTOL * max(paths.total_value, 1.0))


@pytest.mark.parametrize("name", MODEL_NAMES)
@SETTINGS
@given(data=st.data())
def test_new_totals_on_a_used_set_give_what_a_fresh_set_gives(
    name: str, data: st.DataObject
) -> None:
    """with_counts hands on what a set derived from its touches; a model run on the
    result must not tell it from a set built from scratch with the same totals."""
    paths = data.draw(specs(name)).build()
    run(name, paths)  # derives what the model needs from the touches
    n = paths.n_paths
    conversions = data.draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    nulls = data.draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    conversions[0] = max(conversions[0], 1)
    value = [c * 2.5 for c in conversions]
    used = paths.with_counts(conversions, nulls, value)
    fresh = dataclasses.replace(used)  # same fields, nothing derived yet
    assert "_derived" not in fresh.__dict__
    got, expected = run(name, used), run(name, fresh)
    np.testing.assert_array_equal(got.conversions, expected.conversions)
    np.testing.assert_array_equal(got.value, expected.value)
    np.testing.assert_array_equal(got.touch_conversions, expected.touch_conversions)


@pytest.mark.parametrize("name", MODEL_NAMES)
@SETTINGS
@given(data=st.data())
def test_the_table_split_over_touches_adds_up_to_the_grid(name: str, data: st.DataObject) -> None:
    """Every model's table shared out over touches sums back to it, pair by pair
    (what per-day series rely on), and each touch's share is of its own pair."""
    paths = data.draw(specs(name)).build()
    credit = run(name, paths)
    conv, val = credit.table_touch_split(paths)
    assert conv.shape == val.shape == paths.tokens.shape
    n = paths.n_states
    conv_tol = RTOL * max(paths.total_conversions, 1.0)
    val_tol = RTOL * max(paths.total_value, 1.0)
    assert np.bincount(paths.states, conv, minlength=n) == pytest.approx(
        credit.conversions.ravel(), abs=conv_tol
    )
    assert np.bincount(paths.states, val, minlength=n) == pytest.approx(
        credit.value.ravel(), abs=val_tol
    )
    if name in HEURISTICS | {"shapley_simple"}:  # their table is the sum of their split
        assert conv == pytest.approx(credit.touch_conversions, abs=conv_tol)
