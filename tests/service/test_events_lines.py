"""The fast reading of NDJSON event lines gives what the general check gives, and
derivation from the events a write holds equals derivation from events read back."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from api import store
from api.service import events
from api.service.event_lines import _agent_device, _url_path, fast_row
from api.service.event_rules import usable, with_defaults
from api.service.event_sources import _page_source
from api.store import events as event_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def row_by_check(line: bytes) -> Any:
    row, errors = events.event_row(json.loads(line))
    return row, errors


def fast(line: bytes) -> Any:
    return fast_row(line, events.MAX_EVENT_BYTES, events.MAX_ID, events.MAX_TEXT)


def same(a: Any, b: Any) -> bool:
    """Equal rows: the stored event as JSON, and the COPY text of the time as a time."""
    stamp = type(a)._fields.index("stamp")

    def instant(r: Any) -> datetime:
        return datetime.fromisoformat(r[stamp])

    return (
        a[:stamp] == b[:stamp]
        and instant(a) == instant(b) == a.occurred_at
        and json.loads(a.body) == json.loads(b.body)
    )


def test_example_lines_read_fast_as_checked() -> None:
    lines = [x for x in (EXAMPLES / "segment-events.ndjson").read_bytes().split(b"\n") if x]
    for line in lines:
        got, (want, errors) = fast(line), row_by_check(line)
        assert not errors
        assert got is not None and same(got, want), line


BASE: dict[str, Any] = {
    "type": "page", "messageId": "m1", "anonymousId": "a1", "timestamp": "2024-03-01T09:00:00Z",
    "context": {"page": {"url": "https://shop.example/p?utm_source=google&utm_medium=cpc"},
                "userAgent": "Mozilla/5.0 (iPhone)"},
}  # fmt: skip
VARIANTS: list[dict[str, Any]] = [
    {},
    {"type": "track", "event": "Order Completed", "properties": {"revenue": 3, "url": 5}},
    {"type": "page", "properties": {"url": "https://x.example/a", "path": "/b"}, "context": {}},
    {"type": "alias", "previousId": "a0", "userId": "u1"},
    {"userId": "u1", "anonymousId": None},
    {"timestamp": "2024-03-01T10:00:00+02:00", "sentAt": "2024-03-01T10:00:05Z"},
    {"context": {"campaign": {"name": "c", "source": "news", "medium": "email"}}},
    {"context": {"device": {"type": "iOS"}, "page": {"referrer": "https://www.bing.com/"}}},
    {"extra": {"nested": [1, 2, {"k": "\t"}]}, "name": "Home"},
]
UNUSUAL: list[dict[str, Any]] = [
    {"userId": 7},  # an int id: the general check makes it text
    {"timestamp": "2024-03-01T09:00:00"},  # no zone: an error
    {"timestamp": None, "originalTimestamp": "2024-03-01T09:00:00Z"},
    {"sentAt": "2024-03-01T09:00:05Z", "receivedAt": "2024-03-01T09:00:09Z"},
    {"context": "web"},
    {"properties": []},
    {"type": "purchase"},
    {"messageId": "m\u00011"},
    {"anonymousId": None},
    {"type": "track"},
]


@pytest.mark.parametrize("change", VARIANTS)
def test_usual_lines_read_fast_as_checked(change: dict[str, Any]) -> None:
    line = json.dumps({**BASE, **change}).encode()
    got, (want, errors) = fast(line), row_by_check(line)
    assert not errors and got is not None and same(got, want)


@pytest.mark.parametrize("change", UNUSUAL)
def test_unusual_lines_go_to_the_general_check(change: dict[str, Any]) -> None:
    assert fast(json.dumps({**BASE, **change}).encode()) is None


# Page URLs from pieces that urlsplit reads in different ways: ports with and without
# digits, paths with spaces, tabs and semicolons, queries with UTM parameters and click
# ids, fragments, upper-case schemes, user names and bracketed hosts.
URL_PIECES = st.lists(
    st.sampled_from([
        "https://", "http://", "HTTPS://", "//", "shop.example", "www.bing.com", "[::1]",
        "u@", ":", ":8080", "/", "/p", "/a b", "/a\tb", ";x", "?", "#", "&", "=",
        "utm_source=news", "utm_medium=email", "utm_campaign=w", "gclid=1", "fbclid=2",
        " ", "\n", "%20", "é",
    ]),
    max_size=8,
).map("".join)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    url=URL_PIECES,
    referrer=st.sampled_from([None, "https://www.google.com/", "https://shop.example/x"]),
)
@example(url="https://shop.example:/p?gclid=1", referrer=None)
@example(url="https://shop.example/a b?utm_source=news", referrer=None)
@example(url="https://shop.example/a\tb", referrer=None)
def test_page_urls_read_fast_as_checked(url: str, referrer: str | None) -> None:
    """The fast reading looks a URL's source up without its path; the path and the
    source it finds are the general check's, whatever the URL."""
    page = {"url": url} | ({"referrer": referrer} if referrer else {})
    line = json.dumps({**BASE, "context": {"page": page}}).encode()
    got, (want, errors) = fast(line), row_by_check(line)
    assert not errors
    assert got is not None and same(got, want)


# Mostly valid values, so that many events are read fast, and every odd kind of value.
VALID = st.sampled_from(["a1", "u\\1", "é", "m 1", "Order Completed"])
ODD = st.one_of(
    st.sampled_from(["", "t\tab", "\x7f", 7, 1.5, True, [], {}]),
    st.text(max_size=5),
)
LENGTHS = st.sampled_from(["x" * 150, "x" * 151, "x" * 200, "x" * 201])  # at the limits
TEXTS = st.one_of(VALID, VALID, VALID, st.none(), LENGTHS, ODD)
IDS = st.one_of(VALID, VALID, VALID, VALID, LENGTHS, ODD)
VALID_STAMPS = st.sampled_from([
    "2024-03-01T09:00:00Z", "2024-03-01T09:00:00.123456Z", "2024-03-01 09:00Z",
    "2024-03-01T09:00:00+02:00", "2024-03-01T09:00:00-0530",
])  # fmt: skip
ODD_STAMPS = st.sampled_from([
    "2024-03-01T09:00:00", "2024-02-30T09:00:00Z", "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00", "soon", "", 1709287200, None,
])  # fmt: skip
STAMPS = st.one_of(VALID_STAMPS, VALID_STAMPS, VALID_STAMPS, ODD_STAMPS)
EVENTS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["page", "page", "track", "track", "screen", "identify", "alias", "group", "x"]
        ),
        "messageId": IDS,
        "anonymousId": st.one_of(IDS, st.none()),
        "timestamp": STAMPS,
    },
    optional={
        "userId": TEXTS, "previousId": TEXTS, "event": TEXTS,
        "name": TEXTS, "sentAt": STAMPS, "receivedAt": STAMPS,
        "properties": st.one_of(
            st.none(), st.just([]),
            st.fixed_dictionaries({}, optional={"url": URL_PIECES, "path": TEXTS,
                                                "referrer": TEXTS, "revenue": TEXTS}),
        ),
        "context": st.one_of(
            st.none(), st.just("web"),
            st.fixed_dictionaries({}, optional={
                "page": st.one_of(st.none(), st.fixed_dictionaries(
                    {}, optional={"url": URL_PIECES, "path": TEXTS, "referrer": TEXTS})),
                "campaign": st.one_of(st.none(), st.fixed_dictionaries(
                    {}, optional={"source": TEXTS, "medium": TEXTS, "name": TEXTS})),
                "userAgent": st.one_of(TEXTS, st.sampled_from(["Mozilla/5.0 (iPhone)",
                                                               "Mozilla (iPad)"])),
                "device": st.one_of(TEXTS, st.fixed_dictionaries({"type": TEXTS})),
            }),
        ),
    },
)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(event=EVENTS)
@example(event={**BASE, "messageId": "x" * 201})
@example(event={**BASE, "anonymousId": "x" * 151})
@example(event={**BASE, "type": "track", "event": "x" * 201})
@example(event={**BASE, "name": "x" * 201})
@example(event={**BASE, "type": "alias", "userId": "u1", "previousId": "x" * 151})
def test_any_event_reads_fast_as_checked_or_goes_to_the_check(event: dict[str, Any]) -> None:
    """Whatever the event, the fast reading gives the general check's row, or none and
    leaves the line to the general check; it never accepts what the check refuses."""
    line = json.dumps(event).encode()
    got, (want, errors) = fast(line), row_by_check(line)
    if got is not None:
        assert not errors, errors
        assert same(got, want)


def test_long_values_are_worked_out_each_time_not_kept() -> None:
    """Answers are cached per URL, referrer, user agent and page path, but an event may
    be 32 KiB: values over 512 characters are worked out and not kept."""
    url = "https://shop.example/" + "p" * 3000 + "?utm_source=news&utm_medium=email"
    page = {"url": url, "referrer": "https://www.bing.com/" + "q" * 3000}
    agent = "Mozilla/5.0 (iPhone) " + "x" * 3000
    caches = (_url_path, _agent_device, _page_source)
    before = [c.cache_info().currsize for c in caches]
    # an http(s) URL (its source looked up without its path) and any other URL
    other = {"url": "ftp" + url[5:]}
    for context in ({"page": page, "userAgent": agent}, {"page": other, "userAgent": agent}):
        line = json.dumps({**BASE, "context": context}).encode()
        got, (want, errors) = fast(line), row_by_check(line)
        assert not errors and got is not None and same(got, want)
        assert (got.page_path, got.source, got.medium) == ("/" + "p" * 1999, "news", "email")
        assert got.device == "mobile"
        event_store.copy_lines(1, [got])
        assert all(got.page_path not in key for key in event_store._tails)
    assert [c.cache_info().currsize for c in caches] == before
    rules = usable(with_defaults({}), ["awareness", "consideration"])
    assert rules.stage("Order Completed", got.page_path) == rules.stage("Order Completed", "/")
    assert not rules._stages.keys() - {("Order Completed", "/")}


def derived(conn: psycopg.Connection, ws: int) -> list[tuple[Any, ...]]:
    sql = """SELECT journey_id, customer_id, channels, stages, touched_at, converted, value
             FROM journeys WHERE workspace_id = %s ORDER BY journey_id"""
    names = {c.code: c.name for c in store.list_channels(conn, ws)}
    return [(j, c, [names[k] for k in ch], *rest) for j, c, ch, *rest in conn.execute(sql, (ws,))]


def test_held_and_read_back_events_derive_alike(
    conn: psycopg.Connection, database_url: str
) -> None:
    """One import of a file, against the same file in two halves (the second half's
    people have events stored before, so theirs are read back)."""
    lines = [x for x in (EXAMPLES / "segment-events.ndjson").read_bytes().split(b"\n") if x]
    whole = store.create_workspace(conn, "whole").workspace_id
    halves = store.create_workspace(conn, "halves").workspace_id
    conn.commit()
    db = store.Database(database_url)
    try:
        events.import_stream(db, whole, iter([b"\n".join(lines)]), "segment", 10)
        for part in (lines[1::2], lines[::2]):
            events.import_stream(db, halves, iter([b"\n".join(part)]), "segment", 10)
    finally:
        db.close()
    assert derived(conn, whole)
    assert derived(conn, whole) == derived(conn, halves)


@pytest.mark.parametrize("held", [0, 1, 5, 9])
def test_events_past_the_held_ones_are_read_back(
    conn: psycopg.Connection, database_url: str, held: int
) -> None:
    """A first load holding only its first ``held`` events derives what one holding all
    of them derives: a person with an event past those has all theirs read back."""
    data = (EXAMPLES / "segment-events.ndjson").read_bytes()
    whole = store.create_workspace(conn, "whole").workspace_id
    part = store.create_workspace(conn, "part").workspace_id
    conn.commit()
    db = store.Database(database_url)
    try:
        events.import_stream(db, whole, iter([data]), "segment", 10)
        events.import_stream(db, part, iter([data]), "segment", 10, held)
    finally:
        db.close()
    assert derived(conn, whole)
    assert derived(conn, part) == derived(conn, whole)


def test_deleted_workspace_takes_its_events(conn: psycopg.Connection, database_url: str) -> None:
    ws = store.create_workspace(conn, "gone").workspace_id
    conn.commit()
    db = store.Database(database_url)
    try:
        data = (EXAMPLES / "segment-events.ndjson").read_bytes()
        events.import_stream(db, ws, iter([data]), "segment", 10)
    finally:
        db.close()
    conn.execute("DELETE FROM workspaces WHERE workspace_id = %s", (ws,))
    for table in ("events", "identity_links"):
        count = conn.execute(f"SELECT count(*) FROM {table} WHERE workspace_id = %s", (ws,))
        assert count.fetchone() == (0,)


@pytest.mark.parametrize(
    "change",
    [
        {"sentAt": "soon"},
        {"receivedAt": 5},
        {"event": "e\u0001"},
        {"type": "track", "event": "Order Completed", "name": "n\u0001"},
        {"messageId": "m\n"},
    ],
    ids=[
        "sent-at-not-a-time",
        "received-at-a-number",
        "control-in-unread-event",
        "control-in-unread-name",
        "newline-id",
    ],
)
def test_lines_the_general_check_refuses_are_refused_fast_too(change: dict[str, Any]) -> None:
    line = json.dumps({**BASE, **change}).encode()
    assert row_by_check(line)[1], "the general check must refuse this line"
    assert fast(line) is None


def test_batches_meeting_stored_events_store_only_the_new_ones(
    conn: psycopg.Connection, database_url: str
) -> None:
    """Batches go in without asking which messageIds are stored until one meets a stored
    event: that batch's COPY fails on the primary key, is rolled back to its savepoint
    and probed, and the rest of the write probes. Every event is stored once, the
    counts say which were new, and the journeys equal those of the events sent once."""
    lines = [x for x in (EXAMPLES / "segment-events.ndjson").read_bytes().split(b"\n") if x]
    rows = [fast(x) for x in lines]
    assert all(r is not None for r in rows) and len(rows) >= 6
    once = store.create_workspace(conn, "once").workspace_id
    again = store.create_workspace(conn, "again").workspace_id
    conn.commit()
    db = store.Database(database_url)
    try:
        with db.transaction() as c:
            events.write_events(c, once, [rows])
        with db.transaction() as c:
            events.write_events(c, again, [rows[:2]])
        # The first batch is new; the second meets rows[1], stored by the first write
        # (optimistic COPY fails, then probed); the third repeats the second batch of
        # this write, and the fourth is new again.
        batches = [rows[2:4], rows[1:5], rows[3:5], rows[5:]]
        with db.transaction() as c:
            counts = events.write_events(c, again, batches)
    finally:
        db.close()
    assert counts.received == sum(len(b) for b in batches)
    ids = {r.message_id for r in rows}  # the file repeats an event (a re-delivery)
    assert counts.stored == len(ids - {r.message_id for r in rows[:2]})
    stored = conn.execute(
        "SELECT message_id, count(*) FROM events WHERE workspace_id = %s GROUP BY 1", (again,)
    ).fetchall()
    assert sorted(m for m, _ in stored) == sorted(ids)
    assert {n for _, n in stored} == {1}
    assert derived(conn, again) == derived(conn, once)


def test_a_large_write_sets_python_and_the_last_one_restores_it() -> None:
    import gc
    import sys
    import threading

    from api.service.ingest import SWITCH_INTERVAL, large_write

    before = (gc.isenabled(), sys.getswitchinterval())
    assert before[0], "the collector runs outside writes"
    inside = threading.Event()
    done = threading.Event()

    def other_write() -> None:
        with large_write():
            inside.set()
            done.wait(10)

    thread = threading.Thread(target=other_write)
    with large_write():
        assert not gc.isenabled() and sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
        thread.start()
        assert inside.wait(10)
    # this thread's write ended, the other's goes on: still set for it
    assert not gc.isenabled() and sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    done.set()
    thread.join()
    assert (gc.isenabled(), sys.getswitchinterval()) == before
