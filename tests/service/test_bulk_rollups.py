"""Bulk writes in many small chunks keep the rollups equal to a fresh GROUP BY.

Tiny chunks exercise every way a bulk write stores rollups: totals COPYed straight
into a workspace without rollups, upserted while the merge thread waits, upserted at
the end into a workspace that has some, and moved by merges of re-sent journeys.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import store
from api.service import bulk
from api.store import journeys as store_journeys
from tests.helpers import ndjson
from tests.store.test_store_rollups import as_record, journeys, rollups

# More ids than the batch-endpoint test: most uploads hold new journeys, stored directly.
many_ids = st.tuples(journeys, st.integers(0, 30)).map(
    lambda t: {**t[0], "journey_id": f"{t[0]['journey_id']}{t[1]}"}
)
files = st.lists(st.lists(many_ids, min_size=1, max_size=20), min_size=1, max_size=4)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(uploads=files, chunk=st.integers(1, 4), held=st.sampled_from([2, 1_000_000]))
def test_bulk_rollups_equal_a_fresh_group_by(
    client: FlaskClient,
    conn: psycopg.Connection,
    new_key: Any,
    monkeypatch: pytest.MonkeyPatch,
    uploads: list[list[dict[str, Any]]],
    chunk: int,
    held: int,
) -> None:
    monkeypatch.setattr(bulk, "LINES_PER_BATCH", 2)
    monkeypatch.setattr(store_journeys._Merger, "HELD_TOTALS", held)  # 2: flushed early
    monkeypatch.setattr(bulk, "BLOCK_BYTES", 1)  # NDJSON: a block per line
    monkeypatch.setattr(store.JourneyWrite, "CHUNK_ROWS", chunk)
    monkeypatch.setattr(store.JourneyWrite, "MERGE_CHUNK_ROWS", chunk)
    workspace_id, auth = new_key()
    for upload in uploads:
        records = {j["journey_id"]: as_record(j) for j in upload}  # one record per id
        headers = {**auth, "Content-Type": "application/x-ndjson"}
        response = client.post("/v1/journeys/bulk", data=ndjson(*records.values()), headers=headers)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["received"] == len(records)
        conn.rollback()
        assert rollups(conn, "stored_rollups", workspace_id) == rollups(
            conn, "fresh_rollups", workspace_id
        )
