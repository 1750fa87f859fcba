"""A table or report that a selection trimmed or emptied says so, with the reason and
the count left out, instead of answering short or `[]` quietly.

Hand-worked data: three journeys converting on 2024-03-31 and one not converting.
- j1: email on 03-30, search on 03-31: both touches within any window.
- j2: display on 01-01 (90 days and 2 hours before), email on 03-30: a 30-day window
  drops one touch.
- j3: display on 01-15 alone, converting on 03-31: a 30-day window drops its only touch,
  so the journey is gone.
- j4: email on 03-31, not converting.
So `lookback_days=30` leaves out 2 of 6 touches and 1 journey.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.helpers import journey, touch

CONVERTED = "2024-03-31T12:00:00Z"
JOURNEYS = [
    journey(
        "j1",
        touchpoints=[
            touch("email", "2024-03-30T10:00:00Z"),
            touch("search", "2024-03-31T10:00:00Z"),
        ],
        converted_at=CONVERTED,
    ),
    journey(
        "j2",
        touchpoints=[
            touch("display", "2024-01-01T10:00:00Z"),
            touch("email", "2024-03-30T11:00:00Z"),
        ],
        converted_at=CONVERTED,
    ),
    journey("j3", touchpoints=[touch("display", "2024-01-15T10:00:00Z")], converted_at=CONVERTED),
    journey(
        "j4",
        touchpoints=[touch("email", "2024-03-31T09:00:00Z")],
        converted=False,
        converted_at=None,
        value=0,
    ),
]
TRIMMED = (
    "lookback_days=30{origin} left out 2 of 6 touches, those over 30 days before their "
    "journey's conversion (or last touch), and 1 journeys with none left."
)
FROM_SETTINGS = " (a workspace default from /v1/settings)"
EMPTY = (
    "The selection is empty: nothing matches days 2030-01-01 to 2030-01-31; the workspace "
    "holds 4 journeys and 0 client-aggregated paths, days 2024-03-31 to 2024-03-31."
)


@pytest.fixture
def loaded(client: FlaskClient, auth: dict[str, str]) -> dict[str, str]:
    sent = client.post("/v1/journeys", json={"journeys": JOURNEYS}, headers=auth)
    assert sent.status_code == 200, sent.get_json()
    return auth


def warnings_of(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code in (200, 201), response.get_data(True)
    return response.headers.getlist("Pathcredit-Warning")


def test_a_lookback_from_the_settings_is_named_in_the_run_and_every_table(
    client: FlaskClient, loaded: dict[str, str]
) -> None:
    put = client.put("/v1/settings", json={"lookback_days": 30}, headers=loaded)
    assert put.status_code == 200
    note = TRIMMED.format(origin=FROM_SETTINGS)
    run = client.post("/v1/attribution", json={"models": ["last_touch"]}, headers=loaded)
    assert run.get_json()["warnings"] == {"last_touch": [note]}
    assert run.get_json()["totals"]["conversions"] == 2.0  # j3 is gone
    run_id = run.get_json()["run_id"]
    table = client.get(f"/v1/attribution/runs/{run_id}/table?format=csv", headers=loaded)
    assert warnings_of(table) == [note]
    query = {"models": "last_touch", "format": "csv"}
    assert warnings_of(client.get("/v1/attribution/table", query_string=query, headers=loaded)) == [
        note
    ]
    for report in ("funnel", "paths", "transitions", "dropoff"):
        response = client.get(f"/v1/reports/{report}", headers=loaded)
        assert warnings_of(response) == [note], report


def test_a_lookback_of_the_request_is_named_without_the_settings(
    client: FlaskClient, loaded: dict[str, str]
) -> None:
    body = {"models": ["last_touch", "linear"], "lookback_days": 30}
    run = client.post("/v1/attribution", json=body, headers=loaded).get_json()
    note = TRIMMED.format(origin="")
    assert run["warnings"] == {"last_touch": [note], "linear": [note]}
    table = client.get(f"/v1/attribution/runs/{run['run_id']}/table", headers=loaded)
    assert warnings_of(table) == [note]  # once, not once per model
    wide = client.get("/v1/reports/funnel?lookback_days=120", headers=loaded)
    assert warnings_of(wide) == []  # nothing left out, nothing said


def test_an_empty_selection_says_why_and_what_the_workspace_holds(
    client: FlaskClient, loaded: dict[str, str]
) -> None:
    body = {"models": ["last_touch"], "date_from": "2030-01-01", "date_to": "2030-01-31"}
    run = client.post("/v1/attribution", json=body, headers=loaded).get_json()
    assert run["warnings"] == {"last_touch": [EMPTY]}
    query = {"date_from": "2030-01-01", "date_to": "2030-01-31"}
    funnel = client.get("/v1/reports/funnel", query_string=query, headers=loaded)
    assert all(row["reached"] == 0 for row in funnel.get_json())
    assert warnings_of(funnel) == [EMPTY]
    filtered = client.get("/v1/reports/funnel?device=tv", headers=loaded)
    assert warnings_of(filtered) == [
        'The selection is empty: nothing matches filter device="tv"; the workspace holds '
        "4 journeys and 0 client-aggregated paths, days 2024-03-31 to 2024-03-31."
    ]


def test_a_new_workspace_says_it_holds_nothing_yet(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    assert warnings_of(client.get("/v1/reports/funnel", headers=auth)) == [
        "The selection is empty: the workspace holds no journeys or paths yet."
    ]


def test_a_model_note_is_prefixed_with_its_model(
    client: FlaskClient, loaded: dict[str, str]
) -> None:
    """A note only one model has (here the shared empty-selection note comes with every
    model, so nothing is prefixed) is told apart from the selection's notes."""
    body = {"models": ["last_touch", "shapley"], "date_from": "2030-01-01", "date_to": "2030-01-31"}
    run = client.post("/v1/attribution", json=body, headers=loaded).get_json()
    table = client.get(f"/v1/attribution/runs/{run['run_id']}/table", headers=loaded)
    own = [f"{m}: {n}" for m, notes in run["warnings"].items() for n in notes if n != EMPTY]
    assert warnings_of(table) == [EMPTY, *own]


def test_left_out_client_paths_name_what_in_the_selection_needs_journeys(
    client: FlaskClient, loaded: dict[str, str]
) -> None:
    path = {"path": ["email"], "conversions": 3, "nulls": 5}
    sent = client.post("/v1/paths", json={"paths": [path]}, headers=loaded)
    assert sent.status_code == 200, sent.get_json()
    assert warnings_of(client.get("/v1/reports/funnel", headers=loaded)) == []  # rollups: used
    put = client.put("/v1/settings", json={"lookback_days": 120}, headers=loaded)
    assert put.status_code == 200
    left_out = "1 client-aggregated paths (POST /v1/paths) are left out: they carry no segment, "
    assert warnings_of(client.get("/v1/reports/funnel", headers=loaded)) == [
        left_out + f"touch or campaign data, which lookback_days=120{FROM_SETTINGS} needs."
    ]
    assert client.put("/v1/settings", json={}, headers=loaded).status_code == 200
    filtered = client.get("/v1/reports/funnel?device=mobile", headers=loaded)
    assert warnings_of(filtered)[0] == (
        left_out + 'touch or campaign data, which filter device="mobile" needs.'
    )
