"""Every table route has a CSV twin at `<path>.csv`: the same rows, CSV alone, an
operation of its own in the spec (a generated client types a response by its media
type, so a route answering JSON and CSV reads its CSV as JSON)."""

from __future__ import annotations

from pathlib import Path

import yaml
from flask.testing import FlaskClient

from tests.http.test_reports import JOURNEYS, ingest, journey_record

ROOT = Path(__file__).resolve().parents[2]


def test_a_twin_answers_the_csv_of_its_route(client: FlaskClient, auth: dict[str, str]) -> None:
    ingest(client, auth, [journey_record(i + 1, *j) for i, j in enumerate(JOURNEYS)])
    run = client.post("/v1/attribution", json={"models": ["linear"]}, headers=auth).get_json()
    for path in (
        f"/v1/attribution/runs/{run['run_id']}/table",
        "/v1/reports/funnel",
        "/v1/channels",
    ):
        twin = client.get(path + ".csv", headers=auth)
        assert twin.status_code == 200, path
        assert twin.mimetype == "text/csv"
        plain = client.get(path + "?format=csv", headers=auth)
        assert twin.get_data() == plain.get_data(), path
        # the twin ignores format=json: it answers CSV alone
        assert client.get(path + ".csv?format=json", headers=auth).mimetype == "text/csv"
    assert client.get("/v1/reports/funnel.csv").status_code == 401


def test_each_table_operation_has_a_csv_only_twin_in_the_spec() -> None:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    tables = [
        path
        for path, item in spec["paths"].items()
        if "get" in item
        and {"application/json", "text/csv"} <= set(item["get"]["responses"]["200"]["content"])
    ]
    assert len(tables) >= 15
    for path in tables:
        twin = spec["paths"][f"{path}.csv"]["get"]
        assert set(twin["responses"]["200"]["content"]) == {"text/csv"}, path
        assert twin["operationId"] == spec["paths"][path]["get"]["operationId"] + "_csv"
