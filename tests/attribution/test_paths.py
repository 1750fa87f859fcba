"""PathSet: encoding, validation, derived arrays and transforms."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from conftest import path_specs
from hypothesis import given, settings

from attribution import InvalidPaths, PathSet, read_ca_csv
from attribution.paths import NO_STAGE


def small() -> PathSet:
    return PathSet.from_lists(
        [["search", "email", "email"], ["social"], ["email", "search"]],
        conversions=[2, 0, 1],
        nulls=[1, 3, 0],
        value=[50, 0, 20],
    )


def test_from_lists_encodes_in_order_of_appearance() -> None:
    paths = small()
    assert paths.channel_names == ("search", "email", "social")
    assert paths.tokens.tolist() == [0, 1, 1, 2, 1, 0]
    assert paths.offsets.tolist() == [0, 3, 4, 6]
    assert paths.lengths.tolist() == [3, 1, 2]
    assert paths.path_index.tolist() == [0, 0, 0, 1, 2, 2]
    assert paths.position.tolist() == [0, 1, 2, 0, 0, 1]
    assert paths.states.tolist() == paths.tokens.tolist()
    assert (paths.n_paths, paths.n_channels, paths.n_states) == (3, 3, 3)
    assert (paths.total_conversions, paths.total_nulls, paths.total_value) == (3, 4, 70)
    assert not paths.has_stages
    assert paths.n_stage_columns == 1
    assert paths.paths_as_lists() == [["search", "email", "email"], ["social"], ["email", "search"]]


def test_stages_code_channel_stage_pairs() -> None:
    paths = PathSet.from_lists([["a", "b"], ["b"]], [1, 0], [0, 1], stages=[["aw", "co"], ["aw"]])
    assert paths.stage_names == ("aw", "co")
    # state = channel * n_stages + stage
    assert paths.states.tolist() == [0 * 2 + 0, 1 * 2 + 1, 1 * 2 + 0]
    assert paths.state_present.tolist() == [[True, False], [True, True]]


def test_missing_stages_become_a_stage_of_their_own() -> None:
    paths = PathSet.from_lists([["a", "b"]], [1], stages=[["aw", None]])
    assert paths.stage_names == ("aw", NO_STAGE)
    none = PathSet.from_lists([["a", "b"]], [1], stages=[[None, None]])
    assert not none.has_stages
    assert none.stage_tokens is None


def test_from_arrays_drops_unused_names() -> None:
    paths = PathSet.from_arrays(["x", "unused", "y"], [0, 2, 2], [0, 1, 3], [1, 1])
    assert paths.channel_names == ("x", "y")
    assert paths.tokens.tolist() == [0, 1, 1]


def test_empty_path_set() -> None:
    paths = PathSet.from_lists([], [])
    assert paths.n_paths == 0
    assert paths.state_present.shape == (0, 1)
    assert paths.collapse_repeats().n_paths == 0
    assert paths.aggregate().n_paths == 0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: PathSet.from_lists([["a"], []], [1, 0]), "path 1 is empty"),
        (lambda: PathSet.from_lists([["a"]], [-1]), "conversions"),
        (lambda: PathSet.from_lists([["a"]], [1], [-2]), "nulls"),
        (lambda: PathSet.from_lists([["a"]], [0], [1], [5]), "value but no conversions"),
        (lambda: PathSet.from_lists([["a"]], [math.inf]), "not finite"),
        (lambda: PathSet.from_lists([["a"]], [1, 2]), "expected 1"),
        (lambda: PathSet.from_lists([["a", ""]], [1]), "non-empty string"),
        (lambda: PathSet.from_lists([["a", "b"]], [1], stages=[["aw"]]), "same shape"),
        (lambda: PathSet.from_lists([["a", "b"]], [1], times=[[1.0]]), "same shape"),
        (lambda: PathSet.from_arrays(["a"], [0, 1], [0, 2], [1]), "channel codes"),
        (lambda: PathSet.from_arrays(["a"], [0, 0], [0, 1], [1]), "offsets"),
        (lambda: PathSet.from_arrays(["a"], [0], [1, 1], [1]), "offsets"),
        (lambda: PathSet.from_arrays(["a", "a"], [0], [0, 1], [1]), "unique"),
        (lambda: PathSet.from_arrays(["a"], [0], [0, 1], [1], stage_names=["s"]), "together"),
        (
            lambda: PathSet.from_arrays(
                ["a"], [0], [0, 1], [1], stage_names=["s"], stage_tokens=[3]
            ),
            "stage codes",
        ),
    ],
)
def test_invalid_paths_say_what_is_wrong(build, message: str) -> None:
    with pytest.raises(InvalidPaths, match=message):
        build()


def test_from_rows_reads_strings_lists_and_aliases() -> None:
    paths = PathSet.from_rows(
        [
            {
                "path": "a > b",
                "total_conversions": "2",
                "total_null": "1",
                "total_conversion_value": "9.5",
            },
            {"path": ["b"], "conversions": 0, "nulls": 4},
        ]
    )
    assert paths.paths_as_lists() == [["a", "b"], ["b"]]
    assert paths.conversions.tolist() == [2, 0]
    assert paths.nulls.tolist() == [1, 4]
    assert paths.value.tolist() == [9.5, 0]


def test_from_rows_errors_name_the_row() -> None:
    with pytest.raises(InvalidPaths, match="row 1"):
        PathSet.from_rows([{"path": "a", "conversions": 1}, {"path": "a", "conversions": "x"}])
    with pytest.raises(InvalidPaths, match="row 0: stages"):
        PathSet.from_rows([{"path": "a > b", "stages": "s1", "conversions": 1}])


CA_CSV = """path,total_conversions,total_null,total_conversion_value,stages
search > email,3,1,30.5,aw > de
email,0,2,0,
"""


def test_read_ca_csv_from_text_and_file(tmp_path) -> None:
    paths = read_ca_csv(io.StringIO(CA_CSV))
    assert paths.paths_as_lists() == [["search", "email"], ["email"]]
    assert paths.stage_names == ("aw", "de", NO_STAGE)
    assert paths.total_value == 30.5
    file = tmp_path / "paths.csv"
    file.write_text(CA_CSV, encoding="utf-8")
    assert read_ca_csv(file).paths_as_lists() == paths.paths_as_lists()
    assert read_ca_csv(str(file)).total_conversions == 3


def test_collapse_repeats_merges_runs_within_paths_only() -> None:
    paths = PathSet.from_lists(
        [["a", "a", "b", "a"], ["a"], ["a", "b", "b"]],
        [1, 1, 1],
        times=[[1.0, 2.0, 3.0, 4.0], [5.0], [6.0, 7.0, 8.0]],
    )
    collapsed = paths.collapse_repeats()
    assert collapsed.paths_as_lists() == [["a", "b", "a"], ["a"], ["a", "b"]]
    # the merged touch keeps the time of the run's last touch
    assert collapsed.times is not None
    assert collapsed.times.tolist() == [2.0, 3.0, 4.0, 5.0, 6.0, 8.0]
    assert collapsed.conversions.tolist() == [1, 1, 1]


def test_collapse_repeats_keeps_different_stages_apart() -> None:
    paths = PathSet.from_lists([["a", "a", "a"]], [1], stages=[["aw", "aw", "co"]])
    collapsed = paths.collapse_repeats()
    assert collapsed.paths_as_lists() == [["a", "a"]]
    assert collapsed.stage_tokens is not None
    assert collapsed.stage_tokens.tolist() == [0, 1]


def test_group_channels_merges_names() -> None:
    grouped = small().group_channels({"search": "paid", "social": "paid"})
    assert grouped.channel_names == ("paid", "email")
    assert grouped.paths_as_lists() == [["paid", "email", "email"], ["paid"], ["email", "paid"]]
    assert grouped.total_value == 70


def test_aggregate_sums_identical_paths() -> None:
    paths = PathSet.from_lists(
        [["a", "b"], ["a"], ["a", "b"], ["a", "b"]],
        [1, 0, 2, 0],
        [0, 1, 0, 5],
        [10, 0, 5, 0],
        stages=[["s", "t"], ["s"], ["s", "t"], ["s", "s"]],
        times=[[1, 2], [3], [4, 5], [6, 7]],
    )
    agg = paths.aggregate()
    # the last path differs only by its stages, so it stays apart
    assert agg.paths_as_lists() == [["a", "b"], ["a"], ["a", "b"]]
    assert agg.conversions.tolist() == [3, 0, 0]
    assert agg.nulls.tolist() == [0, 1, 5]
    assert agg.value.tolist() == [15, 0, 0]
    assert agg.stage_tokens is not None
    assert agg.stage_tokens.tolist() == [0, 1, 0, 0, 0]
    assert agg.times is None
    assert paths.aggregated_index().tolist() == [0, 1, 0, 2]


@settings(max_examples=50, deadline=None)
@given(path_specs(max_paths=15, max_count=3))
def test_each_path_is_merged_into_the_row_of_its_index(spec) -> None:
    paths = spec.build()
    agg, index = paths.aggregate(), paths.aggregated_index()
    rows = agg.paths_as_lists()
    assert [rows[i] for i in index.tolist()] == paths.paths_as_lists()
    assert np.bincount(index, paths.conversions, agg.n_paths) == pytest.approx(agg.conversions)


def test_with_counts_replaces_totals() -> None:
    paths = small()
    other = paths.with_counts([1, 1, 1], [0, 0, 0], [1, 2, 3])
    assert (other.total_conversions, other.total_nulls, other.total_value) == (3, 0, 6)
    assert other.tokens is paths.tokens
    with pytest.raises(InvalidPaths):
        small().with_counts([1, 1], [0, 0], [0, 0])


@settings(max_examples=50, deadline=None)
@given(path_specs(max_paths=15, max_count=3))
def test_aggregate_keeps_totals_and_touch_counts(spec) -> None:
    paths = spec.build()
    agg = paths.aggregate()
    assert agg.n_paths <= paths.n_paths
    for attr in ("conversions", "nulls", "value"):
        assert getattr(agg, attr).sum() == pytest.approx(getattr(paths, attr).sum())

    # journeys per state are kept: each touch weighed by its path's journeys
    def weighted(p: PathSet) -> np.ndarray:
        journeys = (p.conversions + p.nulls)[p.path_index]
        return np.bincount(p.states, journeys, minlength=p.n_states)

    np.testing.assert_allclose(weighted(agg), weighted(paths))
    assert agg.aggregate().n_paths == agg.n_paths


@settings(max_examples=50, deadline=None)
@given(path_specs(max_paths=15, times=None))
def test_collapse_repeats_leaves_no_repeats_and_is_idempotent(spec) -> None:
    collapsed = spec.build().collapse_repeats()
    st = collapsed.states
    same = st[1:] == st[:-1]
    within = collapsed.path_index[1:] == collapsed.path_index[:-1]
    assert not np.any(same & within)
    again = collapsed.collapse_repeats()
    assert again.tokens.tolist() == collapsed.tokens.tolist()
    assert again.offsets.tolist() == collapsed.offsets.tolist()


def test_a_positive_count_below_the_minimum_is_rejected() -> None:
    # 5e-324 conversions with a large value once overflowed value-per-conversion ratios
    with pytest.raises(InvalidPaths, match=r"conversions\[0\].*at least 1e-06"):
        PathSet.from_lists([["a", "b"], ["b"]], [5e-324, 1], [0, 1], [1e15, 2])
    with pytest.raises(InvalidPaths, match=r"nulls\[1\]"):
        PathSet.from_lists([["a"], ["b"]], [1, 1], [0, 1e-9])
