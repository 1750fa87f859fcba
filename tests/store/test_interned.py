"""Interned paths: codes read once per process, totals by path id, and the migration
that converted stored rollups to them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from flask.testing import FlaskClient

from api import store
from api.store import interned
from api.store.interned import PathCodes
from api.store.migrations import migrate, migration_files
from tests.conftest import SESSION, with_database
from tests.helpers import journey, touch


def codes_of(*paths: tuple[int, list[int]]) -> tuple[Any, ...]:
    """(ids, lengths, channels, stages) of paths given as (id, channel codes); each
    stage code is the channel code times ten."""
    ids = np.array([p for p, _ in paths], dtype=np.int64)
    lengths = np.array([len(c) for _, c in paths], dtype=np.int64)
    channels = np.array([c for _, cs in paths for c in cs], dtype=np.int16)
    return ids, lengths, channels, channels * 10


def test_codes_gather_paths_in_the_order_asked() -> None:
    codes = PathCodes.empty().add(*codes_of((3, [1, 2]), (5, [4]), (9, [7, 8, 9])))
    channels, stages, offsets = codes.gather(np.array([9, 3, 9], dtype=np.int64))
    assert channels.tolist() == [7, 8, 9, 1, 2, 7, 8, 9]
    assert stages.tolist() == [70, 80, 90, 10, 20, 70, 80, 90]
    assert offsets.tolist() == [0, 3, 5, 8]
    assert codes.missing(np.array([1, 3, 6, 9, 12], dtype=np.int64)).tolist() == [1, 6, 12]
    assert codes.max_id == 9


def test_codes_a_late_commit_took_are_placed_by_id() -> None:
    codes = PathCodes.empty().add(*codes_of((3, [1, 2]), (9, [7])))
    codes = codes.add(*codes_of((5, [4, 4, 4]), (11, [2])))
    assert codes.ids.tolist() == [3, 5, 9, 11]
    assert codes.offsets.tolist() == [0, 2, 5, 6, 7]
    assert codes.channels.tolist() == [1, 2, 4, 4, 4, 7, 2]
    channels, _, offsets = codes.gather(np.array([5], dtype=np.int64))
    assert channels.tolist() == [4, 4, 4] and offsets.tolist() == [0, 3]


def test_codes_hold_no_stages_until_a_path_has_one() -> None:
    ids, lengths, channels, _ = codes_of((3, [1, 2]), (5, [4]))
    codes = PathCodes.empty().add(ids, lengths, channels, np.zeros(3, dtype=np.int16))
    assert codes.stages is None
    assert codes.gather(np.array([5, 3], dtype=np.int64))[1] is None
    codes = codes.add(*codes_of((4, [6, 7])))  # a late id, with stages 60 and 70
    assert codes.ids.tolist() == [3, 4, 5]
    assert codes.stages is not None and codes.stages.tolist() == [0, 0, 60, 70, 0]
    channels_of, stages_of, _ = codes.gather(np.array([5, 4], dtype=np.int64))
    assert channels_of.tolist() == [4, 6, 7]
    assert stages_of is not None and stages_of.tolist() == [0, 60, 70]


@pytest.fixture
def code_queries(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of the path-code reads made, on a process cache emptied first."""
    interned._cache.clear()
    made: list[str] = []
    real = interned.query

    def spy(name: str) -> str:
        if name == "load_path_codes":
            made.append(name)
        return real(name)

    monkeypatch.setattr(interned, "query", spy)
    yield made
    interned._cache.clear()


def paths_of(arrays: dict[str, Any]) -> dict[tuple[str, ...], tuple[float, float, float]]:
    """A load_paths result as {channel names of the path: totals}."""
    names, tokens, offsets = arrays["channel_names"], arrays["tokens"], arrays["offsets"]
    out = {}
    for k in range(len(offsets) - 1):
        path = tuple(names[t] for t in tokens[offsets[k] : offsets[k + 1]])
        out[path] = (arrays["conversions"][k], arrays["nulls"][k], arrays["value"][k])
    return out


def post(client: FlaskClient, auth: dict[str, str], *records: dict[str, Any]) -> None:
    response = client.post("/v1/journeys", json={"journeys": list(records)}, headers=auth)
    assert response.status_code == 200, response.get_json()


def simple(journey_id: str, *channels: str, converted: bool = True) -> dict[str, Any]:
    touches = [touch(c, f"2024-03-0{k + 1}T10:00:00Z", None) for k, c in enumerate(channels)]
    return journey(
        journey_id, touchpoints=touches, converted=converted, value=10.0 if converted else 0.0,
        converted_at=None,
    )  # fmt: skip


def test_codes_are_read_once_then_only_for_new_paths(
    client: FlaskClient,
    auth: dict[str, str],
    conn: psycopg.Connection,
    workspace: store.Workspace,
    code_queries: list[str],
) -> None:
    ws = workspace.workspace_id
    post(client, auth, simple("a", "search", "email"), simple("b", "email", converted=False))
    first = paths_of(store.load_paths(conn, ws))
    assert first == {("search", "email"): (1.0, 0.0, 10.0), ("email",): (0.0, 1.0, 0.0)}
    assert len(code_queries) == 1
    conn.rollback()
    assert paths_of(store.load_paths(conn, ws)) == first
    assert len(code_queries) == 1  # nothing new: totals only
    conn.rollback()
    post(client, auth, simple("c", "social"), simple("a", "email"))  # a new path, a replace
    assert paths_of(store.load_paths(conn, ws)) == {
        ("email",): (1.0, 1.0, 10.0),
        ("social",): (1.0, 0.0, 10.0),
    }
    assert len(code_queries) == 2


@pytest.fixture
def totals_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """(query name, rows returned) of each all-day totals read, on a process cache
    emptied first."""
    interned._all_day.clear()
    made: list[tuple[str, int]] = []
    real = interned.query

    def spy(name: str) -> str:
        if "totals" in name:
            made.append((name, -1))
        return real(name)

    real_columns = interned._columns

    def columns(found: Any) -> dict[str, Any]:
        out = real_columns(found)
        made[-1] = (made[-1][0], len(out["path_ids"]))
        return out

    monkeypatch.setattr(interned, "query", spy)
    monkeypatch.setattr(interned, "_columns", columns)
    yield made
    interned._all_day.clear()


def test_all_day_totals_read_only_the_paths_changed_since(
    client: FlaskClient,
    auth: dict[str, str],
    conn: psycopg.Connection,
    workspace: store.Workspace,
    totals_reads: list[tuple[str, int]],
) -> None:
    ws = workspace.workspace_id
    post(client, auth, simple("a", "email"), simple("b", "search"), simple("c", "social"))
    assert paths_of(store.load_paths(conn, ws)) == {
        ("email",): (1.0, 0.0, 10.0),
        ("search",): (1.0, 0.0, 10.0),
        ("social",): (1.0, 0.0, 10.0),
    }
    assert totals_reads == [("load_changed_path_totals", 3), ("load_client_totals", 0)]
    (held,) = interned._all_day.items.values()
    assert held.clients is None and held.journeys is not None  # no client paths: no table
    conn.rollback()
    totals_reads.clear()
    store.load_paths(conn, ws)
    assert totals_reads == []  # same data version: nothing read
    conn.rollback()
    post(client, auth, simple("a", "search"))  # email empties, search gains
    assert paths_of(store.load_paths(conn, ws)) == {
        ("search",): (2.0, 0.0, 20.0),
        ("social",): (1.0, 0.0, 10.0),
    }
    assert totals_reads == [("load_changed_path_totals", 2), ("load_changed_client_totals", 0)]
    conn.rollback()
    totals_reads.clear()
    response = client.post(
        "/v1/paths", json={"paths": [{"path": ["social"], "conversions": 2, "nulls": 1}]},
        headers=auth,
    )  # fmt: skip
    assert response.status_code == 200, response.get_json()
    assert paths_of(store.load_paths(conn, ws))[("social",)] == (3.0, 1.0, 10.0)
    assert totals_reads == [("load_changed_path_totals", 0), ("load_changed_client_totals", 1)]
    (held,) = interned._all_day.items.values()
    assert held.clients is not None
    conn.rollback()
    interned._all_day.clear()  # a fresh process reads the same
    assert paths_of(store.load_paths(conn, ws))[("social",)] == (3.0, 1.0, 10.0)


def test_an_id_committed_after_a_later_one_is_read(
    client: FlaskClient,
    auth: dict[str, str],
    database_url: str,
    conn: psycopg.Connection,
    workspace: store.Workspace,
    code_queries: list[str],
) -> None:
    """Ids come from a sequence: a write that took an id may commit after one that
    took a later id, which a process may have read already."""
    ws = workspace.workspace_id
    post(client, auth, simple("a", "email"))
    (email,) = conn.execute(
        "SELECT channel_id FROM channels WHERE workspace_id = %s AND name = 'email'", (ws,)
    ).fetchone()
    conn.rollback()
    with psycopg.connect(database_url) as late:
        (early_id,) = late.execute(
            "INSERT INTO paths (workspace_id, channels, stages) VALUES (%s, %s, '{0,0}')"
            " RETURNING path_id",
            (ws, [email, email]),
        ).fetchone()
        post(client, auth, simple("b", "search"))  # a later id, committed first
        assert set(paths_of(store.load_paths(conn, ws))) == {("email",), ("search",)}
        conn.rollback()
        for table, day in (("path_rollups", "'2024-03-01', "), ("path_totals", "")):
            late.execute(
                f"INSERT INTO {table} (workspace_id, {day and 'day, '}path_id, conversions,"
                f" nulls, value) VALUES (%s, {day}%s, 1, 0, 5.0)",
                (ws, early_id),
            )  # as a journey write would, in the same transaction
        late.commit()
    assert paths_of(store.load_paths(conn, ws))[("email", "email")] == (1.0, 0.0, 5.0)
    assert len(code_queries) == 2


def test_migration_0026_converts_stored_paths(admin_url: str) -> None:
    """Rollups and client paths stored before paths were interned keep every total."""
    name = f"{SESSION}_migration_0026"
    store.ensure_database(admin_url, name)
    url = with_database(admin_url, name)
    files = migration_files()
    before = [m for m in files if m.name < "0026"]
    try:
        with psycopg.connect(url, autocommit=True) as c:
            migrate(c, before)
            ws = store.create_workspace(c, "old").workspace_id
            for code in (1, 2, 3):
                c.execute(
                    "INSERT INTO channels (workspace_id, channel_id, name) VALUES (%s, %s, %s)",
                    (ws, code, f"c{code}"),
                )
            for jid, channels, stages, converted, value, day in [
                ("a", [1, 2], [0, 1], True, 5.0, "2024-03-01"),
                ("b", [1, 2], [0, 1], False, 0.0, "2024-03-01"),
                ("c", [1, 2], [0, 1], True, 2.5, "2024-03-02"),
                ("d", [2], [1], True, 1.0, "2024-03-02"),
            ]:
                c.execute(
                    "INSERT INTO journeys (workspace_id, journey_id, channels, stages,"
                    " touched_at, converted, value, day) VALUES (%s, %s, %s, %s,"
                    " array_fill(now(), array[%s]), %s, %s, %s)",
                    (ws, jid, channels, stages, len(channels), converted, value, day),
                )
            c.execute(
                "INSERT INTO path_rollups (workspace_id, day, channels, stages, conversions,"
                " nulls, value) SELECT workspace_id, day, channels, stages,"
                " count(*) FILTER (WHERE converted), count(*) FILTER (WHERE NOT converted),"
                " sum(value) FROM journeys GROUP BY 1, 2, 3, 4"
            )
            c.execute(
                "INSERT INTO aggregated_paths (workspace_id, day, channels, stages,"
                " conversions, nulls, value) VALUES (%s, NULL, '{3}', '{0}', 2, 1, 7.5),"
                " (%s, '2024-03-01', '{1,2}', '{0,1}', 1, 0, 1.0)",
                (ws, ws),
            )
            assert migrate(c) == [m.name for m in files if m.name >= "0026"]
            stored = c.execute(store_query("stored_rollups"), {"workspace_id": ws}).fetchall()
            fresh = c.execute(store_query("fresh_rollups"), {"workspace_id": ws}).fetchall()
            assert stored == fresh
            totals = c.execute(store_query("stored_path_totals"), {"workspace_id": ws})
            assert [tuple(r) for r in totals] == [
                ([1, 2], [0, 1], 2, 1, 7.5),
                ([2], [1], 1, 0, 1.0),
            ]
            with c.transaction():
                read = paths_of(store.load_paths(c, ws))
            assert read == {
                ("c1", "c2"): (3.0, 1.0, 8.5),
                ("c2",): (1.0, 0.0, 1.0),
                ("c3",): (2.0, 1.0, 7.5),
            }
    finally:
        store.drop_database(admin_url, name)


def store_query(name: str) -> str:
    from api.store.sqlfiles import query

    return query(name)


STAGING = {
    "intern_paths_in": ["create_paths_in"],
    "count_path_changes": ["create_paths_in"],
    "upsert_aggregated_paths": ["create_paths_in"],
    "intern_rollups_in": ["create_rollups_in"],
    "add_rollups_in": ["create_rollups_in"],
    "intern_journeys_in": ["create_journeys_in", "create_journeys_old"],
    "move_rollups": ["create_journeys_in", "create_journeys_old"],
    "drop_empty_rollups": ["create_journeys_in", "create_journeys_old"],
}


@pytest.mark.parametrize("name", sorted(STAGING))
def test_path_lookups_take_the_hash_index_with_no_statistics(
    conn: psycopg.Connection, workspace: store.Workspace, name: str
) -> None:
    """A workspace the planner has no statistics for yet (a new one, between analyses)
    must not be scanned once per path looked up, nor every stored path once per write:
    every lookup of a small write probes the hash index."""
    ws = workspace.workspace_id
    conn.execute(
        "INSERT INTO paths (workspace_id, channels, stages)"
        " SELECT 999, ARRAY[g::smallint], '{0}' FROM generate_series(1, 5000) g"
    )
    conn.execute("ANALYZE paths")
    conn.execute(
        "INSERT INTO paths (workspace_id, channels, stages)"
        " SELECT %s, ARRAY[g::smallint, 1::smallint], '{0,0}' FROM generate_series(1, 3000) g",
        (ws,),
    )
    for staging in STAGING[name]:
        conn.execute(store_query(staging))
    plan = "\n".join(
        line for (line,) in conn.execute(f"EXPLAIN {store_query(name)}", {"workspace_id": ws})
    )
    assert "paths_codes_idx" in plan
    assert "paths_pkey" not in plan
    assert "Seq Scan on paths " not in plan


def test_codes_are_read_in_chunks_of_paths(
    client: FlaskClient,
    auth: dict[str, str],
    conn: psycopg.Connection,
    workspace: store.Workspace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A first read takes the codes a few paths at a time; byte order and lengths hold
    for codes above one byte and paths of any length."""
    ws = workspace.workspace_id
    interned._cache.clear()
    monkeypatch.setattr(interned, "CODES_PER_READ", 2)
    names = [f"c{k}" for k in range(300)]  # codes above 255
    records = [simple(f"j{k}", *names[k * 37 % 300 : k * 37 % 300 + k % 4 + 1]) for k in range(9)]
    post(client, auth, *records)
    expected = {tuple(r["touchpoints"][t]["channel"] for t in range(len(r["touchpoints"])))
                for r in records}  # fmt: skip
    assert set(paths_of(store.load_paths(conn, ws))) == expected
    conn.rollback()
    interned._cache.clear()


def test_array_elements_of_concatenated_blobs(conn: psycopg.Connection) -> None:
    arrays = [[1], [300, 2, 32767], [0, 256]]
    row = conn.execute(
        "SELECT string_agg(array_send(a), ''::bytea ORDER BY n) FROM"
        " unnest(%s::text[]) WITH ORDINALITY AS t(a_text, n), LATERAL"
        " (SELECT a_text::smallint[] AS a) x",
        (["{" + ",".join(map(str, a)) + "}" for a in arrays],),
    ).fetchone()
    assert row is not None
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    got = interned.array_elements(row[0], lengths)
    assert got.tolist() == [1, 300, 2, 32767, 0, 256]


def test_totals_read_out_of_order_are_put_in_path_id_order(conn: psycopg.Connection) -> None:
    """The queries ask for path id order; the reader checks it rather than trust it."""
    found = conn.execute(
        "SELECT array_send(ARRAY[7, 3, 5]::int8[]), array_send(ARRAY[1, 2, 3]::float8[]),"
        " array_send(ARRAY[0, 1, 0]::float8[]), array_send(ARRAY[7.5, 3.5, 5.5]::float8[])"
    ).fetchone()
    columns = interned._columns(found)
    assert columns["path_ids"].tolist() == [3, 5, 7]
    assert columns["conversions"].tolist() == [2.0, 3.0, 1.0]
    assert columns["nulls"].tolist() == [1.0, 0.0, 0.0]
    assert columns["value"].tolist() == [3.5, 5.5, 7.5]
