"""The committed openapi.yaml is exactly what the server generates, and valid."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from api.http.openapi import METHODS, OPERATION_IDS, spec_dict, spec_yaml

ROOT = Path(__file__).resolve().parents[2]


def test_committed_spec_matches_the_generated_one(app: Flask) -> None:
    committed = (ROOT / "openapi.yaml").read_text(encoding="utf-8")
    assert committed == spec_yaml(app), "openapi.yaml is out of date: run `make spec`"


def test_spec_is_valid_openapi(app: Flask) -> None:
    validate(spec_dict(app))


def test_every_error_response_is_a_problem(app: Flask) -> None:
    spec = spec_dict(app)
    responses = spec["components"]["responses"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if status == "default" or int(status) >= 400:
                    ref = response["$ref"].rsplit("/", 1)[-1]
                    content = responses[ref]["content"]
                    assert list(content) == ["application/problem+json"], (path, method, status)


def test_spec_is_served(client: FlaskClient, app: Flask) -> None:
    assert client.get("/openapi.json").get_json() == spec_dict(app)
    served = client.get("/openapi.yaml")
    assert served.mimetype == "application/yaml"
    assert yaml.safe_load(served.get_data(as_text=True)) == spec_dict(app)


def test_every_operation_has_a_stable_snake_case_name(app: Flask) -> None:
    """Generated clients name their functions by operationId: each is given here by
    hand (not derived from the path), unique, and snake_case."""
    spec = spec_dict(app)
    named = {
        (method, path): operation["operationId"]
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }
    twins = {
        (method, path): OPERATION_IDS[(method, path.removesuffix(".csv"))] + "_csv"
        for method, path in named
        if path.endswith(".csv")
    }
    assert set(named) == set(OPERATION_IDS) | set(twins), "name new operations in OPERATION_IDS"
    assert named == {**OPERATION_IDS, **twins}
    assert len(set(named.values())) == len(named)
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name) for name in named.values())
