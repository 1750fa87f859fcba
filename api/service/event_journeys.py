"""One person's events -> sessions -> journeys. Pure: no I/O.

The result depends only on the set of events (ordered by time, then messageId) and
the rules, never on the order they arrived in, so rebuilding a person after a late
event gives what in-order delivery would have given.

- **Sessions.** Track, page and screen events, in time order, form sessions: a new one
  starts after ``session_timeout`` without events, and at an event whose traffic source
  (source, medium, campaign) differs from the session's. A session's source is its
  first event's, ``(direct)`` / ``(none)`` when that names none. Each session is one
  touch: the channel of its source (channel rules), the furthest stage in the funnel
  any of its events reaches (stage rules; else the default stage, or the
  after-conversion stage once the person has converted), its campaign, its first
  device, its start time.
- **Journeys.** Conversion events (by name; one per order id) close a journey: the
  touches since the previous conversion up to the conversion, less those that started
  more than ``lookback`` before it (the last one always stays). A conversion with no new
  touch since the previous one has the touch it happened in. Touches after the last
  conversion form an open, non-converting journey (lookback from its last touch).
- **Ids.** Journey ``n`` (from 1, in time order) of a person is
  ``ev:u:<userId>:n`` when one of their events carries a userId (the least, compared
  bytewise), else ``ev:a:<anonymousId>:n``; the journey's ``customer_id`` is that id. An open
  journey becomes converting under the same id when its conversion arrives.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any, NamedTuple

from ..store.events import StoredEvent
from .event_rules import Rules

DIRECT = ("(direct)", "(none)")
TOUCH_TYPES = frozenset(("track", "page", "screen"))
ORDER_IDS = ("order_id", "orderId", "transaction_id", "checkout_id")


@dataclass
class Session:
    start: datetime
    last: datetime
    source: tuple[str | None, str | None, str | None]
    first: StoredEvent
    events: list[StoredEvent] = field(default_factory=list)


class Touch(NamedTuple):  # a tuple: one is made per session of every rebuilt person
    channel: str
    stage: str | None
    timestamp: datetime
    campaign: str | None
    device: str | None


class Journey(NamedTuple):
    journey_id: str
    customer_id: str
    touches: tuple[Touch, ...]
    converted: bool
    value: float
    converted_at: datetime | None


def person_key(events: Iterable[StoredEvent]) -> str:
    """The typed id a person's journeys are named by: the least userId of their events,
    else the least anonymousId (compared as UTF-8 bytes, as the store compares ids; for
    text, UTF-8 byte order is code point order, which is how Python compares str)."""
    users = [e.user_id for e in events if e.user_id is not None]
    if users:
        return "u:" + min(users)
    return "a:" + min([e.anonymous_id for e in events if e.anonymous_id])


# Time, then messageId (UTF-8 byte order, that is code point order: see person_key).
_order = operator.itemgetter(4, 5)


def sessions(events: Sequence[StoredEvent], rules: Rules) -> list[Session]:
    """The sessions of a person's events, given in time order (ties by messageId)."""
    out: list[Session] = []
    for e in events:
        if e.type not in TOUCH_TYPES:
            continue
        key = (e.source, e.medium, e.campaign) if e.source is not None else None
        current = out[-1] if out else None
        if (
            current is None
            or e.occurred_at - current.last > rules.session_timeout
            or (key is not None and key != current.source)
        ):
            current = Session(e.occurred_at, e.occurred_at, key or (None, None, None), e)
            out.append(current)
        current.last = e.occurred_at
        current.events.append(e)
    return out


def _value(e: StoredEvent, rules: Rules) -> float:
    props = e.properties if isinstance(e.properties, dict) else {}
    for name in rules.value_properties:
        v = props.get(name)
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                continue
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return float(v) if 0 <= v <= 1e15 else 0.0
    return 0.0


def conversions(events: Sequence[StoredEvent], rules: Rules) -> list[StoredEvent]:
    """Conversion events of events given in time order, each order id once (its first)."""
    seen: set[str] = set()
    out = []
    for e in events:
        if e.type != "track" or e.event not in rules.conversions:
            continue
        props: dict[str, Any] = e.properties if isinstance(e.properties, dict) else {}
        order = next((str(props[k]) for k in ORDER_IDS if props.get(k) not in (None, "")), None)
        if order is not None:
            if order in seen:
                continue
            seen.add(order)
        out.append(e)
    return out


def _touch(s: Session, rules: Rules, converted_before: bool) -> Touch:
    source, medium, campaign = s.source
    if source is None:
        source, medium = DIRECT
    channel = rules.channel(
        source, medium or "(not set)", campaign, s.first.referrer_host, s.first.click_id
    )
    stage, rank = None, -1
    device = None
    find = rules.stage
    for e in s.events:
        found, r = find(e.event, e.page_path)
        if r > rank:
            stage, rank = found, r
        if device is None:
            device = e.device or None
    if stage is None:
        stage = rules.after_conversion_stage if converted_before else rules.default_stage
    return Touch(channel, stage, s.start, campaign, device)


def journeys(events: Sequence[StoredEvent], rules: Rules) -> list[Journey]:
    """A person's journeys from their events (see the module's docstring)."""
    if not events:
        return []
    key = person_key(events)
    customer = key[2:]
    events = sorted(events, key=_order)  # once, for sessions and conversions both
    found = sessions(events, rules)
    convs = conversions(events, rules)
    out: list[Journey] = []
    k = 0  # next session not yet in a journey
    previous: datetime | None = None
    for n, c in enumerate(convs, start=1):
        start = k
        while k < len(found) and found[k].start <= c.occurred_at:
            k += 1
        taken = list(range(start, k)) or ([k - 1] if k > 0 else [])
        if not taken:
            continue  # cannot happen: a conversion event is in a session
        cut = c.occurred_at - rules.lookback
        taken = [i for i in taken[:-1] if found[i].start >= cut] + taken[-1:]
        touches = tuple(_touch(found[i], rules, _after(found[i], previous)) for i in taken)
        out.append(
            Journey(f"ev:{key}:{n}", customer, touches, True, _value(c, rules), c.occurred_at)
        )
        previous = c.occurred_at
    if k < len(found):
        rest = found[k:]
        cut = rest[-1].start - rules.lookback
        rest = [s for s in rest[:-1] if s.start >= cut] + rest[-1:]
        touches = tuple(_touch(s, rules, _after(s, previous)) for s in rest)
        out.append(Journey(f"ev:{key}:{len(out) + 1}", customer, touches, False, 0.0, None))
    return out


def _after(s: Session, conversion: datetime | None) -> bool:
    return conversion is not None and s.start > conversion


def day_of(j: Journey, zone: tzinfo) -> date:
    """The day the journey counts on in the workspace's time zone ``zone``."""
    at = j.converted_at or j.touches[-1].timestamp
    return at.astimezone(zone).date()
