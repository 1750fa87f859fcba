"""The run store: lifecycle, cache look-ups, and the data version every write bumps."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from api import store
from api.store import runs

T0 = datetime(2024, 3, 1, tzinfo=UTC)
JOURNEYS = [
    ("a1", ["search", "email"], True, 10.0),
    ("a2", ["social"], False, 0.0),
    ("b2", ["email"], True, 5.0),
]

NEW = runs.NewRun(
    parameters={"models": ["linear"]},
    parameters_hash="h1",
    date_from=date(2024, 3, 1),
    date_to=date(2024, 3, 1),
    filtered=False,
    models_total=1,
)
ROW = {
    "model": "linear",
    "dimension": "channel",
    "channel": "search",
    "campaign": None,
    "stage": None,
    "conversions": 1.5,
    "value": 10.0,
    "share": 1.0,
    "removal_effect": None,
    "ci_low": None,
    "ci_high": None,
}


def write(
    conn: psycopg.Connection,
    workspace_id: int,
    journeys: list[tuple[str, list[str], bool, float]] = JOURNEYS,
) -> store.WriteCounts:
    w = store.JourneyWrite(conn, workspace_id)
    rows = [
        store.JourneyRow(
            jid,
            None,
            [w.coder.channel_code(c) for c in channels],
            [0] * len(channels),
            [T0 + timedelta(hours=k) for k in range(len(channels))],
            None,
            None,
            converted,
            value,
            T0 + timedelta(hours=9) if converted else None,
            T0.date(),
            json.dumps({}),
        )
        for jid, channels, converted, value in journeys
    ]
    w.copy(rows)
    counts = w.finish()
    conn.commit()
    return counts


def version(conn: psycopg.Connection, workspace_id: int) -> int:
    value = runs.data_version(conn, workspace_id)
    conn.commit()
    return value


def test_every_kind_of_write_bumps_the_version(conn, workspace) -> None:
    ws = workspace.workspace_id
    seen = [version(conn, ws)]
    write(conn, ws)  # inserts
    seen.append(version(conn, ws))
    write(conn, ws, [("a1", ["social"], True, 3.0)])  # a replace
    seen.append(version(conn, ws))
    store.delete_journey(conn, ws, "b2")
    conn.commit()
    seen.append(version(conn, ws))
    store.write_paths(conn, ws, [store.PathRow(None, [1], [0], 1.0, 0.0, 0.0)])
    conn.commit()
    seen.append(version(conn, ws))
    store.replace_stages(conn, ws, [("awareness", None), ("decision", None), ("loyal", None)])
    conn.commit()
    seen.append(version(conn, ws))
    assert seen == sorted(seen) and len(set(seen)) == len(seen), seen


def test_an_unchanged_resend_keeps_the_version(conn, workspace) -> None:
    ws = workspace.workspace_id
    write(conn, ws)
    before = version(conn, ws)
    assert write(conn, ws).unchanged == len(JOURNEYS)
    assert version(conn, ws) == before


def test_versions_are_per_workspace(conn, workspace) -> None:
    other = store.create_workspace(conn, "other")
    conn.commit()
    before = version(conn, other.workspace_id)
    write(conn, workspace.workspace_id)
    assert version(conn, other.workspace_id) == before


def test_a_run_moves_from_queued_to_succeeded(conn, workspace) -> None:
    ws = workspace.workspace_id
    run_id = runs.create_run(conn, ws, NEW, "queued")
    assert runs.get_run(conn, ws, run_id)["status"] == "queued"
    runs.mark_running(conn, ws, run_id)
    runs.set_progress(conn, ws, run_id, 0)
    assert runs.find_cached_run(conn, ws, "h1") is None
    totals = {"journeys": 2.0, "conversions": 1.0, "value": 10.0, "conversion_rate": 0.5}
    current = runs.data_version(conn, ws)
    runs.finish_run(conn, ws, run_id, version=current, totals=totals, warnings={}, rows=[ROW])
    got = runs.get_run(conn, ws, run_id)
    assert (got["status"], got["models_done"], got["totals"]) == ("succeeded", 1, totals)
    assert runs.run_rows(conn, ws, run_id) == [ROW]
    assert runs.find_cached_run(conn, ws, "h1") == run_id
    assert runs.find_cached_run(conn, ws, "h2") is None
    conn.commit()
    write(conn, ws)
    assert runs.find_cached_run(conn, ws, "h1") is None


def test_a_failed_run_keeps_its_problem(conn, workspace) -> None:
    ws = workspace.workspace_id
    run_id = runs.create_run(conn, ws, NEW, "running")
    problem = {"type": "/problems/invalid-input", "status": 422}
    runs.fail_run(conn, ws, run_id, problem)
    got = runs.get_run(conn, ws, run_id)
    assert (got["status"], got["error"]) == ("failed", problem)
    assert runs.find_cached_run(conn, ws, "h1") is None


def test_runs_are_listed_newest_first(conn, workspace) -> None:
    ws = workspace.workspace_id
    ids = [runs.create_run(conn, ws, NEW, "queued") for _ in range(3)]
    page = runs.list_runs(conn, ws, limit=2)
    assert [r["run_id"] for r in page] == ids[::-1][:2]
    rest = runs.list_runs(conn, ws, limit=2, after=(page[-1]["created_at"], page[-1]["run_id"]))
    assert [r["run_id"] for r in rest] == ids[:1]


def test_another_workspace_cannot_read_a_run(conn, workspace) -> None:
    run_id = runs.create_run(conn, workspace.workspace_id, NEW, "queued")
    other = store.create_workspace(conn, "other")
    with pytest.raises(store.NotFoundError):
        runs.get_run(conn, other.workspace_id, run_id)
    assert runs.list_runs(conn, other.workspace_id, limit=10) == []


def test_settings_round_trip(conn, workspace) -> None:
    ws = workspace.workspace_id
    assert runs.get_settings(conn, ws) == {}
    assert runs.put_settings(conn, ws, {"lookback_days": 7}) == {"lookback_days": 7}
    assert runs.get_settings(conn, ws) == {"lookback_days": 7}
