"""The spec says what the server does, in the shapes generators and fuzzers read: media
types of bodies and tables, JSON query parameters, the engine's option ranges, links,
and request body examples the live app accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.config import Settings
from api.http.openapi import METHODS, spec_dict
from api.service.credit import COLUMNS, COMPARISON_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
JSON_QUERY = {"attributes", "channel_groups", "options", "confidence"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, secret_key="spec-examples")  # links on


@pytest.fixture
def spec(app: Flask) -> dict[str, Any]:
    return spec_dict(app)


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def schema_of(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def test_bulk_bodies_are_ndjson_and_csv_strings(spec) -> None:
    body = spec["paths"]["/v1/journeys/bulk"]["post"]["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"application/x-ndjson", "text/csv"}
    for media in body["content"].values():
        assert media["schema"]["type"] == "string"
        assert media["example"].endswith("\n")


def test_every_table_declares_json_rows_and_csv_text(spec) -> None:
    tables = 0
    for _, path, operation in operations(spec):
        content = operation["responses"].get("200", {}).get("content", {})
        if "text/csv" not in content:
            continue
        tables += 1
        assert content["text/csv"]["schema"]["type"] == "string", path
        if path.endswith(".csv"):  # a CSV twin answers CSV alone
            assert set(content) == {"text/csv"}, path
            continue
        rows = content.get("application/json") or content["application/x-ndjson"]
        assert rows["schema"]["type"] == "array", path
    assert tables >= 14


def test_json_query_parameters_are_declared_as_json_content(spec) -> None:
    seen = set()
    for _, path, operation in operations(spec):
        for param in operation.get("parameters", []):
            if param["name"] in JSON_QUERY and param["in"] == "query":
                seen.add(param["name"])
                assert "schema" not in param, (path, param["name"])
                schema = param["content"]["application/json"]["schema"]
                assert schema_of(spec, schema)["type"] == "object", (path, param["name"])
    assert seen == JSON_QUERY


def test_markov_order_is_typed_as_the_engine_takes_it(spec) -> None:
    order = spec["components"]["schemas"]["MarkovOptions"]["properties"]["order"]
    assert order["oneOf"] == [
        {"type": "integer", "minimum": 1, "maximum": 4},
        {"enum": ["auto"]},
    ]
    confidence = spec["components"]["schemas"]["ConfidenceIn"]["properties"]
    assert (confidence["replicates"]["minimum"], confidence["replicates"]["maximum"]) == (
        10,
        10_000,
    )


def test_closed_sets_are_enums(spec) -> None:
    row = spec["components"]["schemas"]["CreditRow"]["properties"]
    assert row["dimension"]["enum"] == ["channel", "stage", "channel_stage", "campaign"]
    assert "markov" in row["model"]["enum"]
    status = spec["components"]["schemas"]["RunSummary"]["properties"]["status"]
    assert status["enum"] == ["queued", "running", "succeeded", "failed"]


def test_runs_link_to_their_table_and_journeys(spec) -> None:
    ids = {op["operationId"] for _, _, op in operations(spec)}
    started = spec["paths"]["/v1/attribution/runs"]["post"]["responses"]["202"]["links"]
    assert {link["operationId"] for link in started.values()} == {
        "get_run",
        "get_run_table",
        "get_run_journeys",
        "get_run_comparison",
    }
    for _, path, operation in operations(spec):
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                assert link.get("operationId", "x") in ids or "operationRef" in link, path


BODIES = [
    ("post", "/v1/journeys", 200),
    ("post", "/v1/paths", 200),
    ("put", "/v1/stages", 200),
    ("post", "/v1/attribution", 200),
    ("post", "/v1/attribution/runs", 202),
    ("put", "/v1/settings", 200),
    ("put", "/v1/event-rules", 200),
    ("post", "/v1/events", 200),
    ("post", "/v1/report-links", 200),
    ("put", "/v1/spend", 200),
    ("post", "/v1/saved-reports", 201),
]


def test_every_json_body_has_an_example(spec) -> None:
    for method, path, operation in operations(spec):
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            assert "example" in content, (method, path, media)


@pytest.mark.parametrize(("method", "path", "status"), BODIES)
def test_request_body_examples_are_accepted(client: FlaskClient, auth, spec, method, path, status):
    """What "Try it out" on /docs sends works: the body's example, on the live app."""
    example = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["example"]
    client.post(
        "/v1/journeys",
        json=spec["paths"]["/v1/journeys"]["post"]["requestBody"]["content"]["application/json"][
            "example"
        ],
        headers=auth,
    )
    response = client.open(path, method=method.upper(), json=example, headers=auth)
    assert response.status_code == status, response.get_data(as_text=True)


def test_saved_report_examples_are_accepted(client: FlaskClient, auth, spec) -> None:
    """The saved report's example, then the replacement and table link examples on it."""
    paths = spec["paths"]
    created = paths["/v1/saved-reports"]["post"]["requestBody"]["content"]["application/json"]
    response = client.post("/v1/saved-reports", json=created["example"], headers=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    name = created["example"]["name"]
    for method, path, status in (
        ("put", "/v1/saved-reports/{name}", 200),
        ("post", "/v1/saved-reports/{name}/links", 201),
    ):
        example = paths[path][method]["requestBody"]["content"]["application/json"]["example"]
        url = path.replace("{name}", name)
        response = client.open(url, method=method.upper(), json=example, headers=auth)
        assert response.status_code == status, response.get_data(as_text=True)


def test_bulk_examples_are_accepted(client: FlaskClient, auth, spec) -> None:
    body = spec["paths"]["/v1/journeys/bulk"]["post"]["requestBody"]["content"]
    for media, content in body.items():
        response = client.post(
            "/v1/journeys/bulk", data=content["example"], content_type=media, headers=auth
        )
        assert response.status_code == 200, response.get_data(as_text=True)


def test_spend_takes_json_and_csv_and_its_csv_example_is_accepted(client, auth, spec) -> None:
    body = spec["paths"]["/v1/spend"]["put"]["requestBody"]["content"]
    assert set(body) == {"application/json", "text/csv"}
    assert body["text/csv"]["schema"]["type"] == "string"
    example = body["text/csv"]["example"]
    response = client.put("/v1/spend", data=example, content_type="text/csv", headers=auth)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_credit_rows_are_typed_column_by_column(spec) -> None:
    """Every served column is in the row schema, typed; in the served order."""
    for name, columns in (("CreditRow", COLUMNS), ("ComparisonRow", COMPARISON_COLUMNS)):
        properties = spec["components"]["schemas"][name]["properties"]
        assert list(properties) == list(columns), name
        for column, schema in properties.items():
            assert "type" in schema, (name, column)


def test_the_readme_bulk_example_file_is_accepted(client: FlaskClient, auth) -> None:
    data = (ROOT / "examples" / "journeys.ndjson").read_bytes()
    response = client.post(
        "/v1/journeys/bulk", data=data, content_type="application/x-ndjson", headers=auth
    )
    assert response.get_json() == {"received": 4, "created": 4, "replaced": 0, "unchanged": 0}
    assert "--data-binary @examples/journeys.ndjson" in (ROOT / "README.md").read_text()
