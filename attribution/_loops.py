"""The loops report of :mod:`attribution.journeys`: journeys going back a stage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._reports import _cells, _distinct, _ratio, _rows, _stage_ranks, _sum_by
from .paths import PathSet

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

LOOP_COLUMNS = ("from_stage", "to_stage", "channel", "journeys", "steps", "conversions")
LOOP_SUMMARY_COLUMNS = ("kind", "journeys", "conversions", "conversion_rate")


@dataclass(frozen=True, eq=False)
class Loops:
    """Journeys going back to earlier stages (see :func:`loops`)."""

    from_stages: tuple[str, ...]
    to_stages: tuple[str, ...]
    channels: tuple[str | None, ...]
    journeys: FloatArray
    steps: FloatArray
    conversions: FloatArray
    looping_journeys: float
    looping_conversions: float
    straight_journeys: float
    straight_conversions: float

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per (from, to) with channel None, then per channel; :data:`LOOP_COLUMNS`."""
        numbers = map(_cells, (self.journeys, self.steps, self.conversions))
        return _rows(LOOP_COLUMNS, [self.from_stages, self.to_stages, self.channels, *numbers])

    def summary_rows(self) -> list[dict[str, Any]]:
        """Looping against straight journeys; columns :data:`LOOP_SUMMARY_COLUMNS`."""
        journeys = np.array([self.looping_journeys, self.straight_journeys])
        conversions = np.array([self.looping_conversions, self.straight_conversions])
        rates = _ratio(conversions, journeys)
        return _rows(
            LOOP_SUMMARY_COLUMNS,
            [("looping", "straight"), *map(_cells, (journeys, conversions, rates))],
        )


def loops(paths: PathSet, stage_order: Sequence[str]) -> Loops:
    """Journeys that go back to an earlier stage: how often, where, through which channel.

    Parameters
    ----------
    paths : PathSet
        Paths with stages; each path counts ``conversions + nulls`` journeys.
    stage_order : sequence of str
        Stage names first to last; must name every stage in the paths.

    Returns
    -------
    Loops
        Transition rows and the looping-against-straight summary.

    Notes
    -----
    A *step back* is a touch whose stage is earlier in ``stage_order`` than the
    previous touch's stage; it goes *from* the previous touch's stage *to* its own,
    *through* its own channel. A journey *loops* when it has at least one step back,
    and is *straight* otherwise. Per (from, to) and per (from, to, channel):
    ``journeys`` counts the journeys with at least one such step, ``steps`` the steps
    themselves (a journey stepping back twice the same way counts twice) and
    ``conversions`` the converting journeys among ``journeys``. Rows with channel
    None sum over channels (their journeys are distinct journeys, not a sum).
    The summary compares conversions / journeys of looping and straight journeys.
    """
    rank = _stage_ranks(paths, stage_order)
    n_stages, n_channels = len(stage_order), paths.n_channels
    weight = paths.conversions + paths.nulls
    back = np.zeros(len(rank), dtype=bool)
    back[1:] = rank[1:] < rank[:-1]
    back[paths.offsets[:-1]] = False  # a first touch has no previous touch in its path
    at = np.flatnonzero(back)
    owner = paths.path_index[at]
    pair = rank[at - 1] * n_stages + rank[at]
    # channel code 0 stands for "all channels", channel c is c + 1: totals sort first
    keys = np.concatenate([pair * (n_channels + 1), pair * (n_channels + 1) + paths.tokens[at] + 1])
    owners = np.concatenate([owner, owner])
    n_keys = n_stages * n_stages * (n_channels + 1)
    steps = _sum_by(keys, weight[owners], n_keys)
    distinct = _distinct(owners * n_keys + keys)
    who, what = np.divmod(distinct, n_keys)
    journeys = _sum_by(what, weight[who], n_keys)
    conversions = _sum_by(what, paths.conversions[who], n_keys)
    looping = np.zeros(paths.n_paths, dtype=bool)
    looping[owner] = True
    used = np.flatnonzero(journeys > 0)
    pair_code, channel = np.divmod(used, n_channels + 1)
    src, dst = np.divmod(pair_code, n_stages)
    names = tuple(stage_order)
    return Loops(
        from_stages=tuple(names[s] for s in src.tolist()),
        to_stages=tuple(names[s] for s in dst.tolist()),
        channels=tuple(None if c == 0 else paths.channel_names[c - 1] for c in channel.tolist()),
        journeys=journeys[used],
        steps=steps[used],
        conversions=conversions[used],
        looping_journeys=float(weight[looping].sum()),
        looping_conversions=float(paths.conversions[looping].sum()),
        straight_journeys=float(weight[~looping].sum()),
        straight_conversions=float(paths.conversions[~looping].sum()),
    )
