"""Schemathesis against the live app, from the committed openapi.yaml.

Every operation gets generated requests (valid and invalid) with a valid API key, over
HTTP to the app served on 127.0.0.1 with a real database that holds a few journeys.
Each response must not be a 5xx and must match the spec: a documented status, content
type, headers and body schema. Examples per operation are few, so the whole run stays
within about a minute on a small machine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import store
from api.app import create_app
from api.config import Settings
from tests.browser import serve
from tests.conftest import with_database
from tests.http.test_reports import JOURNEYS, journey_record

ROOT = Path(__file__).resolve().parents[2]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 6

# bulk uploads are text: send generated NDJSON bodies as they come
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml")
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)


@dataclass(frozen=True)
class Live:
    url: str
    headers: dict[str, str]
    database_url: str


@pytest.fixture(scope="module")
def live(admin_url: str, template_db: str) -> Iterator[Live]:
    """The app on a free port over a database of its own, seeded with journeys."""
    name = f"{template_db.removesuffix('_template')}_fuzz"
    store.copy_database(admin_url, name, template_db)
    url = with_database(admin_url, name)
    with psycopg.connect(url) as conn:
        workspace = store.create_workspace(conn, "fuzz")
        key = store.create_api_key(conn, workspace.workspace_id)
    app = create_app(Settings(database_url=url, pool_size=4, secret_key="fuzz-secret"))
    headers = {"Authorization": f"Bearer {key}"}
    records = [journey_record(i + 1, *j) for i, j in enumerate(JOURNEYS)]
    seeded = app.test_client().post("/v1/journeys", json={"journeys": records}, headers=headers)
    assert seeded.status_code == 200, seeded.get_data(True)
    try:
        with serve(app) as base:
            yield Live(base, headers, url)
    finally:
        # Runs the fuzzing started go on in threads of this process: let them end
        # before their database does (else they reopen a pool on a dropped database).
        for thread in threading.enumerate():
            if thread.name.startswith("run-") and thread.name != "run-heartbeat":
                thread.join(timeout=300)
        app.extensions["pathcredit.db"].close()
        store.drop_database(admin_url, name)


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_spec(case: schemathesis.Case, live: Live) -> None:
    case.call_and_validate(base_url=live.url, headers=live.headers, checks=CHECKS, timeout=60)


@pytest.mark.slow
def test_api_workflows_conform_to_the_spec(live: Live) -> None:
    """Call sequences along the spec's links: a run and its tables, a journey and its
    deletion, a report link and the report it opens, a saved report, its table and a
    table link that reads it."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
            return {"base_url": live.url, "headers": live.headers, "timeout": 60}

        def validate_response(
            self, response: schemathesis.Response, case: schemathesis.Case, *args, **kwargs
        ) -> None:
            case.validate_response(response, checks=CHECKS)

        def teardown(self) -> None:
            # Each scenario starts without saved reports: a name saved by an earlier
            # scenario would make the same steps answer 409 instead of 201, and the
            # generator requires the same steps to answer alike.
            with psycopg.connect(live.database_url) as conn:
                conn.execute("DELETE FROM saved_reports")

    Workflow.run(
        settings=settings(
            max_examples=15,
            stateful_step_count=4,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
