"""Raw events in, journeys out: validation, storage and the incremental rebuild.

Shared by ``POST /v1/events`` (a JSON batch or NDJSON) and ``pathcredit import
--format segment|ga4``. Every event is checked before anything is written; one bad
event rejects the whole request with a pointer at it. The events whose messageId is
new are stored, the ids they link are joined in the identity graph, and the journeys
of every person they touch (all ids linked to theirs) are derived again from all of
that person's events and written through the journey write path, so rollups move as
for a replace. Nothing here knows HTTP or SQL.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from .. import store
from ..store import events as event_store
from ..store.dictionaries import lock_workspace
from ..store.journeys import delete_journeys
from . import event_journeys, events_ga4
from .errors import FieldError, InvalidInput, counted
from .event_lines import device_of, fast_row, url_path
from .event_rules import Rules, usable, with_defaults
from .event_sources import event_source
from .ingest import (
    NOT_A_TIME,
    OUT_OF_RANGE,
    PLAIN_END,
    TOO_DEEP,
    block_lines,
    in_utc_range,
    large_write,
    ndjson_blocks,
    too_deep,
)

TYPES = ("track", "page", "screen", "identify", "alias", "group")
MAX_ID = 150  # journey ids ("ev:u:<id>:<n>") stay within the 200 characters of an id
MAX_TEXT = 200
MAX_EVENT_BYTES = 32 * 1024
MAX_PATH = 2000
STAGE_ROWS = 10_000  # events checked and stored together
PEOPLE_NODES = 20_000  # ids whose events are read and rebuilt together
HELD_EVENTS = 2_000_000  # stored events a write holds for derivation (PATHCREDIT_HELD_EVENTS)
ATTRIBUTES = '{"origin": "events"}'
FORMATS = ("segment", "ga4")
# A batch's own fields besides the events, as Segment's and RudderStack's libraries send
# them: `context` is shared by its events, the rest is accepted and not kept.
BATCH_FIELDS = frozenset(("batch", "context", "integrations", "sentAt", "writeKey"))

_encode = msgspec.json.encode
_decode = msgspec.json.decode
_plain = re.compile(PLAIN_END)


@dataclass(frozen=True)
class EventCounts:
    received: int
    stored: int
    people: int
    journeys: store.WriteCounts
    deleted: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.received - self.stored,
            "people": self.people,
            "journeys": {
                "created": self.journeys.created,
                "replaced": self.journeys.replaced,
                "unchanged": self.journeys.unchanged,
                "deleted": self.deleted,
            },
        }


# ------------------------------------------------------------------ one event


def _text(
    obj: dict[str, Any], name: str, errors: list[FieldError], limit: int = MAX_TEXT
) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not 1 <= len(value) <= limit or not _plain.match(value):
        detail = f"Must be a string of 1 to {limit} characters, no control characters."
        errors.append(FieldError(f"/{name}", detail))
        return None
    return value


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def _object(
    obj: dict[str, Any], name: str, errors: list[FieldError], pointer: str
) -> dict[str, Any]:
    value = obj.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(FieldError(pointer, "Must be a JSON object."))
        return {}
    return value


def _occurred_at(obj: dict[str, Any], errors: list[FieldError]) -> datetime | None:
    """``timestamp`` (else ``originalTimestamp``, else ``receivedAt``), corrected for
    clock skew by receivedAt - (sentAt - timestamp) when the event carries both."""
    for name in ("timestamp", "originalTimestamp", "receivedAt"):
        if obj.get(name) is not None:
            at = _time(obj[name])
            if at is None:
                errors.append(FieldError(f"/{name}", NOT_A_TIME))
                return None
            break
    else:
        errors.append(FieldError("/timestamp", "Missing data for required field."))
        return None
    sent, received = _time(obj.get("sentAt")), _time(obj.get("receivedAt"))
    for other, value in (("sentAt", sent), ("receivedAt", received)):
        if value is None and obj.get(other) is not None:
            errors.append(FieldError(f"/{other}", NOT_A_TIME))
            return None
    if sent is not None and received is not None and name != "receivedAt":
        with contextlib.suppress(OverflowError):
            at = received - (sent - at)
    if not in_utc_range(at):
        errors.append(FieldError(f"/{name}", OUT_OF_RANGE))
        return None
    return at.astimezone(UTC)


def _device(context: dict[str, Any]) -> str | None:
    return device_of(context.get("device"), context.get("userAgent"))


def event_row(obj: Any) -> tuple[event_store.EventRow | None, list[FieldError]]:
    """Check one event and extract what derivation reads; errors point into the event."""
    if not isinstance(obj, dict):
        return None, [FieldError("", "Must be a JSON object (an event).")]
    errors: list[FieldError] = []
    kind = obj.get("type")
    if kind not in TYPES:
        errors.append(FieldError("/type", f"Must be one of: {', '.join(TYPES)}."))
    message_id = _text(obj, "messageId", errors)
    if message_id is None and obj.get("messageId") is None:
        errors.append(FieldError("/messageId", "Missing data for required field."))
    anonymous_id = _text(obj, "anonymousId", errors, MAX_ID)
    user_id = _text(obj, "userId", errors, MAX_ID)
    if obj.get("anonymousId") is None and obj.get("userId") is None:
        errors.append(FieldError("/userId", "Send anonymousId or userId (or both)."))
    # every declared text field is checked, whichever the event's type reads
    previous_id = _text(obj, "previousId", errors, MAX_ID)
    previous_id = previous_id if kind == "alias" else None
    if kind == "alias" and (obj.get("previousId") is None or obj.get("userId") is None):
        errors.append(FieldError("/previousId", "An alias needs previousId and userId."))
    event_name, page_name = _text(obj, "event", errors), _text(obj, "name", errors)
    name = event_name if kind == "track" else page_name
    if kind == "track" and obj.get("event") is None:
        errors.append(FieldError("/event", "Missing data for required field."))
    at = _occurred_at(obj, errors)
    properties = _object(obj, "properties", errors, "/properties")
    context = _object(obj, "context", errors, "/context")
    campaign = _object(context, "campaign", errors, "/context/campaign")
    page = _object(context, "page", errors, "/context/page")
    body = _encode(obj)
    if len(body) > MAX_EVENT_BYTES:
        errors.append(FieldError("", f"An event is at most {MAX_EVENT_BYTES} bytes of JSON."))
    elif b"\\u0000" in body:
        errors.append(FieldError("", "Must not contain NUL characters (\\u0000)."))
    elif too_deep(body):
        errors.append(FieldError("", TOO_DEEP))
    if errors or at is None or message_id is None or not isinstance(kind, str):
        return None, errors
    from_props = kind == "page"
    url = page.get("url") or (properties.get("url") if from_props else None)
    referrer = page.get("referrer") or (properties.get("referrer") if from_props else None)
    url = url if isinstance(url, str) else None
    path = page.get("path") or (properties.get("path") if from_props else None)
    if not isinstance(path, str) or not path:
        path = url_path(url)
    src = event_source(campaign, url, referrer if isinstance(referrer, str) else None)
    row = event_store.EventRow(
        kind, anonymous_id, user_id, name, at, message_id, path[:MAX_PATH] if path else None,
        src.source, src.medium, src.campaign, src.referrer_host, src.click_id, _device(context),
        previous_id, at.isoformat(), body.decode("utf-8"),
    )  # fmt: skip
    return row, []


# ------------------------------------------------------------------ requests


def _mistyped_batch_fields(body: dict[str, Any]) -> list[FieldError]:
    """The batch's own fields, read or not, must still be what the spec says they are."""
    errors = [
        FieldError(f"/{k}", "Must be a JSON object.")
        for k in ("context", "integrations")
        if k in body and not isinstance(body[k], dict)
    ]
    if "writeKey" in body and not isinstance(body["writeKey"], str):
        errors.append(FieldError("/writeKey", "Must be a string."))
    if "sentAt" in body and _time(body["sentAt"]) is None:
        errors.append(FieldError("/sentAt", NOT_A_TIME))
    return errors


def write_batch(db: store.Database, workspace_id: int, body: Any, limit: int) -> dict[str, Any]:
    """A JSON batch ``{"batch": [event, ...]}``: all valid, or InvalidInput and nothing
    written."""
    if not isinstance(body, dict):
        detail = "Send a JSON object with the events in `batch`."
        raise InvalidInput(detail, [FieldError("/", detail)])
    unknown = sorted(set(body) - BATCH_FIELDS)
    mistyped = _mistyped_batch_fields(body)
    if unknown or mistyped or not isinstance(body.get("batch"), list):
        errors = [FieldError(f"/{k}", "Unknown field.") for k in unknown] + mistyped
        if not isinstance(body.get("batch"), list):
            errors.append(FieldError("/batch", "Missing data for required field (a list)."))
        raise InvalidInput("Send a JSON object with the events in `batch`.", errors)
    events = body["batch"]
    if not 1 <= len(events) <= limit:
        raise InvalidInput(
            f"A batch holds 1 to {limit} events; send NDJSON for more.",
            [FieldError("/batch", f"Length must be between 1 and {limit}.")],
        )
    shared = body.get("context")
    rows, errors = [], []
    for i, obj in enumerate(events):
        if isinstance(shared, dict) and isinstance(obj, dict):
            own = obj.get("context")
            if own is None or isinstance(own, dict):
                obj = {**obj, "context": {**shared, **(own or {})}}
        row, errs = event_row(obj)
        errors += [FieldError(f"/batch/{i}{e.pointer}", e.detail) for e in errs]
        if row is not None:
            rows.append(row)
    if errors:
        bad = len({e.pointer.split("/")[2] for e in errors})
        detail = f"{bad} of {len(events)} events are invalid; nothing was written."
        raise InvalidInput(detail, errors)
    with db.transaction() as conn:
        return write_events(conn, workspace_id, [rows]).as_dict()


def import_stream(
    db: store.Database,
    workspace_id: int,
    chunks: Iterable[bytes],
    fmt: str,
    max_errors: int,
    held: int = HELD_EVENTS,
) -> dict[str, Any]:
    """NDJSON events (``segment``: Segment-shaped; ``ga4``: GA4 BigQuery export rows),
    one transaction; errors point at 0-based line numbers. ``held``: see write_events."""
    errors: list[FieldError] = []

    def rows() -> Iterator[list[event_store.EventRow]]:
        index, batch = 0, []
        fast = fmt == "segment"
        for block in ndjson_blocks(chunks):
            for line in block_lines(block):
                i, index = index, index + 1
                # The usual line takes the fast path alone; the rest are checked in full.
                row = fast_row(line, MAX_EVENT_BYTES, MAX_ID, MAX_TEXT) if fast else None
                if row is None:
                    if not line.strip():
                        continue
                    row, errs = _line_row(line, fmt)
                    if row is None:
                        errors.extend(FieldError(f"/{i}{e.pointer}", e.detail) for e in errs)
                        if len(errors) >= max_errors:
                            return
                        continue
                if not errors:
                    batch.append(row)
                    if len(batch) >= STAGE_ROWS:
                        yield batch
                        batch = []
        if batch and not errors:
            yield batch

    with db.transaction() as conn:
        counts = write_events(conn, workspace_id, rows(), lambda: bool(errors), held)
        if errors:
            lines = len({e.pointer.split("/")[1] for e in errors})
            more = " (the first ones)" if len(errors) >= max_errors else ""
            raise InvalidInput(
                f"{counted(lines, 'event')} invalid{more}; nothing was written.",
                errors[:max_errors],
            )
        if counts.received == 0:
            raise InvalidInput("The file holds no events.", [FieldError("/0", "No event.")])
        return counts.as_dict()


def _line_row(line: bytes, fmt: str) -> tuple[event_store.EventRow | None, list[FieldError]]:
    """A line checked in full: its row, or the errors pointing into it."""
    try:
        obj = _decode(line)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
        return None, [FieldError("", "Not a valid JSON object (one event per line).")]
    if fmt == "ga4":
        obj, errs = events_ga4.to_event(obj)
        if errs:
            return None, errs
    return event_row(obj)


def write_events(
    conn: Any,
    workspace_id: int,
    batches: Iterable[Sequence[event_store.EventRow]],
    failed: Any = lambda: False,
    held: int = HELD_EVENTS,
) -> EventCounts:
    """Store batches of checked events and rebuild the people they touch, in the
    caller's transaction. Stops storing once ``failed()`` (the caller then raises).

    The first ``held`` stored events are held in memory, as derivation reads them; the
    people with an event past those have all their events read back.

    A thread stores each batch (PostgreSQL's work: the messageId probe and the COPY)
    while this one checks the next and formats its COPY text (Python's work), so on
    two cores the server inserts while Python decodes; the connection is the thread's
    meanwhile. Python runs with the settings of a large write (see ``large_write``).
    """
    with large_write():
        return _write_events(conn, workspace_id, batches, failed, held)


def _write_events(
    conn: Any,
    workspace_id: int,
    batches: Iterable[Sequence[event_store.EventRow]],
    failed: Any,
    held: int,
) -> EventCounts:
    lock_workspace(conn, workspace_id)
    rules = load_rules(conn, workspace_id)
    # A first load: every person's events and links are this write's, none to count or
    # read back.
    first = not event_store.any_events(conn, workspace_id)
    received = stored = 0
    seeds: set[str] = set()
    edges: set[tuple[str, str]] = set()
    # The stored events as derivation reads them, by owning id, the first ``held`` of
    # them: a person whose events are all here is derived without reading them back.
    # The owning ids of the events past those are ``spilled``.
    fresh: dict[str, list[event_store.StoredEvent]] = defaultdict(list)
    spilled: set[str] = set()
    room = held

    # Batches are stored without probing their messageIds first until one of them
    # turns out to hold a stored one (a re-delivery); the rest of the write probes.
    optimistic = True

    def take(done: Future[list[event_store.EventRow]], sent: int) -> int:
        nonlocal room, optimistic
        new = done.result()
        if len(new) < sent:
            optimistic = False
        for r in new:  # one pass an event: its ids, its links, and held by its owning id
            anonymous, user = r.anonymous_id, r.user_id
            if user is None:  # the usual event: only an anonymousId, nothing to link
                node = f"a:{anonymous}"
                seeds.add(node)
            else:
                node = f"u:{user}"
                _link(seeds, edges, anonymous, user, r.previous_id)
            if room > 0:
                fresh[node].append(_stored(r, rules))
                room -= 1
            else:
                spilled.add(node)
        return len(new)

    with ThreadPoolExecutor(1, thread_name_prefix="events") as writer:
        pending: Future[list[event_store.EventRow]] | None = None
        sent = 0
        for batch in batches:
            if failed():
                continue
            received += len(batch)
            distinct = len({r.message_id for r in batch})
            text = event_store.copy_lines(workspace_id, batch) if distinct == len(batch) else None
            if pending is not None:
                stored += take(pending, sent)
            pending = writer.submit(
                event_store.store_new, conn, workspace_id, batch, text, not optimistic
            )
            sent = distinct  # a messageId repeated within a batch is no re-delivery
        if pending is not None:
            stored += take(pending, sent)
    if failed():
        return EventCounts(received, stored, 0, store.WriteCounts(0, 0, 0), 0)
    event_store.add_links(conn, workspace_id, edges)
    people, counts, deleted = rebuild(
        conn, workspace_id, seeds, fresh=fresh, rules=rules, complete=first, edges=edges,
        spilled=spilled,
    )  # fmt: skip
    return EventCounts(received, stored, people, counts, deleted)


_STORED = len(event_store.StoredEvent._fields) - 1  # an EventRow's fields it starts with
_new = tuple.__new__  # a tuple subclass made without NamedTuple's checks (one an event)


def _stored(r: event_store.EventRow, rules: Rules) -> event_store.StoredEvent:
    properties = _decode(r.body).get("properties") if r.event in rules.conversions else None
    return _new(event_store.StoredEvent, (*r[:_STORED], properties))


def _link(
    seeds: set[str],
    edges: set[tuple[str, str]],
    anonymous: str | None,
    user: str | None,
    previous: str | None,
) -> None:
    a = f"a:{anonymous}" if anonymous is not None else None
    u = f"u:{user}" if user is not None else None
    for node in (a, u):
        if node is not None:
            seeds.add(node)
    if a is not None and u is not None:
        edges.add((a, u))
    if previous is not None and u is not None:
        # An alias's previousId may have been either kind of id.
        for old in (f"a:{previous}", f"u:{previous}"):
            if old != u:
                seeds.add(old)
                edges.add((old, u))


# ------------------------------------------------------------------ rebuilding


def load_rules(conn: Any, workspace_id: int) -> Rules:
    stages = [s.name for s in store.list_stages(conn, workspace_id)]
    return usable(with_defaults(event_store.get_rules(conn, workspace_id)), stages)


def components(conn: Any, workspace_id: int, seeds: Iterable[str]) -> list[list[str]]:
    """The people (sets of linked typed ids) that hold any of these ids."""
    adjacent: dict[str, set[str]] = defaultdict(set)
    seen = set(seeds)
    frontier = sorted(seen)
    while frontier:
        found: set[str] = set()
        for k in range(0, len(frontier), PEOPLE_NODES):
            part = frontier[k : k + PEOPLE_NODES]
            for node, other in event_store.neighbours(conn, workspace_id, part):
                adjacent[node].add(other)
                found.add(other)
        frontier = sorted(found - seen)
        seen |= found
    return _split(seen, adjacent)


def _split(nodes: set[str], adjacent: dict[str, set[str]]) -> list[list[str]]:
    out, done = [], set()
    for start in sorted(nodes):
        if start in done:
            continue
        part, stack = [], [start]
        done.add(start)
        while stack:
            n = stack.pop()
            part.append(n)
            for m in adjacent.get(n, ()):
                if m not in done:
                    done.add(m)
                    stack.append(m)
        out.append(sorted(part))
    return out


def rebuild(
    conn: Any,
    workspace_id: int,
    seeds: Iterable[str],
    everyone: bool = False,
    fresh: dict[str, list[event_store.StoredEvent]] | None = None,
    rules: Rules | None = None,
    complete: bool = False,
    edges: set[tuple[str, str]] | None = None,
    spilled: set[str] | None = None,
) -> tuple[int, store.WriteCounts, int]:
    """Derive again the journeys of every person holding one of ``seeds`` (of the whole
    workspace with ``everyone``); returns (people, journey write counts, deleted).
    ``fresh``: events just stored, by owning id; a person whose stored events are all
    among them is derived from them instead of reading them back. With ``complete``
    (the workspace held no events or links before them), that is every person none of
    whose ids is in ``spilled`` (the owning ids of events just stored but not held),
    and ``edges``, the links just stored, are all there are."""
    rules = rules or load_rules(conn, workspace_id)
    if everyone:
        seeds = workspace_ids(conn, workspace_id)
    if complete and edges is not None and not everyone:
        adjacent: dict[str, set[str]] = defaultdict(set)
        for node, other in edges:
            adjacent[node].add(other)
            adjacent[other].add(node)
        people = _split(set(seeds), adjacent)
    else:
        people = components(conn, workspace_id, seeds)
    if not people:
        return 0, store.WriteCounts(0, 0, 0), 0
    # A first load derives from the events in memory and reads nothing on the
    # connection while journeys are written, so its chunks may go straight into the
    # table; any other rebuild reads between chunks, and merges every one (JourneyWrite).
    first_load = complete and fresh is not None and not spilled and not everyone
    write = store.JourneyWrite(conn, workspace_id, direct=first_load)
    produced: set[str] = set()
    existing: set[str] = set()
    whole = everyone or complete  # every person of the workspace is rebuilt
    if complete and not everyone:
        # The workspace held no events: every derived journey it holds (none, unless
        # one outlived its events) is stale unless rebuilt. One range of the key,
        # not a probe per person.
        existing = event_store.derived_journey_ids(conn, workspace_id, None)
    conversions = sorted(rules.conversions)
    for group in _groups(people):
        nodes = [n for person in group for n in person]
        if not whole:
            plain = sorted({n[2:] for n in nodes})
            existing |= event_store.derived_journey_ids(conn, workspace_id, plain)
        by_person = _group_events(
            conn, workspace_id, group, conversions, fresh, complete, spilled or set()
        )
        rows = []
        for person_events in by_person.values():
            for j in event_journeys.journeys(person_events, rules):
                produced.add(j.journey_id)
                rows.append(_journey_row(write.coder, j))
        if rows:
            write.copy(rows)
    if everyone:
        existing = event_store.derived_journey_ids(conn, workspace_id, None)
    counts = write.finish() if write.staged else store.WriteCounts(0, 0, 0)
    stale = sorted(existing - produced)
    deleted = delete_journeys(conn, workspace_id, stale) if stale else 0
    return len(people), counts, deleted


def _group_events(
    conn: Any,
    workspace_id: int,
    group: list[list[str]],
    conversions: list[str],
    fresh: dict[str, list[event_store.StoredEvent]] | None,
    complete: bool,
    spilled: set[str],
) -> dict[int, list[event_store.StoredEvent]]:
    """The events of each person of a group (by their index in it)."""
    by_person: dict[int, list[event_store.StoredEvent]] = defaultdict(list)
    read = group
    if fresh:
        nodes = [n for p in group for n in p]
        held = None if complete else event_store.person_event_counts(conn, workspace_id, nodes)
        read = []
        for k, person in enumerate(group):
            if held is None:  # a first load: all of a person's events are this write's
                whole = spilled.isdisjoint(person)
            else:
                whole = sum(held.get(n, 0) for n in person) == sum(
                    len(fresh.get(n, ())) for n in person
                )
            if whole:
                for n in person:
                    by_person[k].extend(fresh.get(n, ()))
            else:
                read.append(person)
    if read:
        index = {id(p): k for k, p in enumerate(group)}
        owner = {n: index[id(p)] for p in read for n in p}
        nodes = list(owner)
        for e in event_store.person_events(conn, workspace_id, nodes, conversions):
            node = f"u:{e.user_id}" if e.user_id is not None else f"a:{e.anonymous_id}"
            by_person[owner[node]].append(e)
    return by_person


def workspace_ids(conn: Any, workspace_id: int) -> set[str]:
    """The typed id of every anonymousId and userId of the workspace's events."""
    return {n for a, u in event_store.all_event_ids(conn, workspace_id) for n in _nodes(a, u)}


def _nodes(anonymous: str | None, user: str | None) -> list[str]:
    return [n for n in (anonymous and f"a:{anonymous}", user and f"u:{user}") if n]


def _groups(people: list[list[str]]) -> Iterator[list[list[str]]]:
    group: list[list[str]] = []
    size = 0
    for person in people:
        group.append(person)
        size += len(person)
        if size >= PEOPLE_NODES:
            yield group
            group, size = [], 0
    if group:
        yield group


def _journey_row(coder: store.Coder, j: event_journeys.Journey) -> store.JourneyRow:
    campaigns = [t.campaign for t in j.touches]
    devices = [t.device for t in j.touches]
    value = j.value if j.converted and math.isfinite(j.value) else 0.0
    return store.JourneyRow(
        j.journey_id,
        j.customer_id,
        [coder.channel_code(t.channel) for t in j.touches],
        [coder.stages.get(t.stage, 0) if t.stage else 0 for t in j.touches],
        [t.timestamp for t in j.touches],
        campaigns if any(campaigns) else None,
        devices if any(devices) else None,
        j.converted,
        value,
        j.converted_at,
        event_journeys.day_of(j, coder.zone),
        ATTRIBUTES,
    )


def rederive(conn: Any, workspace_id: int) -> tuple[int, store.WriteCounts, int]:
    """Every person of the workspace, after a change of rules."""
    lock_workspace(conn, workspace_id)
    with large_write():
        return rebuild(conn, workspace_id, (), everyone=True)
