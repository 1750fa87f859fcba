"""The journeys :func:`attribution.synthetic.generate` returns, and their outputs.

:class:`SyntheticJourneys` holds the generated journeys as flat integer-coded
arrays and gives them out as a :class:`~attribution.paths.PathSet` or as records in
the API's JSON shape. The names of the synthetic world (channels, stages, devices,
campaigns, segments, regions) are here too. Import all of it from
:mod:`attribution.synthetic`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .paths import PathSet

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
SmallArray = NDArray[np.int8]

CHANNEL_NAMES = (
    "paid_search", "social_ads", "email", "organic_social", "influencer",
    "referral", "direct", "display", "affiliate", "video",
)  # fmt: skip
"""Names of the first channels; further channels are ``channel_11``, ``channel_12``, …"""

STAGE_NAMES = ("awareness", "consideration", "decision", "retention", "advocacy")
"""Default stage names, in funnel order; further stages are ``stage_6``, …"""

DEVICE_NAMES = ("desktop", "mobile", "tablet")
CAMPAIGN_NAMES = (
    "always_on", "brand", "spring_sale", "retargeting", "newsletter", "product_launch",
)  # fmt: skip
SEGMENT_NAMES = ("new", "returning", "loyal")
REGION_NAMES = ("na", "eu", "apac", "latam")


@dataclass(frozen=True, eq=False)
class SyntheticJourneys:
    """Generated journeys, one per row, integer-coded with flat per-touch arrays.

    ``tokens``, ``stage_tokens``, ``times``, ``devices`` and ``campaigns`` are per
    touch; journey ``i`` owns ``[offsets[i], offsets[i + 1])``. ``converted``,
    ``value``, ``conversion_times`` (NaN where not converted), ``journey_ids``,
    ``customer_ids``, ``segments`` and ``regions`` are per journey.
    ``true_effects[c]`` is channel ``c``'s per-touch lift in the noisy-OR.
    """

    channel_names: tuple[str, ...]
    stage_names: tuple[str, ...]
    tokens: IntArray
    stage_tokens: IntArray
    offsets: IntArray
    times: FloatArray
    converted: NDArray[np.bool_]
    value: FloatArray
    conversion_times: FloatArray
    journey_ids: IntArray
    customer_ids: IntArray
    devices: SmallArray
    campaigns: SmallArray
    segments: SmallArray
    regions: SmallArray
    true_effects: FloatArray
    seed: int
    device_names: tuple[str, ...] = DEVICE_NAMES
    campaign_names: tuple[str, ...] = CAMPAIGN_NAMES
    segment_names: tuple[str, ...] = SEGMENT_NAMES
    region_names: tuple[str, ...] = REGION_NAMES

    @property
    def n_journeys(self) -> int:
        return len(self.offsets) - 1

    def journey_id(self, i: int) -> str:
        """The string id of journey ``i``; the seed is in it so data sets do not collide."""
        return f"j-{self.seed}-{int(self.journey_ids[i]):08d}"

    def customer_id(self, i: int) -> str:
        return f"c-{self.seed}-{int(self.customer_ids[i]):08d}"

    def to_pathset(self, stages: bool = True, aggregate: bool = True) -> PathSet:
        """The journeys as a :class:`PathSet`.

        Parameters
        ----------
        stages : bool
            Keep each touch's stage (paths are then unique channel *and* stage paths).
        aggregate : bool
            Merge identical paths, summing conversions, nulls and value (touch times
            and ids are dropped). Otherwise one path per journey, with touch times,
            conversion times and journey ids.
        """
        conv = self.converted.astype(np.float64)
        paths = PathSet.from_arrays(
            self.channel_names,
            self.tokens,
            self.offsets,
            conv,
            1.0 - conv,
            self.value,
            stage_names=self.stage_names if stages else None,
            stage_tokens=self.stage_tokens if stages else None,
            times=None if aggregate else self.times,
            conversion_times=None if aggregate else self.conversion_times,
            path_ids=None if aggregate else [self.journey_id(i) for i in range(self.n_journeys)],
        )
        return paths.aggregate() if aggregate else paths

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[dict[str, Any]]:
        """Journeys ``start:stop`` in the API's JSON shape, one dict per journey.

        Timestamps are ISO 8601 in UTC with a ``Z``; ``converted_at`` and ``value``
        are None and 0 for journeys that did not convert.
        """
        stop = self.n_journeys if stop is None else min(stop, self.n_journeys)
        if start >= stop:
            return
        lo, hi = int(self.offsets[start]), int(self.offsets[stop])
        stamps = _iso(self.times[lo:hi])
        conv_stamps = _iso(np.nan_to_num(self.conversion_times[start:stop]))
        channels = [self.channel_names[c] for c in self.tokens[lo:hi].tolist()]
        stages = [self.stage_names[s] for s in self.stage_tokens[lo:hi].tolist()]
        devices = [self.device_names[d] for d in self.devices[lo:hi].tolist()]
        campaigns = [self.campaign_names[c] for c in self.campaigns[lo:hi].tolist()]
        bounds = (self.offsets[start : stop + 1] - lo).tolist()
        for k, i in enumerate(range(start, stop)):
            converted = bool(self.converted[i])
            yield {
                "journey_id": self.journey_id(i),
                "customer_id": self.customer_id(i),
                "touchpoints": [
                    {
                        "channel": channels[t],
                        "stage": stages[t],
                        "timestamp": stamps[t],
                        "campaign": campaigns[t],
                        "device": devices[t],
                    }
                    for t in range(bounds[k], bounds[k + 1])
                ],
                "converted": converted,
                "value": float(self.value[i]),
                "converted_at": conv_stamps[k] if converted else None,
                "attributes": {
                    "segment": self.segment_names[self.segments[i]],
                    "region": self.region_names[self.regions[i]],
                },
            }


def _iso(seconds: FloatArray) -> list[str]:
    """ISO 8601 UTC strings with a ``Z``, converted in one vectorised call."""
    stamps = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    return [s + "Z" for s in stamps.tolist()]
