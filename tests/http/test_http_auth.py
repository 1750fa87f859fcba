"""API keys and workspace isolation."""

from __future__ import annotations

import psycopg
import pytest
from flask.testing import FlaskClient

from api import store
from tests.helpers import assert_problem, journey


@pytest.fixture
def other_auth(conn: psycopg.Connection) -> dict[str, str]:
    """A key for a second workspace."""
    other = store.create_workspace(conn, "globex")
    key = store.create_api_key(conn, other.workspace_id)
    conn.commit()
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    "header",
    [None, "Basic abc", "Bearer ", "Bearer nonsense", "Bearer pck_000000000000_wrong"],
)
def test_requests_without_a_valid_key_are_refused(
    client: FlaskClient, api_key: str, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/v1/channels", headers=headers)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_key_with_the_right_prefix_but_wrong_secret_is_refused(
    client: FlaskClient, api_key: str
) -> None:
    forged = api_key[:-4] + "AAAA"
    assert_problem(client.get("/v1/channels", headers={"Authorization": f"Bearer {forged}"}), 401)


def test_revoked_keys_stop_working(
    client: FlaskClient, auth: dict[str, str], api_key: str, conn: psycopg.Connection
) -> None:
    assert client.get("/v1/channels", headers=auth).status_code == 200
    store.revoke_api_key(conn, api_key)
    conn.commit()
    assert_problem(client.get("/v1/channels", headers=auth), 401)


def test_keys_are_stored_hashed(conn: psycopg.Connection, api_key: str) -> None:
    rows = conn.execute("SELECT prefix, key_hash FROM api_keys").fetchall()
    assert len(rows) == 1
    prefix, key_hash = rows[0]
    assert api_key.startswith(f"pck_{prefix}_")
    assert api_key.encode() not in bytes(key_hash)


def test_health_needs_no_key(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["pending_migrations"] == []
    assert client.get("/openapi.json").status_code == 200


def test_workspaces_never_see_each_other(
    client: FlaskClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    client.post("/v1/journeys", json={"journeys": [journey("shared-id")]}, headers=auth)
    assert_problem(client.get("/v1/journeys/shared-id", headers=other_auth), 404)
    assert_problem(client.delete("/v1/journeys/shared-id", headers=other_auth), 404)
    assert client.delete("/v1/customers/c1", headers=other_auth).get_json()["deleted"] == 0
    assert client.get("/v1/channels", headers=other_auth).get_json() == []
    # The same journey id in the other workspace is a different journey.
    changed = journey("shared-id", value=1.0)
    sent = client.post("/v1/journeys", json={"journeys": [changed]}, headers=other_auth)
    assert sent.get_json()["created"] == 1
    assert client.get("/v1/journeys/shared-id", headers=auth).get_json()["value"] == 25.5
    assert client.get("/v1/journeys/shared-id", headers=other_auth).get_json()["value"] == 1.0


def test_load_paths_reads_one_workspace(
    client: FlaskClient,
    auth: dict[str, str],
    other_auth: dict[str, str],
    conn: psycopg.Connection,
    workspace: store.Workspace,
) -> None:
    client.post("/v1/journeys", json={"journeys": [journey("a")]}, headers=auth)
    client.post("/v1/journeys", json={"journeys": [journey("b"), journey("c")]}, headers=other_auth)
    paths = store.load_paths(conn, workspace.workspace_id)
    assert paths["conversions"].sum() == 1
