"""Shared hypothesis strategies for path sets.

``path_specs()`` draws a :class:`PathSpec`: plain Python lists (channel names per path,
optional stages and touch times, totals) that build a :class:`PathSet` and can be
relabelled or reordered first, which is what the invariant tests need. ``path_sets()``
draws the built :class:`PathSet` directly.

Counts are small integers (as aggregated journeys are), values are cents, and by
default at least one journey converts. Every option has a general default so other
test modules in this folder can use them as they are::

    from conftest import path_sets, path_specs
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from attribution import PathSet

CHANNELS = (
    "search",
    "email",
    "social",
    "display",
    "direct",
    "referral",
    "video",
    "affiliate",
)
STAGES = ("awareness", "consideration", "decision", "retention", "advocacy")

EPOCH = 1_700_000_000.0
"""A fixed start for drawn touch times (seconds since the epoch)."""

DAY = 86_400.0


@dataclass(frozen=True)
class PathSpec:
    """Paths as plain lists, before encoding.

    ``conversion_times`` entries are NaN for paths that did not convert.
    """

    paths: tuple[tuple[str, ...], ...]
    conversions: tuple[float, ...]
    nulls: tuple[float, ...]
    value: tuple[float, ...]
    stages: tuple[tuple[str, ...], ...] | None = None
    times: tuple[tuple[float, ...], ...] | None = None
    conversion_times: tuple[float, ...] | None = None

    def build(self) -> PathSet:
        return PathSet.from_lists(
            [list(p) for p in self.paths],
            list(self.conversions),
            list(self.nulls),
            list(self.value),
            stages=None if self.stages is None else [list(s) for s in self.stages],
            times=None if self.times is None else [list(t) for t in self.times],
            conversion_times=None if self.conversion_times is None else list(self.conversion_times),
        )

    @property
    def channels(self) -> tuple[str, ...]:
        """Channel names in order of first appearance."""
        return tuple(dict.fromkeys(c for p in self.paths for c in p))

    def relabel(self, mapping: Mapping[str, str]) -> PathSpec:
        """Rename channels (unmapped names stay); a permutation keeps channels distinct."""
        paths = tuple(tuple(mapping.get(c, c) for c in p) for p in self.paths)
        return replace(self, paths=paths)

    def permute(self, order: Sequence[int]) -> PathSpec:
        """The same paths listed in ``order``."""

        def pick(rows: tuple[Any, ...] | None) -> Any:
            return None if rows is None else tuple(rows[i] for i in order)

        return PathSpec(
            paths=pick(self.paths),
            conversions=pick(self.conversions),
            nulls=pick(self.nulls),
            value=pick(self.value),
            stages=pick(self.stages),
            times=pick(self.times),
            conversion_times=pick(self.conversion_times),
        )


@st.composite
def path_specs(
    draw: st.DrawFn,
    *,
    min_paths: int = 1,
    max_paths: int = 10,
    min_channels: int = 1,
    max_channels: int = 5,
    max_length: int = 6,
    stages: bool | None = None,
    max_stages: int = 3,
    times: bool | None = False,
    min_conversions: int = 1,
    max_count: int = 5,
) -> PathSpec:
    """Draw a :class:`PathSpec`.

    ``stages`` and ``times``: True always, False never, None either way.
    ``min_conversions``: the total conversions are at least this (0 allows none).
    """
    k = draw(st.integers(min_channels, max_channels))
    names = draw(st.permutations(CHANNELS))[:k]
    n = draw(st.integers(min_paths, max_paths))
    paths = [
        tuple(draw(st.lists(st.sampled_from(names), min_size=1, max_size=max_length)))
        for _ in range(n)
    ]
    counts = st.integers(0, max_count)
    conversions = [float(draw(counts)) for _ in range(n)]
    nulls = [float(draw(counts)) for _ in range(n)]
    if n and sum(conversions) < min_conversions:
        conversions[draw(st.integers(0, n - 1))] += float(min_conversions)
    # a row stands for journeys: give each at least one
    nulls = [1.0 if c + u == 0 else u for c, u in zip(conversions, nulls, strict=True)]
    cents = st.integers(0, 100_000)
    value = [draw(cents) / 100.0 if c > 0 else 0.0 for c in conversions]
    spec = PathSpec(tuple(paths), tuple(conversions), tuple(nulls), tuple(value))
    if stages if stages is not None else draw(st.booleans()):
        stage_pool = STAGES[: draw(st.integers(1, max_stages))]
        spec = replace(
            spec, stages=tuple(tuple(draw(st.sampled_from(stage_pool)) for _ in p) for p in paths)
        )
    if times if times is not None else draw(st.booleans()):
        spec = _with_times(draw, spec)
    return spec


def _with_times(draw: st.DrawFn, spec: PathSpec) -> PathSpec:
    """Add increasing touch times per path and, maybe, conversion times."""
    gaps = st.integers(0, int(30 * DAY))
    all_times = []
    conversion_times = []
    for path, conv in zip(spec.paths, spec.conversions, strict=True):
        t = EPOCH + draw(st.integers(0, int(365 * DAY)))
        touch_times = []
        for _ in path:
            t += draw(gaps)
            touch_times.append(t)
        all_times.append(tuple(touch_times))
        conversion_times.append(t + draw(gaps) if conv > 0 else math.nan)
    with_conversion_times = draw(st.booleans())
    return replace(
        spec,
        times=tuple(all_times),
        conversion_times=tuple(conversion_times) if with_conversion_times else None,
    )


def path_sets(**options: Any) -> st.SearchStrategy[PathSet]:
    """Draw a built :class:`PathSet`; options as for :func:`path_specs`."""
    return path_specs(**options).map(PathSpec.build)
