"""A client generated from openapi.yaml by openapi-python-client (a test dependency)
drives the walk-through against the live app over HTTP: readiness, a JSON batch, the
NDJSON bulk upload of the shipped example file, a run with options, its table as JSON
and through its CSV twin, a report both ways, a report link, and an erasure. Every
call goes through the generated functions and their typed models."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask

from api.config import Settings
from tests.browser import serve
from tests.helpers import journey

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "pathcredit_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    out = tmp_path_factory.mktemp("client")
    generator = Path(sys.executable).with_name("openapi-python-client")
    spec, config, target = ROOT / "openapi.yaml", ROOT / "tests" / "client.yaml", out / PACKAGE
    argv = [str(generator), "generate", "--path", str(spec), "--config", str(config),
            "--meta", "none", "--output-path", str(target)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, pool_size=3, secret_key="client-test-secret")


def call(module: str, **kwargs: Any) -> Any:
    """A generated operation's parsed answer, failing on anything but success."""
    operation = importlib.import_module(f"{PACKAGE}.api.{module}")
    response = operation.sync_detailed(**kwargs)
    assert 200 <= response.status_code < 300, (module, response.status_code, response.content)
    return response.parsed


def test_the_walk_through_runs_through_a_generated_client(
    generated: ModuleType, app: Flask, api_key: str
) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    with serve(app) as base:
        client = generated.AuthenticatedClient(base_url=base, token=api_key)
        assert call("health.check_readiness", client=client).status == "ok"

        batch = models.JourneyBatchIn.from_dict({"journeys": [journey("j-1", customer_id="c9")]})
        written = call("journeys.ingest_journeys", client=client, body=batch)
        assert (written.received, written.created) == (1, 1)

        ndjson = (ROOT / "examples" / "journeys.ndjson").read_bytes()
        upload = types.File(payload=io.BytesIO(ndjson), file_name="journeys.ndjson")
        bulk = call("journeys.ingest_journey_file", client=client, body=upload)
        assert bulk.received == ndjson.count(b"\n") and bulk.created == bulk.received

        body = models.AttributionIn.from_dict(
            {"models": ["last_touch", "markov"], "options": {"markov": {"order": 1}}}
        )
        run = call("attribution.run_attribution", client=client, body=body)
        assert run.status == "succeeded"
        rows = call("attribution.get_run_table", client=client, run_id=run.run_id)
        text = call("attribution.get_run_table_csv", client=client, run_id=run.run_id)
        assert isinstance(text, str) and text.startswith("run_id,date_from,date_to,model,")
        assert len(text.strip().splitlines()) == len(rows) + 1
        assert {r.model for r in rows} == {"last_touch", "markov"}

        funnel = call("reports.report_funnel", client=client)
        funnel_csv = call("reports.report_funnel_csv", client=client)
        assert len(funnel_csv.strip().splitlines()) == len(funnel) + 1

        link = call(
            "report.create_report_link",
            client=client,
            body=models.ReportLinkIn.from_dict({"models": ["linear"]}),
        )
        assert "/report?token=" in link.url

        erased = call("journeys.erase_customer", client=client, customer_id="c9")
        assert erased.deleted == 1
