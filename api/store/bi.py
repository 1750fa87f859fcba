"""Read-only login roles for BI tools, one workspace each (``sql/migrations/0013``).

The SQL functions ``create_bi_role`` and ``drop_bi_role`` do the work; the database role
the service uses needs ``CREATEROLE``. Roles are server-wide, so a name can be taken
by a role of another database.
"""

from __future__ import annotations

import psycopg

from .sqlfiles import query


def create_bi_role(
    conn: psycopg.Connection, workspace_id: int, role_name: str, password: str
) -> None:
    params = {"workspace_id": workspace_id, "role_name": role_name, "password": password}
    conn.execute(query("create_bi_role"), params)


def drop_bi_role(conn: psycopg.Connection, role_name: str) -> None:
    conn.execute(query("drop_bi_role"), {"role_name": role_name})
