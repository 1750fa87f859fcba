"""Read-only login roles for BI tools, one workspace each (``sql/migrations/0013``).

The SQL functions ``create_bi_role`` and ``drop_bi_role`` do the work; the database role
the service uses needs ``CREATEROLE``. Roles are server-wide, so a name can be taken
by a role of another database.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .sqlfiles import query


def create_bi_role(
    conn: psycopg.Connection, workspace_id: int, role_name: str, password: str
) -> None:
    params = {"workspace_id": workspace_id, "role_name": role_name, "password": password}
    conn.execute(query("create_bi_role"), params)


def drop_bi_role(conn: psycopg.Connection, role_name: str) -> None:
    conn.execute(query("drop_bi_role"), {"role_name": role_name})


def login_url(url: str, role: str) -> str:
    """The service's database URI with ``role`` as its user and no password, socket
    directory (or host), port and database spelled out: it works from psql and from BI
    tools on the machine of the embedded server, which listens on a socket only."""
    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if k not in ("user", "password")}
    host = params.pop("host", "") or "localhost"
    port = params.pop("port", "") or "5432"
    database = params.pop("dbname", "") or role
    if host.startswith("/"):  # a socket directory goes in the query, as libpq reads it
        authority = ""
        params = {"host": host, "port": port, **params}
    else:
        authority = f"{host}:{port}"
    options = urlencode(params, safe="/")
    return f"postgresql://{quote(role)}@{authority}/{quote(database)}" + (
        f"?{options}" if options else ""
    )
