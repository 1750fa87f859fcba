"""Overlapping re-sends and customer erasures from several clients at once.

Six clients of a served instance share twenty customers and their journeys: they
re-send batches and NDJSON uploads of them (changed or not), erase customers and
delete single journeys, all at once. No request may fail on the server's side (a
deadlock PostgreSQL broke would be a 500) or hang, and the rollups must come out
exact.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import (
    Clients,
    Response,
    assert_rollups_exact,
    random_journeys,
    served,
    workspace_id,
)
from tests.helpers import ndjson

pytestmark = pytest.mark.slow

CLIENTS = 6
CUSTOMERS = 20
PER_CUSTOMER = 4
SECONDS = 10.0
SLOWEST = 15.0  # far below a hang, far above a write of this size on a busy machine
EXPECTED = {"batch": {200}, "bulk": {200}, "erase": {200}, "delete": {204, 404}}


def shared_journeys(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """``n`` journeys of the shared customers, by id, their paths and values drawn
    anew (so a re-send is created, replaced or unchanged as it falls)."""
    records = {}
    for record in random_journeys("x", n, seed=rng.randrange(1 << 30), customers=CUSTOMERS):
        customer = record["customer_id"]
        record["journey_id"] = f"{customer}-j{rng.randrange(PER_CUSTOMER)}"
        records[record["journey_id"]] = record  # one record per id in a request
    return list(records.values())


def test_resends_and_erasures_race_without_errors_and_keep_rollups_exact(
    database_url: str, tmp_path: Path
) -> None:
    seen: list[tuple[str, Response]] = []
    lock = threading.Lock()
    with served(database_url, tmp_path, workers=2) as server:

        def work(number: int, stop: threading.Event) -> None:
            rng = random.Random(number)
            ndjson_type = {"Content-Type": "application/x-ndjson"}
            while not stop.is_set():
                kind = rng.choice(["batch", "batch", "bulk", "erase", "delete"])
                if kind == "batch":
                    body = {"journeys": shared_journeys(rng, 15)}
                    response = server.request("POST", "/v1/journeys", body)
                elif kind == "bulk":
                    data = ndjson(*shared_journeys(rng, 40))
                    response = server.request("POST", "/v1/journeys/bulk", data, ndjson_type)
                elif kind == "erase":
                    customer = f"c{rng.randrange(CUSTOMERS)}"
                    response = server.request("DELETE", f"/v1/customers/{customer}")
                else:
                    journey_id = f"c{rng.randrange(CUSTOMERS)}-j{rng.randrange(PER_CUSTOMER)}"
                    response = server.request("DELETE", f"/v1/journeys/{journey_id}")
                with lock:
                    seen.append((kind, response))

        clients = Clients(CLIENTS, work)
        time.sleep(SECONDS)
        clients.stop()

    kinds = {kind for kind, _ in seen}
    assert kinds == set(EXPECTED), kinds
    for kind, response in seen:
        assert response.status in EXPECTED[kind], (kind, response.status, response.body)
        assert response.seconds < SLOWEST, (kind, response.seconds)
    outcomes = [r.json() for kind, r in seen if kind in ("batch", "bulk")]
    assert sum(o["replaced"] for o in outcomes) > 0 and sum(o["created"] for o in outcomes) > 0
    assert sum(r.json()["deleted"] for kind, r in seen if kind == "erase") > 0
    assert_rollups_exact(database_url, workspace_id(database_url))
