"""Journey analytics: hand-worked reports, a slow reference, and funnel properties."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution import InvalidParameter, MissingData, PathSet
from attribution.journeys import (
    DROPOFF_COLUMNS,
    FUNNEL_COLUMNS,
    LOOP_COLUMNS,
    LOOP_SUMMARY_COLUMNS,
    ROLE_COLUMNS,
    TIMING_COLUMNS,
    channel_roles,
    dropoff,
    funnel,
    loops,
    timing,
    wilson_interval,
)

ORDER = ("awareness", "consideration", "decision", "retention", "advocacy")
AW, CO, DE, RE, AD = ORDER
Z95 = 1.959963984540054

# (touches as (channel, stage), conversions, nulls); the comments give the story
HAND = [
    ([("search", AW)], 0, 3),  # P1: single touch, drops out in awareness
    ([("social", AW), ("email", CO)], 0, 2),  # P2: drops out in consideration
    ([("social", AW), ("search", CO), ("email", DE)], 1, 1),  # P3: one converts, one drops
    ([("search", AW), ("email", CO), ("search", AW)], 0, 1),  # P4: back to awareness, drops
    ([("email", DE)], 2, 0),  # P5: single touch, converts
    ([("social", AW), ("search", CO), ("email", DE), ("search", CO)], 1, 0),  # P6: loops, converts
    (
        [("direct", AW), ("email", CO), ("direct", DE), ("email", RE)],
        0,
        1,
    ),  # P7: drops in retention
    ([("email", RE), ("social", AD)], 0, 1),  # P8: drops in advocacy
    (
        [("search", AW), ("social", CO), ("search", DE), ("email", RE), ("social", AD)],
        1,
        0,
    ),  # P9: straight through, converts in advocacy
    ([("social", AW), ("email", DE), ("social", CO)], 1, 1),  # P10: back to consideration
]


def build(rows: Sequence[tuple[list[tuple[str, str]], float, float]]) -> PathSet:
    return PathSet.from_lists(
        [[c for c, _ in touches] for touches, _, _ in rows],
        [c for _, c, _ in rows],
        [u for _, _, u in rows],
        stages=[[s for _, s in touches] for touches, _, _ in rows],
    )


@pytest.fixture
def hand() -> PathSet:
    return build(HAND)


# ---------------------------------------------------------------------- hand-worked
def test_funnel_hand_worked(hand: PathSet) -> None:
    f = funnel(hand, ORDER)
    np.testing.assert_array_equal(f.reached, [13, 10, 9, 3, 2])
    np.testing.assert_array_equal(f.moved_on, [9, 4, 2, 2, 0])
    np.testing.assert_array_equal(f.converted, [0, 2, 3, 0, 1])
    np.testing.assert_array_equal(f.dropped_out, [4, 3, 1, 1, 1])
    np.testing.assert_array_equal(f.looped_back, [0, 1, 3, 0, 0])
    np.testing.assert_array_equal(f.converting, [4, 4, 6, 1, 1])
    np.testing.assert_allclose(f.step_rate, [13 / 16, 10 / 13, 7 / 10, 2 / 9, 2 / 3])
    np.testing.assert_allclose(f.cumulative_rate, np.array([13, 10, 9, 3, 2]) / 16)
    np.testing.assert_allclose(f.conversion_rate, [4 / 13, 4 / 10, 6 / 9, 1 / 3, 1 / 2])
    rows = f.to_rows()
    assert [tuple(r) for r in rows] == [FUNNEL_COLUMNS] * 5
    assert rows[2]["stage"] == DE and rows[2]["step"] == 3 and rows[2]["looped_back"] == 3.0


def test_funnel_stage_nobody_reached_has_undefined_rates(hand: PathSet) -> None:
    f = funnel(hand, (*ORDER[:2], "evaluation", *ORDER[2:]))
    row = f.to_rows()[2]
    assert row["reached"] == 0 and row["conversion_rate"] is None
    assert f.to_rows()[3]["step_rate"] is None  # the previous stage had no journeys


def test_dropoff_hand_worked(hand: PathSet) -> None:
    d = dropoff(hand)
    got = {
        (s, c): (p, x)
        for s, c, p, x in zip(d.stages, d.channels, d.passing, d.dropped_out, strict=True)
    }
    assert got == {
        (AW, "search"): (5, 4),
        (AW, "social"): (7, 0),
        (AW, "direct"): (1, 0),
        (CO, "email"): (4, 2),
        (CO, "search"): (3, 0),
        (CO, "social"): (3, 1),
        (DE, "email"): (7, 1),
        (DE, "direct"): (1, 0),
        (DE, "search"): (1, 0),
        (RE, "email"): (3, 1),
        (AD, "social"): (2, 1),
    }
    assert np.all(np.diff(d.ci_low) <= 0), "ranked by lower bound"
    top = d.to_rows()[0]
    assert tuple(top) == DROPOFF_COLUMNS
    assert (top["rank"], top["stage"], top["channel"], top["rate"]) == (1, AW, "search", 0.8)


def test_dropoff_small_channel_does_not_outrank_a_measured_one() -> None:
    paths = build([([("tiny", AW)], 0, 1), ([("big", AW)], 60, 40)])
    d = dropoff(paths)
    assert d.channels == ("big", "tiny")
    assert d.rate.tolist() == [0.4, 1.0]
    assert d.ci_low[1] == pytest.approx(0.2065, abs=1e-4)


def test_dropoff_without_stages_reports_channels() -> None:
    paths = PathSet.from_lists([["a"], ["a", "b"]], [0, 1], [2, 1])
    d = dropoff(paths, level=0.9)
    assert d.stages == (None, None) and set(d.channels) == {"a", "b"}
    assert dict(zip(d.channels, d.dropped_out, strict=True)) == {"a": 2, "b": 1}


def test_wilson_matches_the_closed_form() -> None:
    """Against (2np + z^2 +- z sqrt(z^2 + 4np(1-p))) / (2(n + z^2)), another form of it."""
    x = np.array([0.0, 1.0, 4.0, 37.0, 10.0])
    n = np.array([10.0, 1.0, 5.0, 120.0, 10.0])
    p = x / n
    root = Z95 * np.sqrt(Z95**2 + 4 * n * p * (1 - p))
    low, high = wilson_interval(x, n, 0.95)
    np.testing.assert_allclose(low, (2 * n * p + Z95**2 - root) / (2 * (n + Z95**2)), atol=1e-12)
    np.testing.assert_allclose(high, (2 * n * p + Z95**2 + root) / (2 * (n + Z95**2)), atol=1e-12)


def test_loops_hand_worked(hand: PathSet) -> None:
    result = loops(hand, ORDER)
    assert result.to_rows() == [
        dict(zip(LOOP_COLUMNS, row, strict=True))
        for row in [
            (CO, AW, None, 1.0, 1.0, 0.0),
            (CO, AW, "search", 1.0, 1.0, 0.0),
            (DE, CO, None, 3.0, 3.0, 2.0),
            (DE, CO, "search", 1.0, 1.0, 1.0),
            (DE, CO, "social", 2.0, 2.0, 1.0),
        ]
    ]
    assert result.summary_rows() == [
        dict(zip(LOOP_SUMMARY_COLUMNS, row, strict=True))
        for row in [("looping", 4.0, 2.0, 0.5), ("straight", 12.0, 4.0, 4 / 12)]
    ]


def test_loops_count_steps_and_distinct_journeys() -> None:
    """Two identical steps back in one journey: two steps, one journey."""
    touches = [("a", AW), ("b", DE), ("a", CO), ("b", DE), ("a", CO), ("c", AW)]
    result = loops(build([(touches, 0, 2)]), ORDER)
    rows = {
        (r["from_stage"], r["to_stage"], r["channel"]): (r["journeys"], r["steps"])
        for r in result.to_rows()
    }
    assert rows == {
        (DE, CO, None): (2, 4),
        (DE, CO, "a"): (2, 4),
        (CO, AW, None): (2, 2),
        (CO, AW, "c"): (2, 2),
    }
    assert result.looping_journeys == 2 and result.straight_journeys == 0


def test_channel_roles_hand_worked(hand: PathSet) -> None:
    roles = channel_roles(hand)
    got = {r["channel"]: r for r in roles.to_rows()}
    assert tuple(got["email"]) == ROLE_COLUMNS
    expected = {  # opens, assists, closes, touched, ratio
        "search": (1, 3, 1, 3, 3.0),
        "social": (3, 1, 2, 4, 0.5),
        "email": (2, 3, 3, 6, 1.0),
        "direct": (0, 0, 0, 0, None),
    }
    for channel, values in expected.items():
        row = got[channel]
        assert (
            row["opens"],
            row["assists"],
            row["closes"],
            row["touched"],
            row["assist_ratio"],
        ) == values


def test_single_touch_journey_opens_and_closes() -> None:
    roles = channel_roles(PathSet.from_lists([["a"], ["a", "b"]], [3, 1], [0, 5]))
    assert roles.opens.tolist() == [4, 0] and roles.closes.tolist() == [3, 1]
    assert roles.assists.tolist() == [0, 0]


def test_timing_hand_worked() -> None:
    paths = PathSet.from_lists(
        [["a", "b", "c"], ["a", "c", "b"], ["b"], ["a", "a", "b"]],
        [1, 0, 1, 1],
        [0, 1, 0, 0],
        stages=[[AW, CO, DE], [AW, DE, CO], [CO], [AW, AW, CO]],
        times=[[0, 100, 400], [1000, 1500, 1700], [0], [10, 20, 60]],
        conversion_times=[1000, math.nan, 50, 500],
    )
    t = timing(paths, ORDER[:4], percentiles=(25, 50, 90))
    np.testing.assert_array_equal(t.to_conversion, [50, 490, 1000])
    assert t.conversions == 3
    assert t.stage_pairs == ((AW, CO), (CO, DE), (DE, RE))
    np.testing.assert_array_equal(t.pair_journeys, [3, 1, 0])
    np.testing.assert_array_equal(t.between_stages[0], [50, 100, 700])
    np.testing.assert_array_equal(t.between_stages[1], [300, 300, 300])
    rows = t.to_rows()
    assert len(rows) == 12 and tuple(rows[0]) == TIMING_COLUMNS
    assert rows[1] == dict(
        zip(TIMING_COLUMNS, ("time_to_conversion", None, None, 3.0, 50.0, 490.0), strict=True)
    )
    assert rows[-1] == dict(
        zip(TIMING_COLUMNS, ("stage_to_stage", DE, RE, 0.0, 90.0, None), strict=True)
    )
    assert len(timing(paths).to_rows()) == 4


# ---------------------------------------------------------------------- errors
def test_reports_need_stages_and_a_complete_order(hand: PathSet) -> None:
    plain = PathSet.from_lists([["a"]], [1], [0])
    with pytest.raises(MissingData):
        funnel(plain, ORDER)
    with pytest.raises(MissingData):
        loops(plain, ORDER)
    for bad in (ORDER[:4], (*ORDER, AW), (), AW):
        with pytest.raises(InvalidParameter) as err:
            funnel(hand, bad)
        assert err.value.name == "stage_order"


def test_timing_needs_times_and_valid_percentiles(hand: PathSet) -> None:
    with pytest.raises(MissingData):
        timing(hand, ORDER)
    timed = PathSet.from_lists([["a"]], [1], [0], times=[[0.0]], conversion_times=[5.0])
    for bad in ((), (50, 101), (-1,), ("x",)):
        with pytest.raises(InvalidParameter) as err:
            timing(timed, percentiles=bad)
        assert err.value.name == "percentiles"
    with pytest.raises(MissingData):
        timing(timed, ORDER)


@pytest.mark.parametrize("level", [0, 1, 1.5, True, "0.9"])
def test_dropoff_level_is_checked(hand: PathSet, level: object) -> None:
    with pytest.raises(InvalidParameter):
        dropoff(hand, level=level)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- reference and properties
Row = tuple[list[tuple[str, str]], float, float]


@st.composite
def journey_rows(draw: st.DrawFn) -> list[Row]:
    touch = st.tuples(st.sampled_from("abc"), st.sampled_from(ORDER))
    row = st.tuples(
        st.lists(touch, min_size=1, max_size=6),
        st.integers(0, 3).map(float),
        st.integers(0, 3).map(float),
    )
    return draw(st.lists(row, min_size=1, max_size=8))


def reference_funnel(rows: list[Row]) -> dict[str, list[float]]:
    """Straight from the documented definitions, one journey group at a time."""
    out: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(ORDER))
    for touches, c, u in rows:
        ranks = [ORDER.index(s) for _, s in touches]
        for k in set(ranks):
            later = ranks[ranks.index(k) + 1 :]
            out["reached"][k] += c + u
            out["converting"][k] += c
            out["continued"][k] += c + u if k == 0 or k - 1 in ranks else 0
            if ranks[-1] == k:
                out["converted"][k] += c
                out["dropped_out"][k] += u
            elif any(r > k for r in later):
                out["moved_on"][k] += c + u
            else:
                out["looped_back"][k] += c + u
    return out


def reference_dropoff(rows: list[Row]) -> dict[tuple[str, str], tuple[float, float]]:
    out: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for touches, c, u in rows:
        for ch, s in set(touches):
            out[(s, ch)][0] += c + u
        out[(touches[-1][1], touches[-1][0])][1] += u
    return {k: (p, x) for k, (p, x) in out.items() if p > 0}


def reference_loops(
    rows: list[Row],
) -> dict[tuple[str, str, str | None], tuple[float, float, float]]:
    out: dict[tuple[str, str, str | None], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for touches, c, u in rows:
        back = [
            (prev[1], cur[1], cur[0])
            for prev, cur in pairwise(touches)
            if ORDER.index(cur[1]) < ORDER.index(prev[1])
        ]
        for key in back + [(f, t, None) for f, t, _ in back]:
            out[key][1] += c + u
        for key in set(back) | {(f, t, None) for f, t, _ in back}:
            out[key][0] += c + u
            out[key][2] += c
    return {k: (j, s, c) for k, (j, s, c) in out.items() if j > 0}


def reference_roles(rows: list[Row]) -> dict[str, tuple[float, float, float, float]]:
    out: dict[str, list[float]] = defaultdict(lambda: [0.0] * 4)
    for touches, c, _ in rows:
        channels = [ch for ch, _ in touches]
        out[channels[0]][0] += c
        for ch in set(channels[1:-1]):
            out[ch][1] += c
        out[channels[-1]][2] += c
        for ch in set(channels):
            out[ch][3] += c
    return {k: (o, a, cl, t) for k, (o, a, cl, t) in out.items()}


@settings(max_examples=150, deadline=None)
@given(journey_rows())
def test_funnel_matches_reference_and_adds_up(rows: list[Row]) -> None:
    paths = build(rows)
    f = funnel(paths, ORDER)
    ref = reference_funnel(rows)
    for name in (
        "reached",
        "moved_on",
        "converted",
        "dropped_out",
        "looped_back",
        "converting",
        "continued",
    ):
        np.testing.assert_array_equal(getattr(f, name), ref[name], err_msg=name)
    # every journey that reached a stage has exactly one outcome there
    np.testing.assert_array_equal(
        f.reached, f.moved_on + f.converted + f.dropped_out + f.looped_back
    )
    # every journey ends in exactly one stage, converting or not
    assert f.converted.sum() == paths.total_conversions
    assert f.dropped_out.sum() == paths.total_nulls
    assert np.all(f.converting <= f.reached) and np.all(f.continued <= f.reached)
    aggregated = funnel(paths.aggregate(), ORDER)
    for name in ("reached", "moved_on", "converted", "dropped_out", "looped_back"):
        np.testing.assert_array_equal(getattr(aggregated, name), getattr(f, name))


@settings(max_examples=100, deadline=None)
@given(journey_rows())
def test_dropoff_loops_and_roles_match_reference(rows: list[Row]) -> None:
    paths = build(rows)
    d = dropoff(paths)
    got_d = {
        (s, c): (p, x)
        for s, c, p, x in zip(d.stages, d.channels, d.passing, d.dropped_out, strict=True)
    }
    assert got_d == reference_dropoff(rows)
    assert np.all((d.ci_low <= d.rate + 1e-12) & (d.rate <= d.ci_high + 1e-12))
    lp = loops(paths, ORDER)
    got_l = {
        (r["from_stage"], r["to_stage"], r["channel"]): (
            r["journeys"],
            r["steps"],
            r["conversions"],
        )
        for r in lp.to_rows()
    }
    assert got_l == reference_loops(rows)
    assert lp.looping_journeys + lp.straight_journeys == paths.total_conversions + paths.total_nulls
    roles = channel_roles(paths)
    got_r = {
        r["channel"]: (r["opens"], r["assists"], r["closes"], r["touched"]) for r in roles.to_rows()
    }
    assert got_r == reference_roles(rows)
    assert roles.opens.sum() == roles.closes.sum() == paths.total_conversions
