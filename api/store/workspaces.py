"""Workspaces and their API keys.

A key is ``pck_<prefix>_<secret>``: the prefix finds the row, the SHA-256 of the whole
key must match. Only the hash is stored; the key is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import psycopg

from .dictionaries import insert_default_stages
from .errors import ConflictError, NotFoundError
from .sqlfiles import query

KEY_SCHEME = "pck"


@dataclass(frozen=True)
class Workspace:
    workspace_id: int
    name: str


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def key_prefix(key: str) -> str | None:
    """The lookup prefix of a key, or None when it is not shaped like one of ours."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME or not parts[1] or not parts[2]:
        return None
    return parts[1]


def create_workspace(conn: psycopg.Connection, name: str) -> Workspace:
    """A new workspace with the default funnel stages."""
    if find_workspace(conn, name) is not None:
        raise ConflictError(f"workspace {name!r} already exists")
    row = conn.execute(query("insert_workspace"), {"name": name}).fetchone()
    assert row is not None
    workspace = Workspace(row[0], name)
    insert_default_stages(conn, workspace.workspace_id)
    return workspace


def find_workspace(conn: psycopg.Connection, name: str) -> Workspace | None:
    row = conn.execute(query("find_workspace"), {"name": name}).fetchone()
    return None if row is None else Workspace(row[0], row[1])


def get_workspace(conn: psycopg.Connection, name: str) -> Workspace:
    workspace = find_workspace(conn, name)
    if workspace is None:
        raise NotFoundError(f"no workspace named {name!r}")
    return workspace


def create_api_key(conn: psycopg.Connection, workspace_id: int) -> str:
    """Store a new key's hash and return the key itself (the only time it is known)."""
    prefix = secrets.token_hex(6)
    key = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    conn.execute(
        query("insert_api_key"),
        {"workspace_id": workspace_id, "prefix": prefix, "key_hash": hash_key(key)},
    )
    return key


def authenticate(conn: psycopg.Connection, key: str) -> Workspace | None:
    """The workspace a live key belongs to, or None."""
    prefix = key_prefix(key)
    if prefix is None:
        return None
    row = conn.execute(query("find_api_key"), {"prefix": prefix}).fetchone()
    if row is None or not hmac.compare_digest(bytes(row[1]), hash_key(key)):
        return None
    return Workspace(row[0], row[2])


def revoke_api_key(conn: psycopg.Connection, prefix_or_key: str) -> int:
    """Revoke a key given the key itself or its prefix; returns its workspace id."""
    prefix = key_prefix(prefix_or_key) or prefix_or_key
    row = conn.execute(query("revoke_api_key"), {"prefix": prefix}).fetchone()
    if row is None:
        raise NotFoundError(f"no live API key with prefix {prefix!r}")
    return int(row[0])
