"""A process keeps the path set of each recent selection and brings it up to date.

On the same data version the set is the answer. After a write that changed only
totals, the held set takes the new totals and keeps the arrays derived from its
touches; after a write that added a path, or renamed a stage, it is built again.
Either way it equals a set built from scratch."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import pytest
from flask.testing import FlaskClient

from api import store
from api.service import selection as sel
from api.service.selection import Selection, load_selection, read_selection
from api.store import interned
from api.store.runs import data_version
from attribution import PathSet
from attribution.run import prepare
from tests.helpers import journey, touch


@pytest.fixture(autouse=True)
def empty_caches() -> None:
    sel._recent.clear()
    interned._all_day.clear()


def post(client: FlaskClient, auth: dict[str, str], *records: dict[str, Any]) -> None:
    response = client.post("/v1/journeys", json={"journeys": list(records)}, headers=auth)
    assert response.status_code == 200, response.get_json()


def record(journey_id: str, *steps: tuple[str, str], converted: bool = True) -> dict[str, Any]:
    touches = [touch(c, f"2024-03-0{k + 1}T10:00:00Z", s) for k, (c, s) in enumerate(steps)]
    return journey(
        journey_id, touchpoints=touches, converted=converted, value=4.0 if converted else 0.0,
        converted_at=None,
    )  # fmt: skip


def loaded(conn: psycopg.Connection, ws: int, selection: Selection) -> PathSet:
    version = data_version(conn, ws)
    paths = load_selection(conn, ws, selection, version=version)
    conn.rollback()
    return paths


def fresh(conn: psycopg.Connection, ws: int, selection: Selection) -> PathSet:
    s = selection
    paths = read_selection(conn, ws, s)
    conn.rollback()
    return prepare(paths, collapse_repeats=s.collapse_repeats, channel_groups=s.channel_groups)


def assert_same(a: PathSet, b: PathSet) -> None:
    assert a.channel_names == b.channel_names and a.stage_names == b.stage_names
    for name in ("tokens", "offsets", "conversions", "nulls", "value", "stage_tokens"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


SELECTIONS = [Selection(), Selection(collapse_repeats=True, channel_groups={"email": "owned"})]


@pytest.mark.parametrize("selection", SELECTIONS)
def test_a_totals_only_write_keeps_what_the_touches_gave(
    client: FlaskClient,
    auth: dict[str, str],
    conn: psycopg.Connection,
    workspace: store.Workspace,
    selection: Selection,
) -> None:
    ws = workspace.workspace_id
    post(
        client, auth,
        record("a", ("email", "awareness"), ("email", "awareness"), ("search", "decision")),
        record("b", ("social", "awareness")),
        record("c", ("search", "decision"), converted=False),
    )  # fmt: skip
    first = loaded(conn, ws, selection)
    assert loaded(conn, ws, selection) is first  # same version: nothing read
    first.derived("probe", lambda p: np.arange(len(p.tokens)))
    index = first.path_index
    post(client, auth, record("d", ("social", "awareness")))  # a known path gains
    second = loaded(conn, ws, selection)
    assert second is not first
    assert_same(second, fresh(conn, ws, selection))
    assert second.tokens is first.tokens and np.shares_memory(second.path_index, index)
    assert second.derived("probe", lambda p: None) is not None  # handed on
    assert second.conversions.sum() == first.conversions.sum() + 1


@pytest.mark.parametrize("selection", SELECTIONS)
def test_a_new_path_or_a_renamed_stage_builds_the_set_again(
    client: FlaskClient,
    auth: dict[str, str],
    conn: psycopg.Connection,
    workspace: store.Workspace,
    selection: Selection,
) -> None:
    ws = workspace.workspace_id
    post(client, auth, record("a", ("email", "awareness")), record("b", ("search", "decision")))
    first = loaded(conn, ws, selection)
    post(client, auth, record("c", ("display", "awareness")))
    second = loaded(conn, ws, selection)
    assert second.tokens is not first.tokens
    assert_same(second, fresh(conn, ws, selection))
    stages = client.get("/v1/stages", headers=auth).get_json()
    renamed = [
        {"name": "seen" if s["name"] == "awareness" else s["name"], "code": s["code"]}
        for s in stages
    ]
    response = client.put("/v1/stages", json={"stages": renamed}, headers=auth)
    assert response.status_code == 200, response.get_json()
    third = loaded(conn, ws, selection)
    assert third.stage_names is not None and "seen" in third.stage_names
    assert_same(third, fresh(conn, ws, selection))
