"""The maintained rollups always equal a fresh aggregation of the raw journeys, and
what a run reads for all data (the all-day totals a process holds, brought up to date
by the rows changed since) always equals a fresh aggregation too, through writes,
deletions and changes of the workspace time zone (which re-bucket every journey's day:
each day is checked against one computed here from the journey's times)."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CHANNELS = ["search", "email", "social"]
ZONES = ["UTC", "Asia/Tokyo", "America/Los_Angeles"]
HOURS = ["12:00:00", "23:30:00"]
STAGES = [None, "awareness", "decision"]

touches = st.lists(
    st.tuples(st.sampled_from(CHANNELS), st.sampled_from(STAGES), st.integers(0, 3)),
    min_size=1,
    max_size=4,
)
journeys = st.fixed_dictionaries(
    {
        "journey_id": st.sampled_from(["a", "b", "c", "d", "e"]),
        "customer_id": st.sampled_from(["x", "y"]),
        "touches": touches,
        "converted": st.booleans(),
        "value": st.sampled_from([0.0, 0.1, 2.5, 100.0]),
    }
)
client_paths = st.fixed_dictionaries(
    {
        "path": st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=2),
        "conversions": st.sampled_from([0.0, 1.0, 2.5]),
        "nulls": st.sampled_from([1.0, 3.0]),
        "date": st.sampled_from([None, "2024-03-01"]),
    }
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.lists(journeys, min_size=1, max_size=4)),
        st.tuples(st.just("bulk"), st.lists(journeys, min_size=1, max_size=4)),
        st.tuples(st.just("paths"), client_paths),
        st.tuples(st.just("delete"), st.sampled_from(["a", "b", "c", "d", "e"])),
        st.tuples(st.just("erase"), st.sampled_from(["x", "y"])),
        st.tuples(st.just("zone"), st.sampled_from(ZONES)),
    ),
    min_size=1,
    max_size=8,
)


def as_record(j: dict[str, Any]) -> dict[str, Any]:
    return {
        "journey_id": j["journey_id"],
        "customer_id": j["customer_id"],
        "touchpoints": [
            # odd days late in UTC: the next day in Tokyo, the same in Los Angeles
            {"channel": c, "stage": s, "timestamp": f"2024-03-0{day + 1}T{HOURS[day % 2]}Z"}
            for c, s, day in j["touches"]
        ],
        "converted": j["converted"],
        "value": j["value"] if j["converted"] else 0.0,
    }


def rollups(conn: psycopg.Connection, name: str, workspace_id: int) -> list[tuple[Any, ...]]:
    rows = conn.execute(store_query(name), {"workspace_id": workspace_id}).fetchall()
    return [(d, c, s, conv, nulls, round(v, 6)) for d, c, s, conv, nulls, v in rows]


def store_query(name: str) -> str:
    from api.store.sqlfiles import query

    return query(name)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_rollups_equal_a_fresh_group_by(
    client: FlaskClient, conn: psycopg.Connection, new_key: Any, ops: list[Any]
) -> None:
    # Each example gets a workspace of its own in the shared database.
    workspace_id, auth = new_key()
    zone = "UTC"
    for kind, arg in ops:
        if kind == "write":
            batch = {j["journey_id"]: as_record(j) for j in arg}  # one record per id
            response = client.post(
                "/v1/journeys", json={"journeys": list(batch.values())}, headers=auth
            )
            assert response.status_code == 200, response.get_json()
        elif kind == "bulk":  # a workspace's first journeys take the COPY route
            batch = {j["journey_id"]: as_record(j) for j in arg}
            body = "".join(json.dumps(r) + "\n" for r in batch.values())
            response = client.post(
                "/v1/journeys/bulk",
                data=body,
                headers={**auth, "Content-Type": "application/x-ndjson"},
            )
            assert response.status_code == 200, response.get_json()
        elif kind == "paths":
            response = client.post("/v1/paths", json={"paths": [arg]}, headers=auth)
            assert response.status_code == 200, response.get_json()
        elif kind == "delete":
            client.delete(f"/v1/journeys/{arg}", headers=auth)
        elif kind == "erase":
            client.delete(f"/v1/customers/{arg}", headers=auth)
        else:
            response = client.put("/v1/settings", json={"time_zone": arg}, headers=auth)
            assert response.status_code == 200, response.get_json()
            zone = arg
        conn.rollback()
        assert_days_in(conn, workspace_id, zone)
        assert rollups(conn, "stored_rollups", workspace_id) == rollups(
            conn, "fresh_rollups", workspace_id
        )
        assert totals(conn, "stored_path_totals", workspace_id) == totals(
            conn, "fresh_path_totals", workspace_id
        )
        assert read_paths(conn, workspace_id) == fresh_paths(conn, workspace_id)
        conn.rollback()


def assert_days_in(conn: psycopg.Connection, workspace_id: int, zone: str) -> None:
    """Every journey counts on the day of its conversion (else its latest touch) in
    ``zone``."""
    rows = conn.execute(
        "SELECT journey_id, day, converted_at, touched_at FROM journeys WHERE workspace_id = %s",
        (workspace_id,),
    ).fetchall()
    for journey_id, day, converted_at, touched_at in rows:
        expected = (converted_at or max(touched_at)).astimezone(ZoneInfo(zone)).date()
        assert day == expected, (journey_id, zone)


def totals(conn: psycopg.Connection, name: str, workspace_id: int) -> list[tuple[Any, ...]]:
    rows = conn.execute(store_query(name), {"workspace_id": workspace_id}).fetchall()
    return [(c, s, conv, nulls, round(v, 6)) for c, s, conv, nulls, v in rows]


def read_paths(conn: psycopg.Connection, workspace_id: int) -> dict[Any, tuple[float, ...]]:
    """What attribution reads for all data, by (channel names, stage codes)."""
    from api import store

    a = store.load_paths(conn, workspace_id)
    names, stage_names = a["channel_names"], a["stage_names"]
    out = {}
    for k in range(len(a["offsets"]) - 1):
        touches = range(a["offsets"][k], a["offsets"][k + 1])
        channels = tuple(names[a["tokens"][t]] for t in touches)
        stages = tuple(
            None if stage_names is None or a["stage_tokens"][t] < 0
            else stage_names[a["stage_tokens"][t]]
            for t in touches
        )  # fmt: skip
        out[(channels, stages)] = (a["conversions"][k], a["nulls"][k], round(a["value"][k], 6))
    return out


def fresh_paths(conn: psycopg.Connection, workspace_id: int) -> dict[Any, tuple[float, ...]]:
    """The same, summed afresh from raw journeys and client-aggregated paths."""
    rows = conn.execute(
        "SELECT j.channels, j.stages, j.converted::int, (NOT j.converted)::int, j.value"
        " FROM journeys j WHERE j.workspace_id = %(ws)s"
        " UNION ALL SELECT p.channels, p.stages, a.conversions, a.nulls, a.value"
        " FROM aggregated_paths a JOIN paths p USING (workspace_id, path_id)"
        " WHERE a.workspace_id = %(ws)s",
        {"ws": workspace_id},
    ).fetchall()
    channel = dict(
        conn.execute(
            "SELECT channel_id, name FROM channels WHERE workspace_id = %s", (workspace_id,)
        ).fetchall()
    )
    stage = dict(
        conn.execute(
            "SELECT stage_id, name FROM stages WHERE workspace_id = %s", (workspace_id,)
        ).fetchall()
    )
    sums: dict[Any, list[float]] = {}
    for channels, stages, conversions, nulls, value in rows:
        key = (tuple(channel[c] for c in channels), tuple(stage.get(s) for s in stages))
        total = sums.setdefault(key, [0.0, 0.0, 0.0])
        total[0] += conversions
        total[1] += nulls
        total[2] += value
    return {k: (c, n, round(v if c else 0.0, 6)) for k, (c, n, v) in sums.items() if c + n > 0}
