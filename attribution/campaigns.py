"""Campaign sets: paths whose states are channel-campaign pairs.

A campaign run credits each (channel, campaign) pair the way a staged run credits
each (channel, stage) pair: :func:`campaign_paths` puts each touch's campaign in the
grid's columns (see "States" in :mod:`attribution.paths`), so every model's grid is
channel x campaign and its channel table is the grid's marginal.

So that a channel with a long tail of campaigns does not multiply the chain's states
and the Shapley players, each channel keeps its ``top_n`` campaigns by touches in the
set; its other campaigns become one pair, ``(other)``. Touches without a campaign are
``(not set)``, which is never merged into ``(other)`` and is not counted in the
``top_n``. A campaign whose name is one of these two labels joins that label's pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import _int_array, _names
from .exceptions import InvalidParameter, InvalidPaths
from .paths import PathSet

__all__ = ["DEFAULT_TOP_N", "MAX_TOP_N", "NOT_SET", "OTHER", "campaign_paths", "top_campaigns"]

NOT_SET = "(not set)"
"""The campaign of touches that carry none."""

OTHER = "(other)"
"""The campaign of a channel's touches outside its ``top_n`` campaigns."""

DEFAULT_TOP_N = 20
"""Campaigns kept per channel when a run does not say."""

MAX_TOP_N = 1000
"""The most campaigns a channel may keep (bounds the states of a chain)."""

IntArray = NDArray[np.int64]


def campaign_paths(
    paths: PathSet,
    campaign_names: Sequence[str],
    campaign_tokens: ArrayLike,
    top_n: int = DEFAULT_TOP_N,
) -> PathSet:
    """The set with each touch's (channel, campaign) pair as its state.

    Parameters
    ----------
    paths : PathSet
        The paths, one per journey or unique; their stages, if any, are dropped.
    campaign_names : sequence of str
        Campaign names, indexed by ``campaign_tokens``.
    campaign_tokens : array of int
        Aligned with ``paths.tokens``: each touch's campaign code, -1 when it has none.
    top_n : int, default 20
        Campaigns kept per channel, ranked by touches (ties by name); the rest of a
        channel's campaigns become ``(other)``.

    Returns
    -------
    PathSet
        The same paths, totals, times and ids, with ``columns="campaign"``:
        ``stage_names`` are the campaign labels and ``stage_tokens`` each touch's.
    """
    if isinstance(top_n, bool) or not isinstance(top_n, int | np.integer):
        raise InvalidParameter("top_n", top_n, f"an integer in [1, {MAX_TOP_N}]")
    if not 1 <= top_n <= MAX_TOP_N:
        raise InvalidParameter("top_n", top_n, f"an integer in [1, {MAX_TOP_N}]")
    names = _names(campaign_names, "campaign_names") if len(campaign_names) else ()
    codes = _int_array(campaign_tokens, "campaign_tokens")
    if len(codes) != len(paths.tokens):
        raise InvalidPaths(f"campaign_tokens has {len(codes)} entries, tokens {len(paths.tokens)}")
    if len(codes) and (codes.min() < -1 or codes.max() >= len(names)):
        raise InvalidPaths("campaign codes must index campaign_names (or be -1 for none)")
    labels, label_codes = top_campaigns(paths.tokens, paths.n_channels, names, codes, top_n)
    used = np.bincount(label_codes, minlength=len(labels)) > 0
    renumber = np.cumsum(used) - 1
    return replace(
        paths,
        stage_names=tuple(n for n, u in zip(labels, used, strict=True) if u),
        stage_tokens=renumber[label_codes].astype(np.int64),
        columns="campaign",
    )


def top_campaigns(
    channels: IntArray, n_channels: int, names: Sequence[str], codes: IntArray, top_n: int
) -> tuple[tuple[str, ...], IntArray]:
    """Labels and per-touch label codes, each channel's campaigns beyond ``top_n`` as
    ``(other)`` and touches without one as ``(not set)``.

    Touches per (channel, campaign) are counted with one ``bincount``; each channel's
    campaigns are ranked by a single sort of the (channel, -touches, name) keys.
    """
    n_names = len(names)
    has = codes >= 0
    counts = np.bincount(
        channels[has] * n_names + codes[has], minlength=n_channels * n_names
    ).reshape(n_channels, n_names)
    kept = _kept(counts, names, top_n)
    labels = [OTHER, NOT_SET]
    lut = np.array([labels.index(n) if n in labels else -1 for n in names], dtype=np.int64)
    for k in np.flatnonzero(lut < 0).tolist():
        lut[k] = len(labels)
        labels.append(names[k])
    out = np.full(len(codes), 1, dtype=np.int64)  # (not set)
    touch_kept = np.zeros(len(codes), dtype=bool)
    touch_kept[has] = kept[channels[has], codes[has]]
    out[has] = 0  # (other), unless kept
    out[touch_kept] = lut[codes[touch_kept]]
    return tuple(labels), out


def _kept(counts: NDArray[np.int64], names: Sequence[str], top_n: int) -> NDArray[np.bool_]:
    """(channel, campaign) pairs among their channel's ``top_n`` by touches."""
    n_names = counts.shape[1]
    if n_names == 0:
        return np.zeros(counts.shape, dtype=bool)
    by_name = np.empty(n_names, dtype=np.int64)
    by_name[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(n_names)
    order = np.lexsort((np.broadcast_to(by_name, counts.shape), -counts), axis=1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n_names)[None, :], axis=1)
    kept: NDArray[np.bool_] = (rank < top_n) & (counts > 0)
    return kept
