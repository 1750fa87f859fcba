"""The channel roles report of :mod:`attribution.journeys`: open, assist, close."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._reports import _cells, _distinct, _ratio, _rows, _sum_by
from .paths import PathSet

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

ROLE_COLUMNS = ("channel", "opens", "assists", "closes", "touched", "assist_ratio")


@dataclass(frozen=True, eq=False)
class ChannelRoles:
    """How each channel takes part in converting journeys (see :func:`channel_roles`)."""

    channels: tuple[str, ...]
    opens: FloatArray
    assists: FloatArray
    closes: FloatArray
    touched: FloatArray

    @property
    def assist_ratio(self) -> FloatArray:
        """Assisted over closed conversions; NaN where the channel closes none."""
        return _ratio(self.assists, self.closes)

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per channel in the path set's order; columns :data:`ROLE_COLUMNS`."""
        numbers = (self.opens, self.assists, self.closes, self.touched, self.assist_ratio)
        return _rows(ROLE_COLUMNS, [self.channels, *map(_cells, numbers)])


def channel_roles(paths: PathSet) -> ChannelRoles:
    """Per channel: converting journeys it opens, assists and closes.

    Parameters
    ----------
    paths : PathSet
        Paths, with or without stages; each path counts ``conversions`` converting
        journeys (its non-converting journeys play no part).

    Returns
    -------
    ChannelRoles
        One row per channel with the columns of :data:`ROLE_COLUMNS`.

    Notes
    -----
    In converting journeys: *opens* counts those whose first touch is the channel,
    *closes* those whose last touch is, *assists* those with the channel on at
    least one middle touch (neither first nor last; a journey counts once however
    many middle touches the channel has), and *touched* those with the channel on
    any touch. A single-touch journey counts as opened and closed by its channel
    and has no assist; a two-touch journey has no middle touch. The
    assisted-to-last-touch ratio is assists / closes: above 1, a channel helps
    more conversions than it closes.
    """
    k = paths.n_channels
    conv = paths.conversions
    first = paths.tokens[paths.offsets[:-1]]
    last = paths.tokens[paths.offsets[1:] - 1]
    length = paths.lengths[paths.path_index]
    middle = (paths.position > 0) & (paths.position < length - 1)
    return ChannelRoles(
        channels=paths.channel_names,
        opens=_sum_by(first, conv, k),
        assists=_per_channel_journeys(paths, middle, conv),
        closes=_sum_by(last, conv, k),
        touched=_per_channel_journeys(paths, np.ones(len(paths.tokens), dtype=bool), conv),
    )


def _per_channel_journeys(paths: PathSet, touches: BoolArray, weight: FloatArray) -> FloatArray:
    """Per channel, the weight of the paths with at least one selected touch of it."""
    k = paths.n_channels
    pairs = _distinct(paths.path_index[touches] * k + paths.tokens[touches])
    return _sum_by(pairs % k, weight[pairs // k], k)
