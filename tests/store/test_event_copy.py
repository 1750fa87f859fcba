"""Events go into the table as COPY text: every value comes back as it was, backslashes,
tabs, newlines and carriage returns included."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from api import store
from api.store import events as event_store
from api.store.events import EventRow

AT = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def row(message_id: str, **values: str | None) -> EventRow:
    base: dict[str, str | None] = {
        "anonymous_id": "a\\1", "user_id": None, "event": "Order \\ Completed",
        "page_path": "/p\\q", "source": "news", "medium": None, "campaign": "c",
        "referrer_host": None, "click_id": None, "device": "mobile", "previous_id": None,
        "body": '{"k": "\\\\t\\"", "n": null}',
    }  # fmt: skip
    base.update(values)
    return EventRow(
        "track", base["anonymous_id"], base["user_id"], base["event"], AT, message_id,
        base["page_path"], base["source"], base["medium"], base["campaign"],
        base["referrer_host"], base["click_id"], base["device"], base["previous_id"],
        "2024-03-01T09:00:00Z", str(base["body"]),
    )  # fmt: skip


COLUMNS = (
    "type, anonymous_id, user_id, event, occurred_at, message_id, page_path, source, medium,"
    " campaign, referrer_host, click_id, device, previous_id"
)
PLAIN = [row("m\\1"), row("m2", user_id="u\\\\2", medium="cpc"), row("m3", body='{"t":\t1}')]
AWKWARD = [*PLAIN, row("m4", page_path="/a\tb", campaign="x\ny", device="d\rz")]


@pytest.mark.parametrize("rows", [PLAIN, AWKWARD], ids=["plain", "awkward"])
def test_event_values_come_back_as_sent(conn: psycopg.Connection, rows: list[EventRow]) -> None:
    ws = store.create_workspace(conn, "copy").workspace_id
    text = event_store.copy_lines(ws, rows)
    stored = event_store.store_new(conn, ws, rows, text, probe=False)
    assert stored == rows
    got = conn.execute(
        f"SELECT {COLUMNS}, body::text FROM events WHERE workspace_id = %s ORDER BY message_id",
        (ws,),
    ).fetchall()
    want = sorted(rows, key=lambda r: r.message_id)
    assert [g[:14] for g in got] == [r[:14] for r in want]
    assert [g[14] for g in got] == [r.body for r in want]  # json: the text as sent
