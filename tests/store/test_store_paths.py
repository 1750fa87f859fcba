"""load_paths and load_journeys against a slow, obvious reference."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from api import store
from api.service.ingest import JourneyIn, TouchIn, code_batch, raw_json

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def make(jid: str, channels: list[str], stages: list[str | None], day: int, converted: bool,
         value: float = 0.0, **extra: Any) -> JourneyIn:  # fmt: skip
    touches = [
        TouchIn(
            channel=c, stage=s, timestamp=(T0 + timedelta(days=day, hours=k)).isoformat(), **extra
        )
        for k, (c, s) in enumerate(zip(channels, stages, strict=True))
    ]
    return JourneyIn(
        journey_id=jid,
        touchpoints=touches,
        converted=converted,
        value=value if converted else 0.0,
        attributes=raw_json({"tier": jid[0]}),
    )


JOURNEYS = [
    make("a1", ["search", "email"], ["awareness", "decision"], 0, True, 10.0),
    make("a2", ["search", "email"], ["awareness", "decision"], 0, False),
    make("b1", ["search", "email"], ["awareness", "decision"], 3, True, 5.0, device="mobile"),
    make("b2", ["social"], [None], 1, False, campaign="spring"),
    make("c1", ["email", "search", "email"], [None, None, "decision"], 2, True, 7.5),
]


@pytest.fixture
def loaded(conn: psycopg.Connection, workspace: store.Workspace) -> int:
    write = store.JourneyWrite(conn, workspace.workspace_id)
    write.copy(code_batch(write.coder, JOURNEYS, ""))
    write.finish()
    conn.commit()
    return workspace.workspace_id


def as_dict(arrays: dict[str, Any]) -> dict[tuple[Any, ...], tuple[float, float, float]]:
    """{(channel names, stage names): (conversions, nulls, value)} from the flat arrays."""
    out = {}
    names, offsets = arrays["channel_names"], arrays["offsets"]
    for i in range(len(offsets) - 1):
        a, b = offsets[i], offsets[i + 1]
        channels = tuple(names[t] for t in arrays["tokens"][a:b])
        stages = None
        if arrays["stage_tokens"] is not None:
            stages = tuple(
                arrays["stage_names"][s] if s >= 0 else None for s in arrays["stage_tokens"][a:b]
            )
        out[channels, stages] = (arrays["conversions"][i], arrays["nulls"][i], arrays["value"][i])
    return out


def reference(journeys: list[JourneyIn], keep: Any = lambda j: True) -> dict[Any, Any]:
    totals: dict[Any, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for j in journeys:
        if keep(j):
            key = (tuple(t.channel for t in j.touchpoints), tuple(t.stage for t in j.touchpoints))
            totals[key][0] += j.converted
            totals[key][1] += not j.converted
            totals[key][2] += j.value
    return {k: tuple(v) for k, v in totals.items()}


def test_load_paths_matches_the_reference(conn: psycopg.Connection, loaded: int) -> None:
    arrays = store.load_paths(conn, loaded)
    assert arrays["tokens"].dtype == np.int32 and arrays["offsets"].dtype == np.int64
    assert arrays["conversions"].dtype == np.float64
    assert as_dict(arrays) == reference(JOURNEYS)
    assert arrays["stage_names"] == list(store.DEFAULT_STAGES)


def test_date_range(conn: psycopg.Connection, loaded: int) -> None:
    arrays = store.load_paths(conn, loaded, date_from=date(2024, 3, 2), date_to=date(2024, 3, 3))
    first_days = {"b2", "c1"}
    assert as_dict(arrays) == reference(JOURNEYS, lambda j: j.journey_id in first_days)


def test_no_stages_means_none(conn: psycopg.Connection, workspace: store.Workspace) -> None:
    write = store.JourneyWrite(conn, workspace.workspace_id)
    write.copy(code_batch(write.coder, [make("z", ["a", "b"], [None, None], 0, True, 1.0)], ""))
    write.finish()
    arrays = store.load_paths(conn, workspace.workspace_id)
    assert arrays["stage_names"] is None and arrays["stage_tokens"] is None


def test_empty_workspace(conn: psycopg.Connection, workspace: store.Workspace) -> None:
    arrays = store.load_paths(conn, workspace.workspace_id)
    assert arrays["offsets"].tolist() == [0] and len(arrays["tokens"]) == 0


def test_engine_accepts_the_arrays(conn: psycopg.Connection, loaded: int) -> None:
    from attribution import PathSet

    paths = PathSet.from_arrays(**store.load_paths(conn, loaded))
    assert paths.conversions.sum() == 3
    journeys = PathSet.from_arrays(**store.load_journeys(conn, loaded))
    assert journeys.path_ids is not None and len(journeys.path_ids) == len(JOURNEYS)


def journey_ids(conn: psycopg.Connection, workspace_id: int, **filter: Any) -> list[str]:
    """Ids of the journeys load_journeys reads under a filter of these fields."""
    arrays = store.load_journeys(conn, workspace_id, filter=store.JourneyFilter(**filter))
    return list(arrays["path_ids"])


def test_load_journeys_times_and_filters(conn: psycopg.Connection, loaded: int) -> None:
    arrays = store.load_journeys(conn, loaded)
    assert arrays["path_ids"] == ["a1", "a2", "b1", "b2", "c1"]
    assert arrays["offsets"].tolist() == [0, 2, 4, 6, 7, 10]
    assert arrays["times"][0] == T0.timestamp()
    assert arrays["times"][1] == (T0 + timedelta(hours=1)).timestamp()
    assert np.isnan(arrays["conversion_times"][1])
    assert arrays["conversion_times"][0] == (T0 + timedelta(hours=1)).timestamp()
    assert journey_ids(conn, loaded, device="mobile") == ["b1"]
    assert journey_ids(conn, loaded, campaign="spring") == ["b2"]
    assert journey_ids(conn, loaded, attributes={"tier": "a"}) == ["a1", "a2"]
    assert journey_ids(conn, loaded, date_from=date(2024, 3, 4)) == ["b1"]
    assert journey_ids(conn, loaded, device="tv") == []
