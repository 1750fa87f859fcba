"""The workspace time zone: days are counted in it when journeys are written, and a
change re-buckets the stored journeys (within the request, or as a job for a large
workspace), both ways."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.app import create_app
from api.config import Settings
from api.service import jobs
from api.store import zones
from api.store.dictionaries import lock_workspace
from tests.helpers import assert_problem, journey, pointers, touch
from tests.http.test_attribution import ingest, run

LATE = "2024-03-01T23:30:00Z"  # 08:30 on March 2 in Tokyo


def late_journey(jid: str, at: str = LATE) -> dict[str, Any]:
    return journey(jid, touchpoints=[touch("email", "2024-03-01T10:00:00Z")], converted=True,
                   value=10.0, converted_at=at)  # fmt: skip


def day_of(client: FlaskClient, auth: dict[str, str], jid: str) -> str:
    response = client.get(f"/v1/journeys/{jid}", headers=auth)
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["day"])


def conversions_on(client: FlaskClient, auth: dict[str, str], day: str) -> float:
    out = run(client, auth, models=["last_touch"], date_from=day, date_to=day)
    return float(out["totals"]["conversions"])


def put_zone(client: FlaskClient, auth: dict[str, str], zone: str) -> dict[str, Any]:
    response = client.put("/v1/settings", json={"time_zone": zone}, headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_a_late_utc_conversion_moves_to_the_next_day_in_tokyo_and_back(client, auth) -> None:
    assert client.get("/v1/settings", headers=auth).get_json()["time_zone"] == "UTC"
    ingest(client, auth, [late_journey("j1")])
    assert day_of(client, auth, "j1") == "2024-03-01"
    assert conversions_on(client, auth, "2024-03-01") == 1.0

    got = put_zone(client, auth, "Asia/Tokyo")
    assert (got["time_zone"], got["time_zone_change"]) == ("Asia/Tokyo", None)
    assert day_of(client, auth, "j1") == "2024-03-02"
    assert conversions_on(client, auth, "2024-03-01") == 0.0
    assert conversions_on(client, auth, "2024-03-02") == 1.0
    ingest(client, auth, [late_journey("j2")])  # new writes count in the new zone
    assert day_of(client, auth, "j2") == "2024-03-02"
    assert conversions_on(client, auth, "2024-03-02") == 2.0

    put_zone(client, auth, "UTC")
    assert [day_of(client, auth, j) for j in ("j1", "j2")] == ["2024-03-01"] * 2
    assert conversions_on(client, auth, "2024-03-01") == 2.0
    assert conversions_on(client, auth, "2024-03-02") == 0.0


def test_bulk_files_count_days_in_the_workspace_zone(client, auth) -> None:
    put_zone(client, auth, "Asia/Tokyo")
    body = "".join(json.dumps(late_journey(j)) + "\n" for j in ("b1", "b2"))
    response = client.post("/v1/journeys/bulk", data=body,
                           headers={**auth, "Content-Type": "application/x-ndjson"})  # fmt: skip
    assert response.status_code == 200, response.get_json()
    assert day_of(client, auth, "b1") == "2024-03-02"
    # a journey that did not convert counts on its last touch's day
    lone = journey("n1", touchpoints=[touch("email", "2024-03-05T15:00:00Z")], converted=False,
                   converted_at=None, value=0.0)  # fmt: skip
    ingest(client, auth, [lone])
    assert day_of(client, auth, "n1") == "2024-03-06"


def test_leaving_the_zone_out_of_a_put_means_utc(client, auth) -> None:
    ingest(client, auth, [late_journey("j1")])
    put_zone(client, auth, "Asia/Tokyo")
    got = client.put("/v1/settings", json={"collapse_repeats": True}, headers=auth).get_json()
    assert got["time_zone"] == "UTC"
    assert day_of(client, auth, "j1") == "2024-03-01"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "asia/tokyo", "", "+09:00", "Tokyo"])
def test_a_name_outside_the_iana_database_is_refused(client, auth, zone) -> None:
    ingest(client, auth, [late_journey("j1")])
    response = client.put(
        "/v1/settings", json={"time_zone": zone, "collapse_repeats": True}, headers=auth
    )
    assert pointers(assert_problem(response, 422)) == ["/time_zone"]
    got = client.get("/v1/settings", headers=auth).get_json()
    assert (got["time_zone"], got["collapse_repeats"]) == ("UTC", False)  # nothing written
    assert day_of(client, auth, "j1") == "2024-03-01"


@pytest.fixture
def job_client(settings: Settings) -> Iterator[FlaskClient]:
    """A server that re-buckets every workspace with journeys as a job."""
    app = create_app(dataclasses.replace(settings, rebucket_inline_journeys=0))
    app.config["TESTING"] = True
    yield app.test_client()
    app.extensions["pathcredit.db"].close()
    app.extensions["pathcredit.probe_db"].close()


def test_a_large_workspace_changes_zone_in_a_job_with_progress(job_client, auth) -> None:
    client = job_client
    ingest(client, auth, [late_journey("j1"), late_journey("j2", "2024-03-01T12:00:00Z")])
    got = put_zone(client, auth, "Asia/Tokyo")
    change = got["time_zone_change"]
    assert got["time_zone"] == "UTC"  # not in effect until the job commits
    assert (change["time_zone"], change["status"]) == ("Asia/Tokyo", "queued")
    assert (change["journeys_done"], change["journeys_total"]) == (0, 2)
    location = f"/v1/settings/time-zone-changes/{change['change_id']}"
    assert client.get(location, headers=auth).get_json()["status"] == "queued"
    assert day_of(client, auth, "j1") == "2024-03-01"
    # asking again is the same change; another one waits for it to end
    again = put_zone(client, auth, "Asia/Tokyo")["time_zone_change"]
    assert again["change_id"] == change["change_id"]
    response = client.put("/v1/settings", json={"time_zone": "Europe/Paris"}, headers=auth)
    assert pointers(assert_problem(response, 422)) == ["/time_zone"]

    jobs.work_until_empty(client.application.extensions["pathcredit.db"])
    done = client.get(location, headers=auth).get_json()
    assert (done["status"], done["journeys_done"], done["journeys_total"]) == ("succeeded", 2, 2)
    assert done["finished_at"] is not None
    got = client.get("/v1/settings", headers=auth).get_json()
    assert (got["time_zone"], got["time_zone_change"]) == ("Asia/Tokyo", None)
    assert [day_of(client, auth, j) for j in ("j1", "j2")] == ["2024-03-02", "2024-03-01"]
    assert conversions_on(client, auth, "2024-03-02") == 1.0

    back = put_zone(client, auth, "UTC")["time_zone_change"]
    jobs.work_until_empty(client.application.extensions["pathcredit.db"])
    location = f"/v1/settings/time-zone-changes/{back['change_id']}"
    assert client.get(location, headers=auth).get_json()["status"] == "succeeded"
    assert day_of(client, auth, "j1") == "2024-03-01"


def test_an_unknown_change_is_404(client, auth) -> None:
    response = client.get(
        "/v1/settings/time-zone-changes/00000000-0000-0000-0000-000000000000", headers=auth
    )
    assert_problem(response, 404)


def test_a_failed_change_leaves_the_zone_and_days_as_they_were(job_client, auth, conn) -> None:
    client = job_client
    ingest(client, auth, [late_journey("j1")])
    change = put_zone(client, auth, "Asia/Tokyo")["time_zone_change"]
    # a zone the database does not know makes the job's re-bucketing fail
    conn.execute(
        "UPDATE time_zone_changes SET time_zone = 'Nowhere/Atlantis' WHERE change_id = %s",
        (change["change_id"],),
    )
    conn.commit()
    jobs.work_until_empty(client.application.extensions["pathcredit.db"])
    location = f"/v1/settings/time-zone-changes/{change['change_id']}"
    failed = client.get(location, headers=auth).get_json()
    assert failed["status"] == "failed" and "Atlantis" in failed["error"]
    got = client.get("/v1/settings", headers=auth).get_json()
    assert (got["time_zone"], got["time_zone_change"]) == ("UTC", None)
    assert day_of(client, auth, "j1") == "2024-03-01"
    assert put_zone(client, auth, "Asia/Tokyo")["time_zone_change"]["status"] == "queued"


def test_a_cached_table_is_not_reused_after_a_change(client, auth) -> None:
    ingest(client, auth, [late_journey("j1")])
    url = "/v1/attribution/table?models=last_touch&date_from=2024-03-02&date_to=2024-03-02"
    assert client.get(url, headers=auth).headers["Pathcredit-Cache"] == "miss"
    assert client.get(url, headers=auth).headers["Pathcredit-Cache"] == "hit"
    put_zone(client, auth, "Asia/Tokyo")
    response = client.get(url, headers=auth)
    assert response.headers["Pathcredit-Cache"] == "miss"
    assert [r["conversions"] for r in response.get_json() if r["dimension"] == "channel"] == [1.0]


def test_a_write_during_a_change_waits_for_it_and_counts_in_the_new_zone(
    client, auth, conn, workspace
) -> None:
    ingest(client, auth, [late_journey("j1")])
    # a change as the job makes it, not yet committed
    lock_workspace(conn, workspace.workspace_id)
    zones.set_time_zone(conn, workspace.workspace_id, "Asia/Tokyo")
    zones.rebucket(conn, workspace.workspace_id, "Asia/Tokyo")
    writer = threading.Thread(target=ingest, args=(client, auth, [late_journey("j2")]))
    writer.start()
    writer.join(timeout=1.0)
    assert writer.is_alive()  # waiting on the workspace's write lock
    conn.commit()
    writer.join(timeout=30)
    assert not writer.is_alive()
    assert [day_of(client, auth, j) for j in ("j1", "j2")] == ["2024-03-02"] * 2


def test_a_put_during_a_running_change_does_not_wait_for_it(
    job_client, auth, conn, workspace
) -> None:
    client = job_client
    ingest(client, auth, [late_journey("j1")])
    change = put_zone(client, auth, "Asia/Tokyo")["time_zone_change"]
    lock_workspace(conn, workspace.workspace_id)  # as the running job holds it
    answers: list[Any] = []

    def put_both() -> None:
        for zone in ("Europe/Paris", "Asia/Tokyo"):
            answers.append(client.put("/v1/settings", json={"time_zone": zone}, headers=auth))

    putter = threading.Thread(target=put_both)
    putter.start()
    putter.join(timeout=20)
    answered = len(answers)  # before the lock is let go
    conn.rollback()
    putter.join()
    assert answered == 2
    assert pointers(assert_problem(answers[0], 422)) == ["/time_zone"]
    assert answers[1].get_json()["time_zone_change"]["change_id"] == change["change_id"]
