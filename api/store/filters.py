"""The journey filter: which raw journeys a read selects.

Every query that reads journeys by a selection includes the ``journey_filter`` fragment
(``sql/queries/selections.sql``) and takes the parameters of :meth:`JourneyFilter.params`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class JourneyFilter:
    """Conversion date range (inclusive; last touch date when a journey did not convert),
    attribute containment (the journey's attributes hold these keys and values), and a
    device or campaign among its touches. ``None`` leaves a filter off."""

    date_from: date | None = None
    date_to: date | None = None
    attributes: Mapping[str, Any] | None = None
    device: str | None = None
    campaign: str | None = None

    def params(self, workspace_id: int, **extra: Any) -> dict[str, Any]:
        """Query parameters of the filter in ``workspace_id``, with the query's ``extra``."""
        return {
            "workspace_id": workspace_id,
            "date_from": self.date_from,
            "date_to": self.date_to,
            "attributes": None if self.attributes is None else json.dumps(self.attributes),
            "device": self.device,
            "campaign": self.campaign,
            **extra,
        }


NO_FILTER = JourneyFilter()
"""Every journey of the workspace."""
