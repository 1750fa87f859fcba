"""The synthetic journey generator, the vectorised path grouping and bench/generate.py."""

from __future__ import annotations

import csv
import importlib.util
import json
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from attribution import InvalidParameter, PathSet, read_ca_csv
from attribution import _grouping as grouping
from attribution.synthetic import (
    CHANNEL_NAMES,
    REFERENCE_TIME,
    STAGE_NAMES,
    SyntheticJourneys,
    generate,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def journeys() -> SyntheticJourneys:
    return generate(20_000, 12, seed=7)


def per_journey_lists(j: SyntheticJourneys) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    bounds = j.offsets.tolist()
    return [
        (tuple(j.tokens[a:b].tolist()), tuple(j.stage_tokens[a:b].tolist()))
        for a, b in pairwise(bounds)
    ]


# ---------------------------------------------------------------------- generator
def test_same_seed_same_journeys_other_seed_other_journeys() -> None:
    a, b, c = generate(2000, seed=3), generate(2000, seed=3), generate(2000, seed=4)
    for name in ("tokens", "stage_tokens", "offsets", "times", "converted", "value"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.offsets, c.offsets)


def test_names_and_shapes(journeys: SyntheticJourneys) -> None:
    j = journeys
    assert j.channel_names == (*CHANNEL_NAMES, "channel_11", "channel_12")
    assert j.stage_names == STAGE_NAMES
    n, t = j.n_journeys, len(j.tokens)
    assert j.offsets[0] == 0 and j.offsets[-1] == t and len(j.offsets) == n + 1
    for name in ("stage_tokens", "times", "devices", "campaigns"):
        assert len(getattr(j, name)) == t, name
    for name in ("converted", "value", "conversion_times", "customer_ids", "segments"):
        assert len(getattr(j, name)) == n, name
    assert j.tokens.min() >= 0 and j.tokens.max() < 12
    assert j.stage_tokens.min() >= 0 and j.stage_tokens.max() < 5
    assert j.true_effects.shape == (12,) and np.all((j.true_effects > 0) & (j.true_effects < 1))


def test_lengths_are_geometric_with_mean_four(journeys: SyntheticJourneys) -> None:
    lengths = np.diff(journeys.offsets)
    assert lengths.min() >= 1
    assert 3.9 < lengths.mean() < 4.1
    # geometric: P(L = 1) = 1 / mean
    assert 0.23 < np.mean(lengths == 1) < 0.27


def test_times_increase_within_journeys_and_lie_in_the_window(journeys: SyntheticJourneys) -> None:
    j = journeys
    steps = np.diff(j.times)
    within = np.ones(len(steps), dtype=bool)
    within[j.offsets[1:-1] - 1] = False  # a step from one journey's last touch to the next
    assert np.all(steps[within] >= 1)
    assert np.median(steps[within]) > 3600
    assert np.all(j.times == np.round(j.times))
    assert j.times.min() >= REFERENCE_TIME - 90 * 86400 and j.times.max() < REFERENCE_TIME
    last = j.times[j.offsets[1:] - 1]
    assert np.array_equal(np.isnan(j.conversion_times), ~j.converted)
    assert np.all(j.conversion_times[j.converted] > last[j.converted])
    assert np.all(j.conversion_times[j.converted] < REFERENCE_TIME)


def test_value_only_with_conversions(journeys: SyntheticJourneys) -> None:
    j = journeys
    assert np.all(j.value[j.converted] > 0) and np.all(j.value[~j.converted] == 0)
    assert 0.03 < j.converted.mean() < 0.25


def test_conversion_follows_the_documented_noisy_or(journeys: SyntheticJourneys) -> None:
    """Empirical conversions match the sum of the model's probabilities within 4 SE."""
    j = journeys
    starts = j.offsets[:-1]
    miss = np.multiply.reduceat(1 - j.true_effects[j.tokens], starts)
    deepest = np.maximum.reduceat(j.stage_tokens, starts)
    p = np.array([0.15, 0.4, 1, 1, 1])[deepest] * (1 - 0.99 * miss)
    assert abs(j.converted.sum() - p.sum()) < 4 * np.sqrt(np.sum(p * (1 - p)))


def test_popular_channels_come_first(journeys: SyntheticJourneys) -> None:
    counts = np.bincount(journeys.tokens, minlength=12)
    assert counts[:3].sum() > counts[-3:].sum() * 2


def test_journeys_loop_back_and_drop_out_at_every_stage(journeys: SyntheticJourneys) -> None:
    j = journeys
    back = np.diff(j.stage_tokens) < 0
    back[j.offsets[1:-1] - 1] = False
    assert 0.02 < back.sum() / j.n_journeys < 0.3
    last_stage = j.stage_tokens[j.offsets[1:] - 1]
    dropped = np.bincount(last_stage[~j.converted], minlength=5)
    assert np.all(dropped > 0)
    # drop-out is worst early: most failed journeys end in awareness or consideration
    assert dropped[:2].sum() > dropped[2:].sum()


def test_repeat_touches_occur(journeys: SyntheticJourneys) -> None:
    same = np.diff(journeys.tokens) == 0
    same[journeys.offsets[1:-1] - 1] = False
    assert same.mean() > 0.1


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"n_journeys": -1}, "n_journeys"),
        ({"n_journeys": 10, "n_channels": 0}, "n_channels"),
        ({"n_journeys": 10, "mean_length": 0.5}, "mean_length"),
        ({"n_journeys": 10, "advance_probability": 0.95}, "loop_probability"),
        ({"n_journeys": 10, "seed": -3}, "seed"),
    ],
)
def test_bad_parameters_are_named(options: dict[str, float], name: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        generate(**options)  # type: ignore[arg-type]
    assert err.value.name == name


def test_small_and_empty_sets() -> None:
    assert generate(0).to_pathset().n_paths == 0
    one = generate(3, n_channels=1, n_stages=1)
    assert one.channel_names == ("paid_search",) and one.stage_names == ("awareness",)
    assert len(list(one.records())) == 3


# ---------------------------------------------------------------------- path sets
def test_aggregated_pathset_keeps_totals_and_counts_unique_paths(
    journeys: SyntheticJourneys,
) -> None:
    j = journeys
    agg = j.to_pathset()
    assert agg.n_paths == len(set(per_journey_lists(j)))
    assert agg.total_conversions == j.converted.sum()
    assert agg.total_nulls == (~j.converted).sum()
    assert agg.total_value == pytest.approx(j.value.sum(), rel=1e-12)
    assert agg.times is None and agg.path_ids is None
    channels_only = j.to_pathset(stages=False)
    assert not channels_only.has_stages
    assert channels_only.n_paths == len({p for p, _ in per_journey_lists(j)})


def test_per_journey_pathset_carries_times_and_ids(journeys: SyntheticJourneys) -> None:
    raw = journeys.to_pathset(aggregate=False)
    assert raw.n_paths == journeys.n_journeys
    assert raw.path_ids is not None and raw.path_ids[5] == "j-7-00000005"
    np.testing.assert_array_equal(raw.times, journeys.times)
    np.testing.assert_array_equal(raw.conversions, journeys.converted)


def test_aggregate_matches_a_dictionary_of_paths(journeys: SyntheticJourneys) -> None:
    """The vectorised grouping gives what a plain dictionary gives, in first-seen order."""
    j = journeys
    expected: dict[tuple[tuple[int, ...], tuple[int, ...]], list[float]] = {}
    for k, key in enumerate(per_journey_lists(j)):
        acc = expected.setdefault(key, [0.0, 0.0, 0.0])
        acc[0] += float(j.converted[k])
        acc[1] += float(not j.converted[k])
        acc[2] += float(j.value[k])
    agg = j.to_pathset()
    got_keys = [
        (tuple(agg.tokens[a:b].tolist()), tuple(agg.stage_tokens[a:b].tolist()))  # type: ignore[index]
        for a, b in zip(agg.offsets[:-1], agg.offsets[1:], strict=True)
    ]
    assert got_keys == list(expected)
    totals = np.array(list(expected.values()))
    np.testing.assert_allclose(agg.conversions, totals[:, 0])
    np.testing.assert_allclose(agg.nulls, totals[:, 1])
    np.testing.assert_allclose(agg.value, totals[:, 2], rtol=1e-12)


def test_grouping_handles_prefixes_and_repeats() -> None:
    paths = [["a"], ["a", "a"], ["a", "b"], ["a"], ["b", "a"], ["a", "a"], ["a", "b", "a"]]
    ps = PathSet.from_lists(paths, conversions=[1, 0, 1, 1, 0, 1, 0], nulls=[0, 1, 1, 2, 1, 0, 1])
    agg = ps.aggregate()
    assert agg.paths_as_lists() == [["a"], ["a", "a"], ["a", "b"], ["b", "a"], ["a", "b", "a"]]
    np.testing.assert_array_equal(agg.conversions, [2, 1, 1, 0, 0])
    np.testing.assert_array_equal(agg.nulls, [2, 1, 1, 1, 1])


def test_hash_collisions_fall_back_to_exact_grouping(
    journeys: SyntheticJourneys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every hash equal, the touch-by-touch check fails and the exact path runs."""
    states = journeys.to_pathset(aggregate=False).states
    exact = grouping._group_paths_exact(states, journeys.offsets)
    monkeypatch.setattr(grouping, "_hash_multipliers", lambda n: np.zeros(n, dtype=np.uint64))
    first, inverse = grouping._group_paths(states, journeys.offsets)
    np.testing.assert_array_equal(first, exact[0])
    np.testing.assert_array_equal(inverse, exact[1])


# ---------------------------------------------------------------------- records
def test_records_have_the_api_shape(journeys: SyntheticJourneys) -> None:
    records = list(journeys.records(100, 140))
    assert len(records) == 40
    for k, r in enumerate(records):
        i = 100 + k
        assert r["journey_id"] == journeys.journey_id(i)
        assert set(r) == {
            "journey_id", "customer_id", "touchpoints", "converted", "value",
            "converted_at", "attributes",
        }  # fmt: skip
        assert set(r["attributes"]) == {"segment", "region"}
        assert len(r["touchpoints"]) == journeys.offsets[i + 1] - journeys.offsets[i]
        for tp in r["touchpoints"]:
            assert set(tp) == {"channel", "stage", "timestamp", "campaign", "device"}
            assert tp["timestamp"].endswith("Z")
        first = r["touchpoints"][0]
        assert (
            datetime.fromisoformat(first["timestamp"]).timestamp()
            == journeys.times[journeys.offsets[i]]
        )
        assert (r["converted_at"] is None) == (not r["converted"])
        json.dumps(r)
    assert list(journeys.records(journeys.n_journeys - 2, 10**9))[-1]["journey_id"] == (
        journeys.journey_id(journeys.n_journeys - 1)
    )


# ---------------------------------------------------------------------- bench/generate.py
def load_bench_generate():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("stages", [False, True])
def test_bench_generate_writes_ndjson_and_ca_csv(tmp_path: Path, stages: bool) -> None:
    bench = load_bench_generate()
    argv = ["--journeys", "500", "--channels", "6", "--seed", "2", "--out", str(tmp_path)]
    assert bench.main(argv + (["--stages"] if stages else [])) == 0
    [ndjson] = tmp_path.glob("journeys-*.ndjson")
    [paths_csv] = tmp_path.glob("paths-*.csv")
    lines = ndjson.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 500 and json.loads(lines[0])["journey_id"] == "j-2-00000000"
    with paths_csv.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header[:4] == ["path", "total_conversions", "total_null", "total_conversion_value"]
    expected = generate(500, 6, seed=2).to_pathset(stages=stages)
    got = read_ca_csv(paths_csv)
    assert got.n_paths == expected.n_paths and got.has_stages == stages
    assert got.total_conversions == expected.total_conversions
    assert got.total_nulls == expected.total_nulls
    assert got.total_value == pytest.approx(expected.total_value)
