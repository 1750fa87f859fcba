"""Grouping identical paths, for :meth:`attribution.paths.PathSet.aggregate`.

Paths are flat integer tokens with offsets, as in :class:`~attribution.paths.PathSet`.
Grouping hashes every path and checks each against its group's first path, falling
back to an exact grouping by bytes should two different paths share a hash; the
touches of each group's first path are then selected to build the merged set.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]


def _group_paths(tokens: IntArray, offsets: IntArray) -> tuple[IntArray, IntArray]:
    """Group identical paths: (index of each group's first path, group of each path).

    Groups are numbered in order of first appearance. Each path is hashed to 64
    bits (a random linear hash: the sum over touches of ``(token + 1)`` times a
    random odd number per position, modulo 2**64, mixed with the length), the hashes
    are grouped with one sort, and every path is then compared touch by touch with
    its group's first path. Should two different paths ever share a hash, that
    check fails and the exact dictionary grouping runs instead, so the result is
    always exact.
    """
    lengths = np.diff(offsets)
    if len(lengths) == 0 or lengths.min() == 0:
        return _group_paths_exact(tokens, offsets)
    position = np.arange(len(tokens), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    multipliers = _hash_multipliers(int(lengths.max()) + 1)
    # uint64 arithmetic wraps modulo 2**64 silently for arrays: that is the hash;
    # in-place steps keep the number of touch-sized temporaries down
    mixed = tokens.astype(np.uint64)
    mixed += np.uint64(1)
    mixed *= multipliers[1:][position]
    hashes = np.add.reduceat(mixed, offsets[:-1])
    del mixed
    hashes += lengths.astype(np.uint64) * multipliers[0]
    first, inverse = _group_hashes(hashes)
    if not _same_as_first(tokens, offsets, position, first[inverse]):
        return _group_paths_exact(tokens, offsets)
    return first, inverse


def _group_hashes(hashes: NDArray[np.uint64]) -> tuple[IntArray, IntArray]:
    """Group equal hashes with one sort; groups numbered in order of first appearance."""
    order = np.argsort(hashes)
    ordered = hashes[order]
    is_start = np.empty(len(order), dtype=bool)
    is_start[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=is_start[1:])
    starts = np.flatnonzero(is_start)
    group_sorted = np.cumsum(is_start) - 1
    first_sorted = np.minimum.reduceat(order, starts)
    by_first = np.argsort(first_sorted)
    relabel = np.empty_like(by_first)
    relabel[by_first] = np.arange(len(by_first))
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = relabel[group_sorted]
    return first_sorted[by_first].astype(np.int64), inverse


def _hash_multipliers(n: int) -> NDArray[np.uint64]:
    """``n`` fixed pseudo-random odd 64-bit numbers (the same in every process)."""
    draws = np.random.default_rng(0x5EED).integers(0, 2**63, size=n, dtype=np.uint64)
    odd: NDArray[np.uint64] = draws * np.uint64(2) + np.uint64(1)
    return odd


def _same_as_first(
    tokens: IntArray, offsets: IntArray, position: IntArray, representative: IntArray
) -> bool:
    """True when every path equals its representative path, touch for touch."""
    lengths = np.diff(offsets)
    if not np.array_equal(lengths[representative], lengths):
        return False
    same_touch = np.repeat(offsets[representative], lengths) + position
    return bool(np.array_equal(tokens[same_touch], tokens))


def _group_paths_exact(tokens: IntArray, offsets: IntArray) -> tuple[IntArray, IntArray]:
    """Group identical paths by their raw bytes: one dictionary look-up per path."""
    data = tokens.astype(np.int32).tobytes()
    starts = (offsets * 4).tolist()
    index: dict[bytes, int] = {}
    inverse = np.empty(len(offsets) - 1, dtype=np.int64)
    first: list[int] = []
    for i in range(len(offsets) - 1):
        key = data[starts[i] : starts[i + 1]]
        g = index.get(key)
        if g is None:
            g = index[key] = len(first)
            first.append(i)
        inverse[i] = g
    first_arr = np.asarray(first, dtype=np.int64)
    return first_arr, inverse


def _touch_selector(offsets: IntArray, chosen: IntArray) -> IntArray:
    """Indices of all touches of the chosen paths, in order."""
    lengths = offsets[chosen + 1] - offsets[chosen]
    starts = np.repeat(offsets[chosen], lengths)
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    selector: IntArray = starts + within
    return selector
