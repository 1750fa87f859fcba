"""The bad-input battery: every write route, fed malformed input, answers 4xx
application/problem+json, with a pointer at the record and field where there is one,
and writes nothing.

The module shares one database, seeded once: every case must leave it as it was, and
each compares the workspace's data before and after itself. Bodies stay small; the size
limits are lowered instead, so that going over them costs little.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from psycopg import sql

from api import store
from api.app import create_app
from api.config import Settings
from api.schemas.attribution import OPTION_SCHEMAS, ConfidenceIn, OrderField
from tests.conftest import SESSION, with_database
from tests.helpers import assert_problem, journey, ndjson, pointers

MAX_REQUEST = 64 * 1024
MAX_BULK = 256 * 1024
HUGE = 10**400
NDJSON = "application/x-ndjson"
CSV = "text/csv"
CSV_HEADER = "journey_id,timestamp,channel,stage,converted,converted_at,attributes\n"
SAVED = "seeded"
"""The saved report the seed makes, for the routes under its name."""
NEW_REPORT = "battery-new"
"""The name of the saved report the battery's valid body creates (then deletes)."""


# ----------------------------------------------------------------- one database
@pytest.fixture(scope="module")
def database_url(admin_url: str, template_db: str) -> Iterator[str]:
    name = f"{SESSION}_bad_input"
    store.copy_database(admin_url, name, template_db)
    yield with_database(admin_url, name)
    store.drop_database(admin_url, name)


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        pool_size=2,
        max_request_bytes=MAX_REQUEST,
        max_bulk_bytes=MAX_BULK,
        secret_key="battery",  # report links on, so their input is checked
        # The background runs the battery starts are never taken (no worker): without a
        # limit on unfinished runs, they do not turn later runs away.
        max_runs=0,
        # Hundreds of cases a minute from one key: its rate limits are not under test.
        key_writes=0,
        workspace_writes=0,
    )


@pytest.fixture(scope="module")
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["pathcredit.db"].close()


@pytest.fixture(scope="module")
def workspace(database_url: str) -> store.Workspace:
    with psycopg.connect(database_url) as conn:
        return store.create_workspace(conn, "acme")


@pytest.fixture(scope="module")
def api_key(database_url: str, workspace: store.Workspace, app: Flask) -> str:
    with psycopg.connect(database_url) as conn:
        key = store.create_api_key(conn, workspace.workspace_id)
    seed(app.test_client(), {"Authorization": f"Bearer {key}"})
    return key


def seed(client: FlaskClient, auth: dict[str, str]) -> None:
    """Data of every kind, so that a write that should not happen shows."""
    writes = [
        ("put", "/v1/stages", {"stages": [{"name": "awareness"}, {"name": "decision"}]}),
        (
            "post",
            "/v1/journeys",
            {
                "journeys": [
                    journey("j1"),
                    journey("j2", converted=False, value=0, converted_at=None),
                ]
            },
        ),
        ("post", "/v1/paths", {"paths": [{"path": ["email", "direct"], "conversions": 2}]}),
        ("put", "/v1/settings", {"models": ["last_touch", "linear"]}),
        ("put", "/v1/spend", {"spend": [SPEND_ROW, {**SPEND_ROW, "date": "2024-03-02"}]}),
        ("post", "/v1/attribution", {}),
    ]
    for method, url, body in writes:
        response = getattr(client, method)(url, json=body, headers=auth)
        assert response.status_code == 200, response.get_data(True)
    saved = {"name": SAVED, "models": ["last_touch"]}
    assert client.post("/v1/saved-reports", json=saved, headers=auth).status_code == 201


WORKSPACE_TABLES = """
SELECT c.table_name FROM information_schema.columns c
JOIN information_schema.tables t USING (table_schema, table_name)
WHERE c.table_schema = current_schema() AND c.column_name = 'workspace_id'
  AND t.table_type = 'BASE TABLE'
ORDER BY c.table_name
"""
COUNTS_REQUESTS = {"rate_limit_counters"}  # every request counts, whatever it carries


def state(conn: psycopg.Connection, workspace: store.Workspace) -> dict[str, Any]:
    """Every row the workspace owns, table by table (each table with a workspace_id:
    journeys, rollups, paths, dictionaries, runs, settings, data versions, events...),
    as a count and a digest, and the jobs in the queue."""
    found: dict[str, Any] = {}
    for (table,) in conn.execute(WORKSPACE_TABLES).fetchall():
        if table in COUNTS_REQUESTS:
            continue
        digest = sql.SQL(
            "SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) "
            "FROM {} t WHERE workspace_id = %s"
        ).format(sql.Identifier(table))
        found[table] = conn.execute(digest, [workspace.workspace_id]).fetchone()
    found["procrastinate_jobs"] = conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()
    conn.commit()
    assert {"journeys", "path_rollups", "path_totals", "stages"} <= set(found), found
    return found


@pytest.fixture
def unchanged(conn: psycopg.Connection, workspace: store.Workspace) -> Iterator[None]:
    """The test writes nothing."""
    before = state(conn, workspace)
    yield
    assert state(conn, workspace) == before


# ----------------------------------------------------------------- requests
@dataclass(frozen=True)
class Route:
    method: str
    url: str
    valid: Any  # a body the route accepts (bytes for the bulk formats)
    content_type: str = "application/json"


def csv_row(journey_id: str = "j1", **cells: str) -> str:
    """One CSV row under CSV_HEADER: a converting touch on email unless ``cells`` say
    otherwise."""
    row = {"journey_id": journey_id, "timestamp": "2024-03-01T10:00:00Z", "channel": "email",
           "converted": "true", **cells}  # fmt: skip
    out = io.StringIO()
    csv.DictWriter(out, CSV_HEADER.rstrip().split(","), lineterminator="\n").writerow(row)
    return out.getvalue()


SPEND_ROW = {"date": "2024-03-01", "channel": "email", "amount": 5}
SPEND_HEADER = "date,channel,campaign,amount,currency,rate\n"
SPEND_CSV = SPEND_HEADER + "2024-03-03,email,,5,,\n"
EVENT = {"type": "page", "messageId": "m-new", "anonymousId": "a-new",
         "timestamp": "2024-03-01T10:00:00Z"}  # fmt: skip
ROUTES = {
    "journeys": Route("POST", "/v1/journeys", {"journeys": [journey("new")]}),
    "paths": Route("POST", "/v1/paths", {"paths": [{"path": ["email"], "conversions": 1}]}),
    "stages": Route("PUT", "/v1/stages", {"stages": [{"name": "awareness"}, {"name": "decision"}]}),
    "settings": Route("PUT", "/v1/settings", {"models": ["markov"]}),
    "attribution": Route("POST", "/v1/attribution", {"models": ["last_touch"]}),
    "runs": Route("POST", "/v1/attribution/runs", {"models": ["last_touch"]}),
    "validate": Route("POST", "/v1/attribution/validate", {"n_folds": 2}),
    "report-links": Route("POST", "/v1/report-links", {"expires_in": 3600}),
    "bulk-ndjson": Route("POST", "/v1/journeys/bulk", ndjson(journey("new")), NDJSON),
    "bulk-csv": Route("POST", "/v1/journeys/bulk", (CSV_HEADER + csv_row("new")).encode(), CSV),
    "events": Route("POST", "/v1/events", {"batch": [EVENT]}),
    "bulk-events": Route("POST", "/v1/events", ndjson(EVENT), NDJSON),
    "event-rules": Route("PUT", "/v1/event-rules", {"session_timeout_minutes": 20}),
    "spend": Route("PUT", "/v1/spend", {"spend": [{**SPEND_ROW, "date": "2024-03-04"}]}),
    "spend-csv": Route("PUT", "/v1/spend", SPEND_CSV.encode(), CSV),
    "saved-reports": Route("POST", "/v1/saved-reports", {"name": NEW_REPORT}),
    "saved-report": Route("PUT", f"/v1/saved-reports/{SAVED}", {"models": ["linear"]}),
    "table-links": Route("POST", f"/v1/saved-reports/{SAVED}/links", {"expires_in": 3600}),
}
TAKES_NDJSON = {"events"}  # JSON routes that read NDJSON too (a JSON body is one bad line)
JSON_ROUTES = [name for name, route in ROUTES.items() if route.content_type == "application/json"]


def send(
    client: FlaskClient,
    auth: dict[str, str],
    route: Route,
    data: Any,
    content_type: str | None = None,
    *,
    chunked: bool = False,
    encoding: str | None = None,
) -> Any:
    """``data`` to the route: JSON-encoded unless bytes or str; chunked is sent without
    a length, as a server that reads chunked bodies passes it on; ``encoding`` is sent
    as the Content-Encoding (``data`` as given: compress it first)."""
    if not isinstance(data, bytes | str):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    headers = {**auth, "Content-Type": content_type or route.content_type}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    if not chunked:
        return client.open(route.url, method=route.method, data=data, headers=headers)
    return client.open(
        route.url,
        method=route.method,
        input_stream=io.BytesIO(data),
        headers={**headers, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def check(response: Any, status: int, pointer: str | None = None) -> dict[str, Any]:
    body = assert_problem(response, status)
    if pointer is not None:
        assert pointer in pointers(body), body
    return body


def nested(depth: int, leaf: str = "1") -> str:
    """JSON objects nested ``depth`` levels deep."""
    return '{"a":' * depth + leaf + "}" * depth


def with_raw(body: Any, marker: str, raw: str) -> str:
    """``body`` as JSON text, with the string ``marker`` replaced by raw JSON text."""
    return json.dumps(body).replace(json.dumps(marker), raw)


# ----------------------------------------------------------------- whole bodies
def _json_cases() -> Iterator[Any]:
    """(route name, data, content type or None, status, pointer or None)"""
    deep = "[" * 5000 + "]" * 5000
    for name in JSON_ROUTES:
        valid = ROUTES[name].valid
        text = json.dumps(valid)
        cases: list[tuple[str, Any, str | None, int, str | None]] = [
            ("empty", b"", None, 400, None),
            ("blank", b"  \n", None, 400, None),
            ("bare-array", [], None, 422, "/"),
            ("array-of-body", [valid], None, 422, "/"),
            ("null", None, None, 422, "/"),
            ("string", '"journeys"', None, 422, "/"),
            ("text-plain", text, "text/plain", 415, None),
            ("form", "a=1", "application/x-www-form-urlencoded", 415, None),
            ("ndjson", text, NDJSON, 422 if name in TAKES_NDJSON else 415, None),
            ("truncated", text[: len(text) // 2], None, 400, None),
            ("unknown-field", {**valid, "bogus": 1}, None, 422, "/bogus"),
            ("nul-byte", text[:-1] + ', "\x00": 1}', None, 400, None),
            ("not-utf8", text.encode()[:-1] + b', "\xff": 1}', None, 400, None),
            ("deep-body", deep, None, 422, "/"),
            ("deep-field", text[:-1] + f', "bogus": {nested(5000)}}}', None, 422, "/"),
        ]
        for case_id, *case in cases:
            yield pytest.param(name, *case, id=f"{name}-{case_id}")


def padded(name: str, size: int) -> bytes:
    """The route's valid body, padded to ``size`` bytes with blank lines (whitespace in
    JSON, skipped lines in NDJSON and CSV)."""
    route = ROUTES[name]
    body = route.valid if isinstance(route.valid, bytes) else json.dumps(route.valid).encode()
    return body + b"\n" * (size - len(body))


@pytest.mark.parametrize("name", list(ROUTES))
@pytest.mark.usefixtures("unchanged")
def test_chunked_body_over_the_limit_is_413(
    client: FlaskClient, auth: dict[str, str], name: str
) -> None:
    limit = MAX_BULK if name.startswith("bulk") else MAX_REQUEST
    check(send(client, auth, ROUTES[name], padded(name, limit + 1), chunked=True), 413)
    check(send(client, auth, ROUTES[name], padded(name, limit + 1)), 413)  # refused up front


@pytest.mark.parametrize("name", list(ROUTES))
def test_valid_bodies_pass(client: FlaskClient, auth: dict[str, str], name: str) -> None:
    """The battery's valid bodies are accepted, so each case fails for its own fault;
    a chunked JSON body of exactly the limit too."""
    route = ROUTES[name]
    assert send(client, auth, route, route.valid).status_code in (200, 201, 202)
    if name in JSON_ROUTES:
        client.delete(f"/v1/saved-reports/{NEW_REPORT}", headers=auth)  # saved once
        body = padded(name, MAX_REQUEST)
        assert send(client, auth, route, body, chunked=True).status_code in (200, 201, 202)
    client.delete(f"/v1/saved-reports/{NEW_REPORT}", headers=auth)


# ----------------------------------------------------------------- gzip bodies
def body_of(name: str) -> bytes:
    valid = ROUTES[name].valid
    return valid if isinstance(valid, bytes) else json.dumps(valid).encode()


@pytest.mark.parametrize("name", list(ROUTES))
def test_gzip_bodies_pass(client: FlaskClient, auth: dict[str, str], name: str) -> None:
    """Every route that reads a body reads it gzip-compressed too, chunked or not."""
    route = ROUTES[name]
    packed = gzip.compress(body_of(name))
    assert send(client, auth, route, packed, encoding="gzip").status_code in (200, 201, 202)
    client.delete(f"/v1/saved-reports/{NEW_REPORT}", headers=auth)  # saved once
    response = send(client, auth, route, packed, encoding="x-gzip", chunked=True)
    assert response.status_code in (200, 201, 202)
    client.delete(f"/v1/saved-reports/{NEW_REPORT}", headers=auth)


def _gzip_cases() -> Iterator[Any]:
    """(route name, data, Content-Encoding, status, chunked)"""
    for name in ROUTES:
        limit = MAX_BULK if name.startswith("bulk") else MAX_REQUEST
        packed = gzip.compress(body_of(name))
        bomb = gzip.compress(padded(name, limit + 1))  # ~1 KiB that inflates past the limit
        cases: list[tuple[str, bytes, str, int, bool]] = [
            ("inflates-past-the-limit", bomb, "gzip", 413, False),
            ("inflates-past-the-limit-chunked", bomb, "gzip", 413, True),
            ("not-gzip", body_of(name), "gzip", 400, False),
            ("truncated", packed[: len(packed) // 2], "gzip", 400, False),
            ("garbled", packed[:10] + b"\xff" * 20 + packed[30:], "gzip", 400, False),
            ("empty", b"", "gzip", 400, False),
            ("brotli", packed, "br", 415, False),
        ]
        for case_id, *case in cases:
            yield pytest.param(name, *case, id=f"{name}-{case_id}")


@pytest.mark.parametrize(("name", "data", "encoding", "status", "chunked"), list(_gzip_cases()))
@pytest.mark.usefixtures("unchanged")
def test_bad_gzip_body(
    client: FlaskClient,
    auth: dict[str, str],
    name: str,
    data: bytes,
    encoding: str,
    status: int,
    chunked: bool,
) -> None:
    """The limits hold after decompression: a small body that inflates past them is a
    413; a body that is not gzip, or ends early, a 400; another encoding a 415."""
    body = check(send(client, auth, ROUTES[name], data, encoding=encoding, chunked=chunked), status)
    if status == 413:
        assert "larger than" in body["detail"], body


# ----------------------------------------------------------------- field by field
ATTRIBUTES = "attributes-go-here"
YEAR_1 = "0001-01-01T00:30:00+01:00"  # 0000-12-31T23:30:00Z
YEAR_9999 = "9999-12-31T23:30:00-01:00"  # 10000-01-01T00:30:00Z
YEAR_0 = "0000-01-01T00:00:00Z"


def _journey_cases() -> Iterator[Any]:
    Z = "2024-03-01T10:00:00Z"
    """POST /v1/journeys, one bad field of one record."""
    cases: list[tuple[str, Any, int, str]] = [
        ("batch-not-a-list", {"journeys": "j1"}, 422, "/journeys"),
        ("batch-empty", {"journeys": []}, 422, "/journeys"),
        ("converted-string", journey(converted="yes"), 422, "/journeys/1/converted"),
        ("value-string", journey(value="1"), 422, "/journeys/1/value"),
        ("value-huge", journey(value=HUGE), 422, "/journeys/1/value"),
        ("no-touches", journey(touchpoints=[]), 422, "/journeys/1/touchpoints"),
        ("unknown-field", journey(bogus=1), 422, "/journeys/1/bogus"),
        ("nul-in-id", journey("j\x00"), 422, "/journeys/1/journey_id"),
        # Python's `$` matches before a final newline: each check must anchor at the end
        ("newline-ending-id", journey("j\n"), 422, "/journeys/1/journey_id"),
        ("newline-ending-channel", journey(touchpoints=[{"channel": "e\n", "timestamp": Z}],
                                           converted=False, value=0, converted_at=None),
         422, "/journeys/1/touchpoints/0/channel"),
        ("newline-ending-timestamp", journey(touchpoints=[{"channel": "e", "timestamp": Z + "\n"}],
                                             converted=False, value=0, converted_at=None),
         422, "/journeys/1/touchpoints/0/timestamp"),
        ("nul-in-attributes", journey(attributes={"a": "\x00"}), 422, "/journeys/1/attributes"),
        ("attributes-array", journey(attributes=[1]), 422, "/journeys/1/attributes"),
        ("touch-year-1", journey(touchpoints=[{"channel": "e", "timestamp": YEAR_1}],
                                 converted=False, value=0, converted_at=None),
         422, "/journeys/1/touchpoints/0/timestamp"),
        ("touch-year-9999", journey(touchpoints=[{"channel": "e", "timestamp": YEAR_9999}],
                                    converted=False, value=0, converted_at=None),
         422, "/journeys/1/touchpoints/0/timestamp"),
        ("converted-at-year-1", journey(converted_at=YEAR_1), 422, "/journeys/1/converted_at"),
        ("converted-at-year-9999", journey(converted_at=YEAR_9999), 422,
         "/journeys/1/converted_at"),
        ("touch-year-0", journey(touchpoints=[{"channel": "e", "timestamp": YEAR_0}]), 422,
         "/journeys/1/touchpoints/0/timestamp"),
    ]  # fmt: skip
    for case_id, record, status, pointer in cases:
        body = record if "journeys" in record else {"journeys": [journey("ok"), record]}
        yield pytest.param(body, status, pointer, id=case_id)
    for depth, pointer in [(40, "/journeys/1/attributes"), (5000, "/")]:
        body = with_raw({"journeys": [journey("ok"), journey(attributes=ATTRIBUTES)]},
                        ATTRIBUTES, nested(depth))  # fmt: skip
        yield pytest.param(body, 422, pointer, id=f"attributes-{depth}-deep")


@pytest.mark.parametrize(("body", "status", "pointer"), list(_journey_cases()))
@pytest.mark.usefixtures("unchanged")
def test_bad_journey(
    client: FlaskClient, auth: dict[str, str], body: Any, status: int, pointer: str
) -> None:
    check(send(client, auth, ROUTES["journeys"], body), status, pointer)


@pytest.mark.usefixtures("unchanged")
def test_journey_attributes_near_the_recursion_limit(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    """Deep enough that parsing may or may not manage it: refused either way."""
    body = with_raw({"journeys": [journey(attributes=ATTRIBUTES)]}, ATTRIBUTES, nested(950))
    body = check(send(client, auth, ROUTES["journeys"], body), 422)
    assert pointers(body) in (["/"], ["/journeys/0/attributes"])


SELECTION_CASES: list[tuple[str, Any, int, str]] = [
    ("filters-nul", {"filters": {"device": "d\x00"}}, 422, "/filters/device"),
    ("filters-key-nul", {"filters": {"attributes": {"a\x00": 1}}}, 422, "/filters/attributes"),
    ("filters-not-object", {"filters": [1]}, 422, "/filters"),
    ("date-year-0", {"date_from": "0000-01-01"}, 422, "/date_from"),
    ("dates-reversed", {"date_from": "2024-02-01", "date_to": "2024-01-01"}, 422, "/date_to"),
    ("lookback-huge", {"lookback_days": HUGE}, 422, "/lookback_days"),
    ("lookback-string", {"lookback_days": "seven"}, 422, "/lookback_days"),
    ("groups-not-object", {"channel_groups": ["a"]}, 422, "/channel_groups"),
    ("groups-deep", {"channel_groups": {"a": json.loads(nested(40))}}, 422,
     "/channel_groups/a/value"),
]  # fmt: skip
MARKOV = ["markov"]
RUN_CASES: list[tuple[str, Any, int, str]] = [
    ("models-not-list", {"models": 5}, 422, "/models"),
    ("model-unknown", {"models": ["bogus"]}, 422, "/models/0"),
    ("order-huge", {"models": MARKOV, "markov": {"order": HUGE}}, 422, "/markov/order"),
    ("order-negative", {"models": MARKOV, "markov": {"order": -HUGE}}, 422, "/markov/order"),
    ("order-float", {"markov": {"order": 1.5}}, 422, "/markov/order"),
    ("options-unknown", {"markov": {"bogus": 1}}, 422, "/markov/bogus"),
    ("replicates-huge", {"confidence": {"replicates": HUGE}}, 422, "/confidence/replicates"),
    ("level-huge", {"confidence": {"level": HUGE}}, 422, "/confidence/level"),
    ("confidence-unknown", {"confidence": {"bogus": 1}}, 422, "/confidence/bogus"),
]
SETTINGS_CASES: list[tuple[str, Any, int, str]] = [
    ("models-string", {"models": "markov"}, 422, "/models"),
    ("order-huge", {"options": {"markov": {"order": HUGE}}}, 422, "/options/markov/order"),
    ("n-samples-huge", {"options": {"shapley": {"n_samples": HUGE}}}, 422,
     "/options/shapley/n_samples"),
    ("replicates-huge", {"confidence": {"replicates": HUGE}}, 422, "/confidence/replicates"),
    ("lookback-huge", {"lookback_days": HUGE}, 422, "/lookback_days"),
    ("groups-key-nul", {"channel_groups": {"a\x00": "b"}}, 422, "/channel_groups/a\x00/key"),
    ("groups-deep", {"channel_groups": {"a": json.loads(nested(40))}}, 422,
     "/channel_groups/a/value"),
    ("filters-not-a-setting", {"filters": {}}, 422, "/filters"),
    ("currency-lower-case", {"currency": "usd"}, 422, "/currency"),
    ("currency-under-other-spend", {"currency": "EUR"}, 409, "/currency"),
]  # fmt: skip
FIELD_CASES: dict[str, list[tuple[str, Any, int, str]]] = {
    "paths": [
        ("batch-not-a-list", {"paths": {}}, 422, "/paths"),
        ("conversions-string", {"paths": [{"path": ["e"], "conversions": "1"}]}, 422,
         "/paths/0/conversions"),
        ("conversions-huge", {"paths": [{"path": ["e"], "conversions": HUGE}]}, 422,
         "/paths/0/conversions"),
        ("nul-in-channel", {"paths": [{"path": ["e\x00"], "conversions": 1}]}, 422,
         "/paths/0/path/0"),
        ("date-year-0", {"paths": [{"path": ["e"], "conversions": 1, "date": "0000-01-01"}]},
         422, "/paths/0/date"),
        ("unknown-field", {"paths": [{"path": ["e"], "conversions": 1, "bogus": 1}]}, 422,
         "/paths/0/bogus"),
    ],
    "stages": [
        ("list-not-a-list", {"stages": "awareness"}, 422, "/stages"),
        ("nul-in-name", {"stages": [{"name": "a\x00"}]}, 422, "/stages/0/name"),
        ("code-string", {"stages": [{"name": "a", "code": "1"}]}, 422, "/stages/0/code"),
        ("code-float", {"stages": [{"name": "a", "code": 1.5}]}, 422, "/stages/0/code"),
        ("names-repeated", {"stages": [{"name": "a"}, {"name": "a"}]}, 422, "/stages"),
    ],
    "settings": SETTINGS_CASES,
    "attribution": RUN_CASES + SELECTION_CASES,
    "runs": RUN_CASES + SELECTION_CASES,
    "spend": [
        ("not-a-list", {"spend": SPEND_ROW}, 422, "/spend"),
        ("empty", {"spend": []}, 422, "/spend"),
        ("no-date", {"spend": [{"channel": "e", "amount": 1}]}, 422, "/spend/0/date"),
        ("date-year-0", {"spend": [{**SPEND_ROW, "date": "0000-01-01"}]}, 422,
         "/spend/0/date"),
        ("amount-huge", {"spend": [{**SPEND_ROW, "amount": HUGE}]}, 422, "/spend/0/amount"),
        ("amount-negative", {"spend": [{**SPEND_ROW, "amount": -1}]}, 422, "/spend/0/amount"),
        ("amount-string", {"spend": [{**SPEND_ROW, "amount": "5"}]}, 422, "/spend/0/amount"),
        ("nul-in-channel", {"spend": [{**SPEND_ROW, "channel": "e\x00"}]}, 422,
         "/spend/0/channel"),
        ("newline-ending-channel", {"spend": [{**SPEND_ROW, "channel": "e\n"}]}, 422,
         "/spend/0/channel"),
        ("newline-ending-currency", {"spend": [{**SPEND_ROW, "currency": "EUR\n", "rate": 1}]},
         422, "/spend/0/currency"),
        ("campaign-too-long", {"spend": [{**SPEND_ROW, "campaign": "c" * 201}]}, 422,
         "/spend/0/campaign"),
        ("currency-unknown-shape", {"spend": [{**SPEND_ROW, "currency": "EURO"}]}, 422,
         "/spend/0/currency"),
        ("currency-without-rate", {"spend": [{**SPEND_ROW, "currency": "EUR"}]}, 422,
         "/spend/0/rate"),
        ("rate-huge", {"spend": [{**SPEND_ROW, "currency": "EUR", "rate": HUGE}]}, 422,
         "/spend/0/rate"),
        ("duplicate-key", {"spend": [SPEND_ROW, SPEND_ROW]}, 422, "/spend/1"),
        ("unknown-field", {"spend": [{**SPEND_ROW, "bogus": 1}]}, 422, "/spend/0/bogus"),
    ],
    "saved-reports": [
        ("name-missing", {"models": ["linear"]}, 422, "/name"),
        ("name-slash", {"name": "a/b"}, 422, "/name"),
        ("name-newline-ending", {"name": "a\n"}, 422, "/name"),
        ("name-taken", {"name": SAVED}, 409, "/name"),
        *[(c, {"name": NEW_REPORT, **b}, st, p) for c, b, st, p in RUN_CASES + SELECTION_CASES],
    ],
    "saved-report": RUN_CASES + SELECTION_CASES + [("name-given", {"name": SAVED}, 422, "/name")],
    "events": [
        ("newline-ending-message-id", {"batch": [{**EVENT, "messageId": "m\n"}]}, 422,
         "/batch/0/messageId"),
        ("newline-ending-user-id", {"batch": [{**EVENT, "userId": "u\n"}]}, 422,
         "/batch/0/userId"),
    ],
    "table-links": [
        ("expires-string", {"expires_in": "soon"}, 422, "/expires_in"),
        ("expires-short", {"expires_in": 59}, 422, "/expires_in"),
        ("expires-huge", {"expires_in": HUGE}, 422, "/expires_in"),
    ],
    "validate": [
        ("folds-string", {"n_folds": "5"}, 422, "/n_folds"),
        ("folds-float", {"n_folds": 5.5}, 422, "/n_folds"),
        ("folds-huge", {"n_folds": HUGE}, 422, "/n_folds"),
        ("seed-negative", {"seed": -1}, 422, "/seed"),
        ("orders-empty", {"orders": []}, 422, "/orders"),
        ("level-string", {"level": "high"}, 422, "/level"),
        ("pairwise-number", {"data_driven": {"pairwise": 1}}, 422, "/data_driven/pairwise"),
        *SELECTION_CASES,
    ],
    "report-links": [
        ("expires-string", {"expires_in": "soon"}, 422, "/expires_in"),
        ("expires-huge", {"expires_in": HUGE}, 422, "/expires_in"),
        ("model-unknown", {"models": ["bogus"]}, 422, "/models/0"),
        *SELECTION_CASES,
    ],
}  # fmt: skip


def _field_cases() -> Iterator[Any]:
    for name, cases in FIELD_CASES.items():
        for case_id, body, status, pointer in cases:
            yield pytest.param(name, body, status, pointer, id=f"{name}-{case_id}")
    for name in ("attribution", "runs", "validate", "report-links"):
        for depth, pointer in [(40, "/filters/attributes"), (5000, "/")]:
            body = with_raw({"filters": {"attributes": ATTRIBUTES}}, ATTRIBUTES, nested(depth))
            yield pytest.param(name, body, 422, pointer, id=f"{name}-filters-{depth}-deep")


@pytest.mark.parametrize(("name", "body", "status", "pointer"), list(_field_cases()))
@pytest.mark.usefixtures("unchanged")
def test_bad_field(
    client: FlaskClient, auth: dict[str, str], name: str, body: Any, status: int, pointer: str
) -> None:
    check(send(client, auth, ROUTES[name], body), status, pointer)


@pytest.mark.usefixtures("unchanged")
def test_unknown_stage_code_is_a_conflict(client: FlaskClient, auth: dict[str, str]) -> None:
    body = {"stages": [{"name": "a", "code": HUGE}]}
    check(send(client, auth, ROUTES["stages"], body), 409)


# ----------------------------------------------------------------- every option
def _numeric_options() -> Iterator[Any]:
    """Every integer or number a run takes: each model's options and confidence."""
    numeric = (ma.fields.Integer, ma.fields.Float, OrderField)
    for model, schema in OPTION_SCHEMAS.items():
        for field_name, field in schema._declared_fields.items():
            inner = getattr(field, "inner", field)  # a list of integers: one of them
            if isinstance(inner, numeric) and field_name != "random_state":
                value = HUGE if inner is field else [HUGE]
                yield pytest.param(model, field_name, value, id=f"{model}-{field_name}")
    for field_name in ConfidenceIn._declared_fields:
        if field_name not in ("method", "seed"):
            yield pytest.param("confidence", field_name, HUGE, id=f"confidence-{field_name}")


@pytest.mark.parametrize(("model", "option", "value"), list(_numeric_options()))
@pytest.mark.parametrize("name", ["attribution", "settings"])
@pytest.mark.usefixtures("unchanged")
def test_huge_integer_options(
    client: FlaskClient, auth: dict[str, str], name: str, model: str, option: str, value: Any
) -> None:
    """Options of models a run does not use are not checked: the run names the model."""
    under = "/options" if name == "settings" and model != "confidence" else ""
    body: dict[str, Any] = {model: {option: value}}
    if under:
        body = {"options": body}
    elif model != "confidence":
        body["models"] = [model]
    item = "/0" if isinstance(value, list) else ""  # the schema checks each item's range
    check(send(client, auth, ROUTES[name], body), 422, f"{under}/{model}/{option}{item}")


@pytest.mark.parametrize(
    "body",
    [
        {"models": ["markov"], "markov": {"random_state": HUGE}},
        {"models": ["last_touch"], "confidence": {"seed": HUGE, "replicates": 10}},
    ],
    ids=["random-state", "confidence-seed"],
)
def test_seeds_of_any_size_are_seeds(
    client: FlaskClient,
    auth: dict[str, str],
    conn: psycopg.Connection,
    workspace: store.Workspace,
    body: dict[str, Any],
) -> None:
    """A seed has no upper bound (numpy takes any non-negative integer); a negative one
    is refused with its pointer."""
    assert send(client, auth, ROUTES["attribution"], body).status_code == 200
    model, option = next((k, v) for k, v in body.items() if k != "models")
    key = next(iter(option))
    negative = {**body, model: {**option, key: -HUGE}}
    before = state(conn, workspace)
    check(send(client, auth, ROUTES["attribution"], negative), 422, f"/{model}/{key}")
    assert state(conn, workspace) == before


# ----------------------------------------------------------------- bulk files
def line(**overrides: Any) -> dict[str, Any]:
    return journey("bulk", **overrides)


Z_TOUCH = [{"channel": "email", "timestamp": "2024-03-01T10:00:00Z"}]


def _bulk_cases() -> Iterator[Any]:
    """(route name, data, content type, status, pointer or None) for the bulk route."""
    ok = ndjson(journey("ok"))
    deep_line = json.dumps(line(attributes=ATTRIBUTES))
    ndjson_cases: list[tuple[str, bytes, int, str | None]] = [
        ("empty", b"", 422, None),
        ("blank-lines", b"\n\n", 422, None),
        ("bare-array", b"[]\n", 422, "/0"),
        ("array-of-journeys", b"[" + ok.rstrip() + b"]\n", 422, "/0"),
        ("truncated", ok[: len(ok) // 2], 422, "/0"),
        ("second-line-truncated", ok + ok[: len(ok) // 2], 422, "/1"),
        ("two-values-on-a-line", ok.rstrip() + b" " + ok, 422, "/0"),
        ("unknown-field", ndjson(line(bogus=1)), 422, "/0/bogus"),
        ("converted-string", ndjson(line(converted="yes")), 422, "/0/converted"),
        ("value-huge", ndjson(line(value=HUGE)), 422, "/0/value"),
        ("nul-in-id", ndjson(journey("j\x00")), 422, "/0/journey_id"),
        ("newline-ending-id", ndjson(journey("j\n")), 422, "/0/journey_id"),
        ("nul-byte", ok.replace(b'"ok"', b'"o\x00k"'), 422, "/0"),
        ("nul-in-attributes", ndjson(line(attributes={"a": "\x00"})), 422, "/0/attributes"),
        ("not-utf8-id", ok.replace(b'"ok"', b'"o\xffk"'), 422, "/0/journey_id"),
        ("not-utf8-channel", ok.replace(b'"email"', b'"em\xe9il"'), 422,
         "/0/touchpoints/1/channel"),
        ("not-utf8-attributes", ok.replace(b'"emea"', b'"\xc3"'), 422, "/0/attributes"),
        ("not-utf8-second-line", ok + ok.replace(b'"ok"', b'"\xff"'), 422, "/1/journey_id"),
        ("not-utf8-column-wise", ndjson(line(touchpoints=Z_TOUCH, converted_at=None))
         .replace(b'"emea"', b'"\xff"'), 422, "/0/attributes"),
        ("attributes-40-deep", deep_line.replace(json.dumps(ATTRIBUTES), nested(40)).encode()
         + b"\n", 422, "/0/attributes"),
        ("attributes-5000-deep", deep_line.replace(json.dumps(ATTRIBUTES), nested(5000))
         .encode() + b"\n", 422, "/0/attributes"),
        ("touch-year-1", ndjson(line(touchpoints=[{"channel": "e", "timestamp": YEAR_1}],
                                     converted_at=None)),
         422, "/0/touchpoints/0/timestamp"),
        ("touch-year-9999", ndjson(line(touchpoints=[{"channel": "e", "timestamp": YEAR_9999}],
                                        converted_at=None)),
         422, "/0/touchpoints/0/timestamp"),
        ("converted-at-year-1", ndjson(line(converted_at=YEAR_1)), 422, "/0/converted_at"),
        ("converted-at-year-1-column-wise",
         ndjson(line(touchpoints=Z_TOUCH, converted_at=YEAR_1)), 422, "/0/converted_at"),
        ("converted-at-year-9999-column-wise",
         ndjson(journey("ok", touchpoints=Z_TOUCH, converted_at=None),
                line(touchpoints=Z_TOUCH, converted_at=YEAR_9999)), 422, "/1/converted_at"),
    ]  # fmt: skip
    for case_id, body, status, pointer in ndjson_cases:
        yield pytest.param("bulk-ndjson", body, NDJSON, status, pointer, id=f"ndjson-{case_id}")
    row = csv_row()
    csv_cases: list[tuple[str, bytes | str, int, str | None]] = [
        ("empty", "", 422, "/header/journey_id"),
        ("header-only", CSV_HEADER, 422, None),
        ("unknown-column", CSV_HEADER.replace("stage", "bogus") + row, 422, "/header/bogus"),
        ("missing-column", "journey_id,timestamp\nj1,2024-03-01T10:00:00Z\n", 422,
         "/header/channel"),
        ("more-cells", CSV_HEADER + row.rstrip() + ",extra\n", 422, "/0"),
        ("converted-maybe", CSV_HEADER + csv_row(converted="maybe"), 422, "/0/converted"),
        ("nul-in-channel", CSV_HEADER + csv_row(channel="em\x00il"), 422, "/0/channel"),
        ("unknown-stage-second-touch", CSV_HEADER + row + csv_row(stage="nope"), 422,
         "/1/stage"),
        ("not-utf8-cell", (CSV_HEADER + row).encode().replace(b"email", b"em\xe9il"), 422,
         "/0/channel"),
        ("not-utf8-second-journey", (CSV_HEADER + row + csv_row("j2")).encode()
         .replace(b"j2", b"j\xff"), 422, "/1/journey_id"),
        ("not-utf8-header", (CSV_HEADER + row).encode().replace(b"stage", b"st\xffge"), 422,
         "/header/st\ufffdge"),
        ("field-over-128-KiB", CSV_HEADER + csv_row(channel="e" * 140_000), 422, "/0"),
        ("field-over-128-KiB-second-row",
         CSV_HEADER + row + csv_row("j2", channel="e" * 140_000), 422, "/1"),
        ("header-over-128-KiB", "x" * 140_000 + "\n" + row, 422, "/header"),
        ("attributes-not-json", CSV_HEADER + csv_row(attributes="{oops"), 422, "/0/attributes"),
        ("attributes-40-deep", CSV_HEADER + csv_row(attributes=nested(40)), 422,
         "/0/attributes"),
        ("attributes-5000-deep", CSV_HEADER + csv_row(attributes=nested(5000)), 422,
         "/0/attributes"),
        ("touch-year-1", CSV_HEADER + row + csv_row(timestamp=YEAR_1), 422, "/1/timestamp"),
        ("converted-at-year-9999", CSV_HEADER + csv_row(converted_at=YEAR_9999), 422,
         "/0/converted_at"),
    ]  # fmt: skip
    for case_id, body, status, pointer in csv_cases:
        data = body.encode() if isinstance(body, str) else body
        yield pytest.param("bulk-csv", data, CSV, status, pointer, id=f"csv-{case_id}")
    for kind in ("application/json", "text/plain", "application/octet-stream"):
        yield pytest.param("bulk-ndjson", ok, kind, 415, None, id=f"bulk-{kind}")
    good = "2024-03-05,email,,5,,\n"
    spend_cases: list[tuple[str, bytes | str, int, str | None]] = [
        ("empty", "", 422, "/header/date"),
        ("header-only", SPEND_HEADER, 422, None),
        ("unknown-column", SPEND_HEADER.replace("rate", "fx") + good, 422, "/header/fx"),
        ("missing-column", "date,channel\n2024-03-01,email\n", 422, "/header/amount"),
        ("more-cells", SPEND_HEADER + good.rstrip() + ",extra\n", 422, "/0"),
        ("date-year-0", SPEND_HEADER + "0000-01-01,email,,5,,\n", 422, "/0/date"),
        ("amount-huge", SPEND_HEADER + f"2024-03-05,email,,{HUGE},,\n", 422, "/0/amount"),
        ("amount-inf", SPEND_HEADER + "2024-03-05,email,,inf,,\n", 422, "/0/amount"),
        ("nul-in-channel", SPEND_HEADER + "2024-03-05,em\x00il,,5,,\n", 422, "/0/channel"),
        ("currency-without-rate", SPEND_HEADER + "2024-03-05,email,,5,EUR,\n", 422, "/0/rate"),
        ("duplicate-key", SPEND_HEADER + good + good, 422, "/1"),
        ("not-utf8", (SPEND_HEADER + good).encode().replace(b"email", b"em\xe9il"), 422, "/"),
        ("campaign-too-long", SPEND_HEADER + "2024-03-05,email," + "c" * 201 + ",5,,\n", 422,
         "/0/campaign"),
    ]  # fmt: skip
    for case_id, body, status, pointer in spend_cases:
        data = body.encode() if isinstance(body, str) else body
        yield pytest.param("spend-csv", data, CSV, status, pointer, id=f"spend-csv-{case_id}")


@pytest.mark.parametrize(
    ("name", "data", "content_type", "status", "pointer"), [*_json_cases(), *_bulk_cases()]
)
@pytest.mark.usefixtures("unchanged")
def test_malformed_body(
    client: FlaskClient,
    auth: dict[str, str],
    name: str,
    data: Any,
    content_type: str | None,
    status: int,
    pointer: str | None,
) -> None:
    check(send(client, auth, ROUTES[name], data, content_type), status, pointer)


# ----------------------------------------------------------------- JSON in query strings
QUERY_ROUTES = ["/v1/attribution/table", "/v1/reports/funnel", "/report"]


@pytest.mark.parametrize("url", QUERY_ROUTES)
@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("attributes", nested(40)),
        ("attributes", nested(5000)),
        ("attributes", '{"a": "\\u0000"}'),
        ("attributes", "[1]"),
        ("attributes", "{"),
        ("channel_groups", nested(5000)),
        ("channel_groups", '{"a": ' + nested(40) + "}"),
    ],
    ids=["attributes-40", "attributes-5000", "nul", "array", "truncated", "groups-5000",
         "groups-40"],
)  # fmt: skip
@pytest.mark.usefixtures("unchanged")
def test_bad_json_in_the_query(
    client: FlaskClient, auth: dict[str, str], url: str, parameter: str, value: str
) -> None:
    response = client.get(url, query_string={parameter: value}, headers=auth)
    assert pointers(check(response, 422))[0].startswith(f"/query/{parameter}")


@pytest.mark.parametrize("parameter", ["options", "confidence"])
@pytest.mark.usefixtures("unchanged")
def test_bad_json_options_in_the_query(
    client: FlaskClient, auth: dict[str, str], parameter: str
) -> None:
    for value in (nested(5000), '{"markov": {"order": ' + str(HUGE) + "}}", "[]"):
        response = client.get(
            "/v1/attribution/table", query_string={parameter: value}, headers=auth
        )
        assert pointers(check(response, 422))[0].startswith(f"/query/{parameter}")


# ----------------------------------------------------------------- deletions
DELETES = {
    "journey": "/v1/journeys/{}",
    "customer": "/v1/customers/{}",
    "saved-report": "/v1/saved-reports/{}",
    "table-link": f"/v1/saved-reports/{SAVED}/links/{{}}",
}
BAD_IDS = {"too-long": "x" * 201, "nul": "%00", "control": "a%01b", "newline": "a%0Ab"}


@pytest.mark.parametrize("url", DELETES.values(), ids=DELETES.keys())
@pytest.mark.parametrize("bad", BAD_IDS.values(), ids=BAD_IDS.keys())
@pytest.mark.usefixtures("unchanged")
def test_deletion_of_a_malformed_id(
    client: FlaskClient, auth: dict[str, str], url: str, bad: str
) -> None:
    """An id no journey or customer can have matches no route."""
    check(client.delete(url.format(bad), headers=auth), 404)


# ----------------------------------------------------------------- methods
FAMILIES = {
    "/v1/journeys": {"POST"},
    "/v1/journeys/bulk": {"POST"},  # "bulk" is no journey id
    "/v1/journeys/j1": {"GET", "DELETE"},
    "/v1/paths": {"POST"},
    "/v1/stages": {"GET", "PUT"},
    "/v1/settings": {"GET", "PUT"},
    "/v1/attribution": {"POST"},
    "/v1/attribution/runs": {"GET", "POST"},
    "/v1/attribution/validate": {"POST"},
    "/v1/report-links": {"POST"},
    "/v1/spend": {"GET", "PUT", "DELETE"},
    "/v1/saved-reports": {"GET", "POST"},
    f"/v1/saved-reports/{SAVED}": {"GET", "PUT", "DELETE"},
    f"/v1/saved-reports/{SAVED}/table": {"GET"},
    f"/v1/saved-reports/{SAVED}/links": {"GET", "POST"},
}


@pytest.mark.parametrize(("url", "methods"), FAMILIES.items())
@pytest.mark.usefixtures("unchanged")
def test_wrong_method_names_the_allowed_ones(
    client: FlaskClient, auth: dict[str, str], url: str, methods: set[str]
) -> None:
    allowed = methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())
    for method in {"POST", "PUT", "PATCH", "DELETE"} - allowed:
        response = client.open(url, method=method, headers=auth)
        check(response, 405)
        assert set(response.headers["Allow"].split(", ")) == allowed


# ----------------------------------------------------------------- deletion by range
SPEND_RANGES = {
    "no-range": {},
    "no-end": {"date_from": "2024-03-01"},
    "reversed": {"date_from": "2024-03-02", "date_to": "2024-03-01"},
    "not-a-date": {"date_from": "2024-03-01", "date_to": "March"},
    "year-0": {"date_from": "0000-01-01", "date_to": "2024-03-01"},
    "unknown": {"date_from": "2024-03-01", "date_to": "2024-03-02", "bogus": "1"},
}


@pytest.mark.parametrize("query", SPEND_RANGES.values(), ids=SPEND_RANGES.keys())
@pytest.mark.usefixtures("unchanged")
def test_spend_deletion_with_a_bad_range(
    client: FlaskClient, auth: dict[str, str], query: dict[str, str]
) -> None:
    response = client.delete("/v1/spend", query_string=query, headers=auth)
    assert pointers(check(response, 422))[0].startswith("/query/")


def test_every_write_route_is_in_the_battery(app: Flask) -> None:
    """A new route that writes joins the battery (or this test names it)."""
    writing = {"POST", "PUT", "PATCH", "DELETE"}
    rules = app.url_map.iter_rules()
    wanted = {(m, r.rule) for r in rules for m in writing & set(r.methods or ())}
    urls = app.url_map.bind("localhost")
    covered = {
        (route.method, urls.match(route.url, route.method, return_rule=True)[0].rule)
        for route in ROUTES.values()
    }
    covered.add(("DELETE", "/v1/spend"))  # test_spend_deletion_with_a_bad_range
    covered |= {("DELETE", rule.rule) for rule in app.url_map.iter_rules()
                if any(url.startswith(rule.rule.split("<")[0]) for url in DELETES.values())
                and "DELETE" in (rule.methods or ())}  # fmt: skip
    assert wanted <= covered, wanted - covered
