"""Campaign credit: channel-campaign pairs as states, players and table keys.

The hand-worked example has four journeys (channel:campaign per touch):

======  ==============================  =========  =====
path    touches                         converted  value
======  ==============================  =========  =====
1       search:brand > email:weekly     yes        100
2       search:generic                  yes        50
3       email:weekly                    no         0
4       search:brand                    no         0
======  ==============================  =========  =====

With b = search:brand, g = search:generic, w = email:weekly, the order-1 chain has
start -> b 2/4, g 1/4, w 1/4; b -> w 1/2, null 1/2; w -> conversion 1/2, null 1/2;
g -> conversion 1. P(conversion) = 1/2 x 1/2 x 1/2 + 1/4 + 1/4 x 1/2 = 1/2.
Without b: 1/4 + 1/8 = 3/8 (effect 1/4); without g: 1/4 (effect 1/2); without w:
1/4 (effect 1/2); without search (b and g): 1/8 (effect 3/4). Normalised to 2
conversions the pairs get 0.4, 0.8 and 0.8. The expected value is 37.5 (w exits
with value 100, g with 50); without b it is 25, without g 25, without w 12.5, so
the value effects are 1/3, 1/3, 2/3 and the value credit 37.5, 37.5, 75.

The Markov game's values v(S) (P(conversion) with only S kept) are v(b) = 0,
v(g) = 1/4, v(w) = 1/8, v(bg) = 1/4, v(bw) = 1/4, v(gw) = 3/8, v(bgw) = 1/2; the
Shapley values (weights 1/3, 1/6, 1/6, 1/3 over coalition sizes 0, 1, 1, 2) are
b 1/16, g 1/4, w 3/16, which scaled to 2 conversions are 0.25, 1.0, 0.75.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from attribution import MODEL_NAMES, Credit, InvalidParameter, PathSet, get_model
from attribution.campaigns import NOT_SET, OTHER, campaign_paths
from attribution.chain import build_chain

CAMPAIGNS = ("brand", "generic", "weekly")


def example() -> PathSet:
    paths = PathSet.from_lists(
        [["search", "email"], ["search"], ["email"], ["search"]],
        conversions=[1, 1, 0, 0],
        nulls=[0, 0, 1, 1],
        value=[100, 50, 0, 0],
    )
    return campaign_paths(paths, CAMPAIGNS, [0, 2, 1, 2, 0])


def campaign_table(credit: Credit) -> dict[tuple[str | None, str | None], tuple[float, float]]:
    rows = [r for r in credit.to_rows() if r["dimension"] == "campaign"]
    return {(r["channel"], r["campaign"]): (r["conversions"], r["value"]) for r in rows}


def channel_table(credit: Credit) -> dict[str | None, tuple[float, float]]:
    rows = [r for r in credit.to_rows() if r["dimension"] == "channel"]
    return {r["channel"]: (r["conversions"], r["value"]) for r in rows}


HAND_WORKED = {
    "first_touch": {"brand": (1, 100), "generic": (1, 50), "weekly": (0, 0)},
    "last_touch": {"brand": (0, 0), "generic": (1, 50), "weekly": (1, 100)},
    "linear": {"brand": (0.5, 50), "generic": (1, 50), "weekly": (0.5, 50)},
    "markov": {"brand": (0.4, 37.5), "generic": (0.8, 37.5), "weekly": (0.8, 75)},
    "shapley": {"brand": (0.25, 25), "generic": (1.0, 50), "weekly": (0.75, 75)},
}


@pytest.mark.parametrize("model", sorted(HAND_WORKED))
def test_hand_worked_credit_per_campaign(model: str) -> None:
    got = campaign_table(get_model(model).attribute(example()))
    channel = {"brand": "search", "generic": "search", "weekly": "email"}
    want = {(channel[k], k): v for k, v in HAND_WORKED[model].items()}
    assert got.keys() == want.keys()
    for key, (conv, val) in want.items():
        assert got[key] == pytest.approx((conv, val), rel=1e-12, abs=1e-12), key


def test_markov_removal_effects_of_pairs_and_channels() -> None:
    rows = get_model("markov").attribute(example()).to_rows()
    effects = {(r["dimension"], r["channel"], r["campaign"]): r["removal_effect"] for r in rows}
    assert effects == pytest.approx(
        {
            ("channel", "search", None): 0.75,
            ("channel", "email", None): 0.5,
            ("campaign", "search", "brand"): 0.25,
            ("campaign", "search", "generic"): 0.5,
            ("campaign", "email", "weekly"): 0.5,
        },
        rel=1e-12,
    )


def dense_p_conversion(paths: PathSet, removed: set[int]) -> float:
    """P(conversion) of the order-1 chain over the set's states, by one dense solve,
    with the ``removed`` states' incoming transitions sent to null."""
    n = paths.n_states
    counts = np.zeros((n + 3, n + 3))  # states, then start, conversion, null
    start, conv, null = n, n + 1, n + 2
    for p in range(paths.n_paths):
        walk = [start, *paths.states[paths.offsets[p] : paths.offsets[p + 1]].tolist()]
        for a, b in itertools.pairwise(walk):
            counts[a, b] += paths.conversions[p] + paths.nulls[p]
        counts[walk[-1], conv] += paths.conversions[p]
        counts[walk[-1], null] += paths.nulls[p]
    for r in removed:
        counts[:, null] += counts[:, r]
        counts[:, r] = 0.0
    rows = counts.sum(axis=1, keepdims=True)
    q = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    transient = list(range(n + 1))
    absorbed = np.linalg.solve(np.eye(n + 1) - q[np.ix_(transient, transient)], q[: n + 1, conv])
    return float(absorbed[start])


def test_markov_pair_effects_match_an_independent_dense_solve() -> None:
    """A larger campaign set: every pair's removal effect against a dense solve."""
    rng = np.random.default_rng(7)
    lists = [[str(c) for c in rng.integers(0, 3, rng.integers(1, 5))] for _ in range(40)]
    conv = rng.integers(0, 3, 40)
    paths = PathSet.from_lists(lists, conversions=conv, nulls=rng.integers(1, 3, 40))
    campaigns = rng.integers(-1, 3, len(paths.tokens))
    cset = campaign_paths(paths, ("a", "b", "c"), campaigns).aggregate()
    credit = get_model("markov").attribute(cset)
    assert credit.removal_effects is not None
    base = dense_p_conversion(cset, set())
    rate = cset.total_conversions / (cset.total_conversions + cset.total_nulls)
    assert base == pytest.approx(rate, rel=1e-12)
    for c, s in zip(*np.nonzero(cset.state_present), strict=True):
        state = int(c) * cset.n_stage_columns + int(s)
        want = 1.0 - dense_p_conversion(cset, {state}) / base
        assert credit.removal_effects["campaign"][c, s] == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_channel_rows_are_the_marginal_of_campaign_rows(model: str) -> None:
    rng = np.random.default_rng(3)
    n = 30
    lengths = rng.integers(1, 5, n)
    lists = [[f"c{k}" for k in rng.integers(0, 4, m)] for m in lengths]
    times = [sorted(rng.uniform(0, 86_400 * 20, m).tolist()) for m in lengths]
    conv = rng.integers(0, 2, n)
    paths = PathSet.from_lists(
        lists, conversions=conv, nulls=1 - conv, value=conv * rng.uniform(10, 90, n),
        times=times, conversion_times=np.where(conv > 0, 86_400 * 21.0, np.nan),
    )  # fmt: skip
    names = tuple(f"k{j}" for j in range(6))
    cset = campaign_paths(paths, names, rng.integers(-1, 6, len(paths.tokens)), top_n=2)
    rows = get_model(model).attribute(cset).to_rows()
    dims = {r["dimension"] for r in rows}
    assert dims == {"channel", "campaign"}
    channels = {r["channel"]: r for r in rows if r["dimension"] == "channel"}
    for channel, row in channels.items():
        pairs = [r for r in rows if r["dimension"] == "campaign" and r["channel"] == channel]
        assert sum(r["conversions"] for r in pairs) == pytest.approx(row["conversions"], abs=1e-9)
        assert sum(r["value"] for r in pairs) == pytest.approx(row["value"], abs=1e-9)
        assert all(r["stage"] is None and r["campaign"] is not None for r in pairs)
    total = sum(r["conversions"] for r in channels.values())
    assert total == pytest.approx(cset.total_conversions, abs=1e-9)


def test_heuristic_campaign_credit_sums_to_the_channel_run() -> None:
    """Per-touch models give each channel the same credit with or without campaigns."""
    paths = example()
    plain = PathSet.from_lists(
        [["search", "email"], ["search"], ["email"], ["search"]],
        conversions=[1, 1, 0, 0], nulls=[0, 0, 1, 1], value=[100, 50, 0, 0],
    )  # fmt: skip
    for model in ("first_touch", "last_touch", "linear", "position_based"):
        with_campaigns = channel_table(get_model(model).attribute(paths))
        without = channel_table(get_model(model).attribute(plain))
        assert with_campaigns.keys() == without.keys()
        for channel, amounts in without.items():
            assert with_campaigns[channel] == pytest.approx(amounts, rel=1e-12)


def test_top_n_groups_the_rest_of_a_channel_into_other() -> None:
    # search: brand x3, generic x2, promo x1, one touch without; email: promo x1
    paths = PathSet.from_lists(
        [["search", "search", "search"], ["search", "search"], ["search", "search", "email"]],
        conversions=[1, 1, 1],
    )
    names = ("brand", "generic", "promo")
    codes = [0, 0, 1, 0, 1, 2, -1, 2]
    cset = campaign_paths(paths, names, codes, top_n=1)
    labels = [cset.stage_names[s] for s in cset.stage_tokens]  # type: ignore[index]
    assert labels == ["brand", "brand", OTHER, "brand", OTHER, OTHER, NOT_SET, "promo"]
    credit = get_model("linear").attribute(cset)
    keys = set(campaign_table(credit))
    assert keys == {
        ("search", "brand"), ("search", OTHER), ("search", NOT_SET), ("email", "promo")
    }  # fmt: skip
    assert campaign_table(credit)[("search", OTHER)][0] == pytest.approx(1 / 3 + 1 / 2 + 1 / 3)


def test_top_n_breaks_ties_by_name() -> None:
    paths = PathSet.from_lists([["search", "search"]], conversions=[1])
    cset = campaign_paths(paths, ("zeta", "alpha"), [0, 1], top_n=1)
    assert cset.stage_names is not None
    assert [cset.stage_names[s] for s in cset.stage_tokens] == [OTHER, "alpha"]  # type: ignore[union-attr]


def test_collapse_and_grouping_keep_campaign_states() -> None:
    paths = PathSet.from_lists([["google", "bing", "email"]], conversions=[1])
    cset = campaign_paths(paths, ("brand",), [0, 0, -1])
    grouped = cset.group_channels({"google": "search", "bing": "search"}).collapse_repeats()
    assert grouped.has_campaigns and not grouped.has_stages
    assert grouped.aggregate().has_campaigns
    assert grouped.paths_as_lists() == [["search", "email"]]
    keys = campaign_table(get_model("last_touch").attribute(grouped))
    assert keys == {("search", "brand"): (0.0, 0.0), ("email", NOT_SET): (1.0, 0.0)}


def test_campaign_states_drop_stages_and_bound_the_chain() -> None:
    paths = PathSet.from_lists(
        [["search", "email"]], conversions=[1], stages=[["awareness", "decision"]]
    )
    cset = campaign_paths(paths, ("a",), [0, 0])
    assert cset.stage_names == ("a",)
    assert build_chain(cset, 1).n_states == 2


@pytest.mark.parametrize("top_n", [0, -1, 1001, 2.5, True, "5"])
def test_top_n_is_checked(top_n: object) -> None:
    paths = PathSet.from_lists([["search"]], conversions=[1])
    with pytest.raises(InvalidParameter, match="top_n"):
        campaign_paths(paths, ("a",), [0], top_n=top_n)  # type: ignore[arg-type]
