"""Credit: grids, marginals, tidy rows, the per-path split; and the model registry."""

from __future__ import annotations

import re

import numpy as np
import pytest

from attribution import ROW_COLUMNS, InvalidParameter, PathSet, UnknownModel, get_model
from attribution.result import (
    Credit,
    Interval,
    credit_from_touch_weights,
    grid,
    no_null_warning,
    state_grid,
)


def staged() -> PathSet:
    return PathSet.from_lists(
        [["a", "b"], ["b"], ["c"]],
        conversions=[2, 1, 0],
        nulls=[0, 1, 4],
        value=[40, 6, 0],
        stages=[["aw", "de"], ["de"], ["aw"]],
        path_ids=["j1", "j2", "j3"],
    )


def half_half(paths: PathSet) -> Credit:
    weights = 1.0 / paths.lengths[paths.path_index]
    return credit_from_touch_weights("linear", paths, weights)


def test_credit_from_touch_weights_fills_the_grid() -> None:
    paths = staged()
    credit = half_half(paths)
    # (a, aw): 1 of path 1; (b, de): 1 of path 1 and all of path 2
    assert credit.conversions.tolist() == [[1, 0], [0, 2], [0, 0]]
    assert credit.value.tolist() == [[20, 0], [0, 26], [0, 0]]
    assert credit.present.tolist() == [[True, False], [False, True], [True, False]]
    assert credit.touch_conversions is not None
    assert credit.touch_conversions.tolist() == [1, 1, 1, 0]
    assert (credit.total_conversions, credit.total_value) == (3, 46)
    assert credit.warnings == ()


def test_marginals_and_tables() -> None:
    credit = half_half(staged())
    conv, val = credit.by_channel()
    assert conv.tolist() == [1, 2, 0]
    assert val.tolist() == [20, 26, 0]
    conv, val = credit.by_stage()
    assert conv.tolist() == [1, 2]
    keys, conv, val = credit.table("channel_stage")
    assert keys == [("a", "aw", None), ("b", "de", None), ("c", "aw", None)]
    assert credit.table("campaign")[0] == []
    assert conv.tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="dimension"):
        credit.table("week")


def test_to_rows_is_the_tidy_table() -> None:
    rows = half_half(staged()).to_rows()
    assert all(tuple(r) == ROW_COLUMNS for r in rows)
    assert [r["dimension"] for r in rows] == ["channel"] * 3 + ["stage"] * 2 + ["channel_stage"] * 3
    first = rows[0]
    assert first == {
        "model": "linear",
        "dimension": "channel",
        "channel": "a",
        "campaign": None,
        "stage": None,
        "conversions": 1.0,
        "value": 20.0,
        "share": pytest.approx(1 / 3),
        "removal_effect": None,
        "ci_low": None,
        "ci_high": None,
    }
    assert sum(r["share"] for r in rows if r["dimension"] == "stage") == pytest.approx(1)


def test_without_stages_there_are_no_stage_rows() -> None:
    paths = PathSet.from_lists([["a", "b"]], [1], [1], [3])
    credit = half_half(paths)
    assert credit.by_stage()[0].size == 0
    assert {r["dimension"] for r in credit.to_rows()} == {"channel"}


def test_share_falls_back_to_value_without_conversions() -> None:
    # a resample can leave value with no conversions; share then follows value
    paths = PathSet.from_lists([["a", "b"]], [1], [0], [4]).with_counts([0], [1], [4])
    rows = half_half(paths).to_rows()
    assert [r["share"] for r in rows] == [0.5, 0.5]
    nothing = half_half(PathSet.from_lists([["a"]], [0], [1]))
    assert nothing.to_rows()[0]["share"] == 0


def test_rows_carry_removal_effects_and_intervals() -> None:
    credit = half_half(staged())
    effects = {
        "channel": np.array([0.1, 0.2, 0.3]),
        "stage": np.array([0.4, 0.5]),
        "channel_stage": np.array([[0.6, 0.0], [0.0, 0.7], [0.8, 0.0]]),
    }
    interval = Interval(0.9, np.zeros(3), np.ones(3), np.zeros(3), np.ones(3))
    credit = Credit(**{**credit.__dict__, "removal_effects": effects})
    credit = credit.with_intervals({"channel": interval}).with_warnings("careful")
    rows = credit.to_rows()
    assert [r["removal_effect"] for r in rows] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    assert [r["ci_high"] for r in rows[:3]] == [1.0, 1.0, 1.0]
    assert rows[3]["ci_low"] is None
    assert credit.warnings == ("careful",)


def test_path_rows_split_each_path() -> None:
    paths = staged()
    rows = half_half(paths).path_rows(paths)
    assert rows == [
        {"path": "j1", "channel": "a", "stage": "aw", "conversions": 1.0, "value": 20.0},
        {"path": "j1", "channel": "b", "stage": "de", "conversions": 1.0, "value": 20.0},
        {"path": "j2", "channel": "b", "stage": "de", "conversions": 1.0, "value": 6.0},
        {"path": "j3", "channel": "c", "stage": "aw", "conversions": 0.0, "value": 0.0},
    ]


def test_path_rows_merge_touches_of_one_state() -> None:
    paths = PathSet.from_lists([["a", "b", "a"]], [3], [0], [9])
    rows = half_half(paths).path_rows(paths)
    assert rows == [
        {"path": 0, "channel": "a", "stage": None, "conversions": 2.0, "value": 6.0},
        {"path": 0, "channel": "b", "stage": None, "conversions": 1.0, "value": 3.0},
    ]


def test_path_rows_need_a_split() -> None:
    paths = staged()
    credit = Credit(**{**half_half(paths).__dict__, "touch_conversions": None})
    with pytest.raises(ValueError, match="no per-path split"):
        credit.path_rows(paths)


def test_grid_and_state_grid() -> None:
    paths = staged()
    assert grid(paths, np.array([1.0, 2.0, 3.0, 4.0])).tolist() == [[1, 0], [0, 5], [4, 0]]
    assert state_grid(paths, np.arange(6)).tolist() == [[0, 1], [2, 3], [4, 5]]


def test_no_null_warning() -> None:
    assert no_null_warning(PathSet.from_lists([["a"]], [1], [0])) != ()
    assert no_null_warning(PathSet.from_lists([["a"]], [1], [1])) == ()
    assert no_null_warning(PathSet.from_lists([["a"]], [0], [0])) == ()


# ---------------------------------------------------------------------- the model registry
def test_get_model_rejects_unknown_names_and_options() -> None:
    with pytest.raises(UnknownModel, match="first_touch"):
        get_model("last_click")
    with pytest.raises(InvalidParameter, match=r"linear\.weights") as info:
        get_model("linear", weights=1)
    assert "per" in info.value.allowed


@pytest.mark.parametrize("option", ["name", "_constraints"])
def test_get_model_does_not_take_class_attributes_as_options(option: str) -> None:
    # class attributes are listed among a dataclass's fields internally; they are not
    # options, and must be refused as any unknown option is
    with pytest.raises(InvalidParameter, match=re.escape(f"linear.{option}")) as info:
        get_model("linear", **{option: "x"})
    assert info.value.allowed == "one of the options of linear: per"


def test_the_table_split_shares_each_pair_by_its_touches_split() -> None:
    paths = staged()  # touches: (a,aw) of path 0, (b,de) of paths 0 and 1, (c,aw) of path 2
    split = half_half(paths)
    # a table that doubles (b, de) and gives (c, aw), which nothing split, 1 conversion
    credit = Credit(
        model="made_up",
        channel_names=split.channel_names,
        stage_names=split.stage_names,
        conversions=np.array([[1.0, 0.0], [0.0, 4.0], [1.0, 0.0]]),
        value=np.array([[20.0, 0.0], [0.0, 26.0], [0.0, 0.0]]),
        present=split.present,
        total_conversions=6.0,
        total_value=46.0,
        touch_conversions=split.touch_conversions,
        touch_value=split.touch_value,
    )
    conv, val = credit.table_touch_split(paths)
    # (b, de) split 1 : 1 between paths 0 and 1, doubled; (c, aw) by path conversions
    # (none), so equally among its one touch
    assert conv.tolist() == [1.0, 2.0, 2.0, 1.0]
    assert val.tolist() == [20.0, 20.0, 6.0, 0.0]
    no_split = Credit("x", ("a",), None, np.ones((1, 1)), np.zeros((1, 1)),
                      np.ones((1, 1), bool), 1.0, 0.0)  # fmt: skip
    with pytest.raises(ValueError, match="no per-path split"):
        no_split.table_touch_split(PathSet.from_lists([["a"]], conversions=[1]))
