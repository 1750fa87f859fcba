"""attribute(): channel grouping, then repeat collapsing, then the model."""

from __future__ import annotations

import numpy as np
import pytest

from attribution import InvalidParameter, PathSet, UnknownModel, attribute
from attribution.heuristics import Linear, PositionBased
from attribution.run import prepare


def paid() -> PathSet:
    return PathSet.from_lists(
        [["paid_search", "paid_social", "email"], ["email", "email"]],
        conversions=[3, 1],
        nulls=[1, 1],
        value=[30, 8],
    )


def by_channel(credit) -> dict[str, float]:
    conv, _ = credit.by_channel()
    return {c: float(conv[i]) for i, c in enumerate(credit.channel_names)}


def test_by_name_with_options_or_by_object() -> None:
    paths = paid()
    by_name = attribute(paths, "position_based", first_share=0.5, last_share=0.5)
    by_object = attribute(paths, PositionBased(first_share=0.5, last_share=0.5))
    np.testing.assert_array_equal(by_name.conversions, by_object.conversions)
    assert by_channel(by_name) == pytest.approx(
        {"paid_search": 1.5, "paid_social": 0, "email": 2.5}
    )


def test_grouping_runs_before_collapsing() -> None:
    groups = {"paid_search": "paid", "paid_social": "paid"}
    # grouped: (paid, paid, email) and (email, email), one third / one half per touch
    grouped = attribute(paid(), "linear", channel_groups=groups)
    assert by_channel(grouped) == pytest.approx({"paid": 2, "email": 2})
    # then collapsed: (paid, email) and (email)
    collapsed = attribute(paid(), "linear", channel_groups=groups, collapse_repeats=True)
    assert by_channel(collapsed) == pytest.approx({"paid": 1.5, "email": 2.5})


def test_collapse_repeats_off_by_default() -> None:
    paths = PathSet.from_lists([["a", "a", "b"]], [3], [0])
    assert by_channel(attribute(paths, "linear")) == pytest.approx({"a": 2, "b": 1})
    assert by_channel(attribute(paths, Linear(), collapse_repeats=True)) == pytest.approx(
        {"a": 1.5, "b": 1.5}
    )


def test_touch_split_is_aligned_with_the_prepared_paths() -> None:
    groups = {"paid_search": "paid", "paid_social": "paid"}
    credit = attribute(paid(), "last_touch", channel_groups=groups, collapse_repeats=True)
    prepared = prepare(paid(), channel_groups=groups, collapse_repeats=True)
    assert prepared.paths_as_lists() == [["paid", "email"], ["email"]]
    assert credit.touch_conversions is not None
    assert credit.touch_conversions.tolist() == [0, 3, 1]


def test_errors() -> None:
    with pytest.raises(UnknownModel):
        attribute(paid(), "last_click")
    with pytest.raises(InvalidParameter, match="per") as info:
        attribute(paid(), Linear(), per="channel")
    assert info.value.name == "per"
    with pytest.raises(InvalidParameter) as info:
        attribute(paid(), "linear", collapse_repeats="yes")
    assert info.value.name == "collapse_repeats"
