"""POST /v1/journeys/bulk: NDJSON and CSV streams, one transaction."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from api import store
from api.service import bulk, bulk_columns
from tests.helpers import assert_problem, journey, ndjson, pointers, touch

NDJSON = {"Content-Type": "application/x-ndjson"}
CSV = {"Content-Type": "text/csv"}

CSV_BODY = (
    "journey_id,customer_id,timestamp,channel,stage,device,converted,value,attributes\r\n"
    'a,c1,2024-03-01T10:00:00Z,paid_search,awareness,desktop,true,12.5,"{""region"": ""emea""}"\r\n'
    "a,c1,2024-03-02T10:00:00Z,email,decision,mobile,,,\r\n"
    "b,c2,2024-03-03T10:00:00+02:00,direct,,,false,,\r\n"
)


def bulk_post(
    client: FlaskClient, auth: dict[str, str], body: bytes | str, headers: dict[str, str]
) -> Any:
    return client.post("/v1/journeys/bulk", data=body, headers={**auth, **headers})


def test_ndjson_round_trip_and_resend(client: FlaskClient, auth: dict[str, str]) -> None:
    records = [journey(f"j{i}", customer_id=f"c{i % 3}") for i in range(50)]
    response = bulk_post(client, auth, ndjson(*records), NDJSON)
    assert response.get_json() == {"received": 50, "created": 50, "replaced": 0, "unchanged": 0}
    records[7]["value"] = 1.0
    response = bulk_post(client, auth, ndjson(*records), NDJSON)
    assert response.get_json() == {"received": 50, "created": 0, "replaced": 1, "unchanged": 49}
    assert client.get("/v1/journeys/j7", headers=auth).get_json()["value"] == 1.0


def test_bulk_and_batch_store_the_same_rows(client: FlaskClient, auth: dict[str, str]) -> None:
    record = journey("same")
    client.post("/v1/journeys", json={"journeys": [record]}, headers=auth)
    response = bulk_post(client, auth, ndjson(record), NDJSON)
    assert response.get_json()["unchanged"] == 1


def test_column_wise_batches_store_what_the_batch_endpoint_stores(
    client: FlaskClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """UTC-only files take the column-wise path; re-sending them through the JSON batch
    endpoint (journey by journey) finds every stored row identical."""
    z = [
        touch("email", "2024-03-02T09:30:00Z", "decision", campaign="spring"),
        touch("paid_search", "2024-03-01T10:00:00Z", "awareness", device="mobile"),
        touch("new_channel", "2024-03-02T09:30:00Z"),
    ]
    records = [
        journey("unsorted", touchpoints=z, converted_at="2024-03-02T23:30:00-03:00"),
        journey("at-last-touch", touchpoints=z[:2], converted_at=None, customer_id=None),
        journey("lost", touchpoints=z[2:], converted=False, value=0, converted_at=None),
        journey("plain", touchpoints=z[1:], attributes={}, value=1e-9),
    ]
    taken = []
    code_batch = bulk_columns.code_batch
    monkeypatch.setattr(
        bulk_columns, "code_batch", lambda *a: taken.append(code_batch(*a)) or taken[-1]
    )
    assert bulk_post(client, auth, ndjson(*records), NDJSON).get_json()["created"] == 4
    assert len(taken) == 1 and taken[0] is not None
    again = client.post("/v1/journeys", json={"journeys": records}, headers=auth).get_json()
    assert again == {"received": 4, "created": 0, "replaced": 0, "unchanged": 4}
    stored = client.get("/v1/journeys/unsorted", headers=auth).get_json()
    assert [t["channel"] for t in stored["touchpoints"]] == ["paid_search", "email", "new_channel"]


@pytest.mark.parametrize("block", [1, 40, bulk.BLOCK_BYTES])
def test_blank_lines_are_skipped_and_counted(
    client: FlaskClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(bulk, "BLOCK_BYTES", block)  # blocks of blank lines too
    body = ndjson(journey("a")) + b"\n  \n" + ndjson(journey("b", value="x"))
    error = assert_problem(bulk_post(client, auth, body, NDJSON), 422)
    assert pointers(error) == ["/3/value"]
    body = b"\n" + ndjson(journey("a")) + b"\n\r\n" + ndjson(journey("b")) + b"\n \n"
    assert bulk_post(client, auth, body, NDJSON).get_json()["created"] == 2


def test_ndjson_errors_list_every_bad_line_and_write_nothing(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, workspace: store.Workspace
) -> None:
    lines = [json.dumps(journey(f"j{i}")) for i in range(6)]
    lines[1] = lines[1].replace("2024-03-01T10:00:00Z", "2024-03-01T10:00:00")
    lines[2] = "{not json"
    lines[4] = json.dumps(
        journey(
            "j4",
            touchpoints=[{"channel": "x", "stage": "nope", "timestamp": "2024-01-01T00:00:00Z"}],
        )
    )
    lines[5] = json.dumps(journey("j0"))
    body = ("\n".join(lines) + "\n").encode()
    error = assert_problem(bulk_post(client, auth, body, NDJSON), 422)
    assert pointers(error) == [
        "/1/touchpoints/0/timestamp",
        "/2",
        "/4/touchpoints/0/stage",
        "/5/journey_id",
    ]
    assert "nothing was written" in error["detail"]
    assert store.load_paths(conn, workspace.workspace_id)["offsets"].tolist() == [0]
    assert store.list_channels(conn, workspace.workspace_id) == []


def test_a_line_is_one_journey(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, workspace: store.Workspace
) -> None:
    """Two objects on one line are one bad record, found whichever way the block is
    read (all times in UTC, or one with an offset), and the lines after it keep their
    indices."""
    for offset in ("Z", "+01:00"):
        lines = [json.dumps(journey(f"j{i}")) for i in range(4)]
        lines[0] = lines[0].replace("10:00:00Z", f"10:00:00{offset}")
        lines[1] = json.dumps(journey("x")) + "," + json.dumps(journey("y"))
        lines[3] = json.dumps(journey("j3", touchpoints=[touch(stage="nope")]))
        body = ("\n".join(lines) + "\n").encode()
        error = assert_problem(bulk_post(client, auth, body, NDJSON), 422)
        assert pointers(error) == ["/1", "/3/touchpoints/0/stage"]
    assert store.load_paths(conn, workspace.workspace_id)["offsets"].tolist() == [0]


def test_times_that_only_add_up_to_whole_times_are_invalid(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    touches = [
        touch(timestamp="2024-03-01T10:00:00Z"),
        touch(timestamp="2024-03-01T10:00:00Z2024-03-01"),
        touch(timestamp="T10:00:00Z"),
    ]
    body = ndjson(journey("a", touchpoints=touches))
    error = assert_problem(bulk_post(client, auth, body, NDJSON), 422)
    assert pointers(error) == ["/0/touchpoints/1/timestamp"]


def test_offsets_beyond_what_postgresql_reads_are_refused_by_every_route(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    """RFC 3339 allows offsets to 23:59; PostgreSQL reads up to 15:59, and touch times are
    stored as they came: such a time is a 422 at its pointer, never a 500."""
    far = [touch(timestamp="1591-05-31T20:24:44-23:52"), touch(timestamp="2024-03-01T10:00+16")]
    body = ndjson(journey("a", touchpoints=far))
    error = assert_problem(bulk_post(client, auth, body, NDJSON), 422)
    assert pointers(error) == ["/0/touchpoints/0/timestamp"]  # a line's first error
    sent = client.post(
        "/v1/journeys", json={"journeys": [journey("a", touchpoints=far)]}, headers=auth
    )
    assert pointers(assert_problem(sent, 422)) == [
        "/journeys/0/touchpoints/0/timestamp",
        "/journeys/0/touchpoints/1/timestamp",
    ]
    near = [touch(timestamp="2024-03-01T10:00:00+15:59"), touch(timestamp="2024-03-01T10:00-1200")]
    assert (
        bulk_post(client, auth, ndjson(journey("b", touchpoints=near)), NDJSON).status_code == 200
    )
    sent = client.post(
        "/v1/journeys", json={"journeys": [journey("c", touchpoints=near)]}, headers=auth
    )
    assert sent.status_code == 200, sent.get_json()


def test_unknown_fields_in_lines(client: FlaskClient, auth: dict[str, str]) -> None:
    record = journey("a", extra=1)
    record["touchpoints"][0]["cost"] = 2
    error = assert_problem(bulk_post(client, auth, ndjson(record), NDJSON), 422)
    assert pointers(error) == ["/0/extra"] or pointers(error) == ["/0/touchpoints/0/cost"]


def test_csv_round_trip(client: FlaskClient, auth: dict[str, str]) -> None:
    response = bulk_post(client, auth, CSV_BODY, CSV)
    assert response.get_json() == {"received": 2, "created": 2, "replaced": 0, "unchanged": 0}
    a = client.get("/v1/journeys/a", headers=auth).get_json()
    assert [t["channel"] for t in a["touchpoints"]] == ["paid_search", "email"]
    assert a["value"] == 12.5 and a["attributes"] == {"region": "emea"}
    assert [t["device"] for t in a["touchpoints"]] == ["desktop", "mobile"]
    b = client.get("/v1/journeys/b", headers=auth).get_json()
    assert b["converted"] is False and b["touchpoints"][0]["stage"] is None
    assert bulk_post(client, auth, CSV_BODY, CSV).get_json()["unchanged"] == 2


def test_csv_errors_point_at_rows_and_columns(client: FlaskClient, auth: dict[str, str]) -> None:
    body = CSV_BODY.replace("2024-03-02T10:00:00Z", "soon").replace("false", "maybe")
    error = assert_problem(bulk_post(client, auth, body, CSV), 422)
    assert pointers(error) == ["/1/timestamp", "/2/converted"]


def test_csv_header_must_be_known(client: FlaskClient, auth: dict[str, str]) -> None:
    error = assert_problem(bulk_post(client, auth, "journey_id,when,channel\r\n", CSV), 422)
    assert set(pointers(error)) == {"/header/when", "/header/timestamp"}
    (unknown,) = [e["detail"] for e in error["errors"] if e["pointer"] == "/header/when"]
    assert all(column in unknown for column in bulk.CSV_COLUMNS)  # says what is read


@pytest.mark.parametrize(("separator", "name"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_csv_separated_otherwise_is_named(
    client: FlaskClient, auth: dict[str, str], separator: str, name: str
) -> None:
    body = CSV_BODY.replace(",", separator)
    error = assert_problem(bulk_post(client, auth, body, CSV), 422)
    assert pointers(error) == ["/header"]
    assert name in error["errors"][0]["detail"] and "commas" in error["errors"][0]["detail"]


def test_a_csv_boolean_says_what_it_may_be(client: FlaskClient, auth: dict[str, str]) -> None:
    body = CSV_BODY.replace("false", "yes")
    error = assert_problem(bulk_post(client, auth, body, CSV), 422)
    (detail,) = [e["detail"] for e in error["errors"] if e["pointer"].endswith("/converted")]
    assert "true or false" in detail


def test_bulk_needs_a_known_media_type(client: FlaskClient, auth: dict[str, str]) -> None:
    assert_problem(bulk_post(client, auth, b"{}", {"Content-Type": "application/json"}), 415)


def test_empty_upload_is_invalid(client: FlaskClient, auth: dict[str, str]) -> None:
    assert_problem(bulk_post(client, auth, b"\n\n", NDJSON), 422)


def test_bulk_size_limit(client: FlaskClient, auth: dict[str, str], app: Any) -> None:
    from dataclasses import replace

    settings = app.extensions["pathcredit.settings"]
    app.extensions["pathcredit.settings"] = replace(settings, max_bulk_bytes=100)
    assert_problem(bulk_post(client, auth, ndjson(journey("a"), journey("b")), NDJSON), 413)


def test_large_files_merge_in_chunks_in_one_transaction(
    client: FlaskClient,
    auth: dict[str, str],
    conn: psycopg.Connection,
    workspace: store.Workspace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bulk, "LINES_PER_BATCH", 3)
    monkeypatch.setattr(bulk, "BLOCK_BYTES", 1)  # NDJSON: a block per line
    monkeypatch.setattr(store.JourneyWrite, "CHUNK_ROWS", 2)
    monkeypatch.setattr(store.JourneyWrite, "MERGE_CHUNK_ROWS", 3)
    records = [journey(f"j{i}", customer_id=f"c{i % 4}") for i in range(10)]
    assert bulk_post(client, auth, ndjson(*records), NDJSON).get_json()["created"] == 10
    records[8]["value"] = 3.0
    assert bulk_post(client, auth, ndjson(*records), NDJSON).get_json() == {
        "received": 10, "created": 0, "replaced": 1, "unchanged": 9,
    }  # fmt: skip
    # New journeys first (stored directly), then stored ones (merged).
    mixed = [journey(f"n{i}") for i in range(4)] + records[5:]
    assert bulk_post(client, auth, ndjson(*mixed), NDJSON).get_json() == {
        "received": 9, "created": 4, "replaced": 0, "unchanged": 5,
    }  # fmt: skip
    conn.rollback()
    assert rollups(conn, "stored_rollups", workspace.workspace_id) == rollups(
        conn, "fresh_rollups", workspace.workspace_id
    )
    # A bad last line rejects the file after earlier chunks were merged: nothing stays.
    changed = [journey(f"j{i}", value=1.0) for i in range(10)] + [journey("k", value="x")]
    assert_problem(bulk_post(client, auth, ndjson(*changed), NDJSON), 422)
    assert client.get("/v1/journeys/j0", headers=auth).get_json()["value"] == 25.5
    assert_problem(client.get("/v1/journeys/k", headers=auth), 404)


def rollups(conn: psycopg.Connection, name: str, workspace_id: int) -> list[Any]:
    from api.store.sqlfiles import query

    return conn.execute(query(name), {"workspace_id": workspace_id}).fetchall()


def test_csv_from_a_spreadsheet(
    client: FlaskClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A byte-order mark, and a multi-byte character split across read chunks."""
    from api.http import bodies

    body = ("\ufeff" + CSV_BODY.replace("email", "e-mail \u00e9t\u00e9")).encode("utf-8")
    monkeypatch.setattr(bodies, "CHUNK", 7)
    response = bulk_post(client, auth, body, CSV)
    assert response.get_json()["created"] == 2
    a = client.get("/v1/journeys/a", headers=auth).get_json()
    assert a["touchpoints"][1]["channel"] == "e-mail \u00e9t\u00e9"


def test_bulk_times_must_be_real_and_zoned(client: FlaskClient, auth: dict[str, str]) -> None:
    def at(stamp: str) -> dict[str, Any]:
        return journey(stamp, touchpoints=[{"channel": "email", "timestamp": stamp}])

    body = ndjson(at("2024-02-30T10:00:00Z"), at("2024-03-01"), at("2024-03-01T10:00:00+0130"))
    error = assert_problem(bulk_post(client, auth, body, NDJSON), 422)
    assert pointers(error) == ["/0/touchpoints/0/timestamp", "/1/touchpoints/0/timestamp"]
    assert all("time zone" in e["detail"] for e in error["errors"])


def test_values_are_capped_like_the_json_schema(
    client: FlaskClient, auth: dict[str, str], conn: psycopg.Connection, workspace: store.Workspace
) -> None:
    big = journey("big", converted=True, value=2e15)
    body = ndjson(journey("a", converted=True, value=1e15), big, journey("c"))
    error = assert_problem(bulk_post(client, auth, body, NDJSON), 422)
    assert pointers(error) == ["/1/value"]
    assert store.load_paths(conn, workspace.workspace_id)["offsets"].tolist() == [0]
    csv_body = (
        "journey_id,timestamp,channel,converted,value\r\n"
        "a,2024-03-01T10:00:00Z,email,true,1e15\r\n"
        "b,2024-03-01T10:00:00Z,email,true,1.5e15\r\n"
    )
    assert pointers(assert_problem(bulk_post(client, auth, csv_body, CSV), 422)) == ["/1/value"]
    response = bulk_post(client, auth, ndjson(journey("a", converted=True, value=1e15)), NDJSON)
    assert response.get_json()["created"] == 1
