"""Synchronous runs whose server process died are marked failed when runs are read;
background runs, held by the queue's jobs, are left to the queue."""

from __future__ import annotations

import psycopg
from flask.testing import FlaskClient

from api import store
from api.service import heartbeat as run_heartbeat
from api.service import runs as run_service
from api.store import runs


def _run(conn: psycopg.Connection, workspace: store.Workspace) -> str:
    plan = run_service.plan_run({"models": ["last_touch"]}, {})
    return runs.create_run(conn, workspace.workspace_id, plan.new_run(), "running")


def _stall(conn: psycopg.Connection, run_id: str, seconds: float) -> None:
    """Pretend the run's process went quiet ``seconds`` ago, as if it had died then."""
    conn.execute(
        "UPDATE attribution_runs SET heartbeat_at = clock_timestamp()"
        " - make_interval(secs => %s) WHERE run_id = %s",
        (seconds, run_id),
    )
    conn.commit()


def test_a_run_without_a_heartbeat_is_failed_when_read(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, workspace: store.Workspace
) -> None:
    run_id = _run(conn, workspace)
    _stall(conn, run_id, run_heartbeat.STALE_SECONDS + 1)
    run = client.get(f"/v1/attribution/runs/{run_id}", headers=auth).get_json()
    assert run["status"] == "failed"
    assert run["error"]["status"] == 503
    assert "stopped" in run["error"]["detail"]
    listed = client.get("/v1/attribution/runs", headers=auth).get_json()["runs"]
    assert [r["status"] for r in listed] == ["failed"]


def test_a_run_with_a_recent_heartbeat_stays_running(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, workspace: store.Workspace
) -> None:
    run_id = _run(conn, workspace)
    _stall(conn, run_id, run_heartbeat.STALE_SECONDS / 2)
    listed = client.get("/v1/attribution/runs", headers=auth).get_json()["runs"]
    assert [r["status"] for r in listed] == ["running"]


def test_the_heartbeat_touches_held_runs(
    conn: psycopg.Connection, database_url: str, workspace: store.Workspace
) -> None:
    run_id = _run(conn, workspace)
    _stall(conn, run_id, run_heartbeat.STALE_SECONDS + 1)
    database = store.Database(database_url, max_size=1)
    try:
        beat = run_heartbeat.Heartbeat(interval=3600)
        beat.hold(database, workspace.workspace_id, run_id)
        beat.beat()
    finally:
        database.close()
    assert run_heartbeat.sweep(conn, workspace.workspace_id) == []
    assert runs.get_run(conn, workspace.workspace_id, run_id)["status"] == "running"


def test_a_background_run_is_the_queues_to_recover_not_the_sweeps(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, workspace: store.Workspace
) -> None:
    response = client.post("/v1/attribution/runs", json={"models": ["linear"]}, headers=auth)
    run_id = response.get_json()["run_id"]
    _stall(conn, run_id, run_heartbeat.STALE_SECONDS + 1)
    assert run_heartbeat.sweep(conn, workspace.workspace_id) == []
    assert client.get(f"/v1/attribution/runs/{run_id}", headers=auth).get_json()["status"] == (
        "queued"
    )
