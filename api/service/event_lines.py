"""One NDJSON event line -> its event row, without building a dict of the event.

The usual Segment line (string ids, a ``timestamp`` with its zone, objects where
objects belong) is decoded by msgspec straight into the few fields derivation reads;
unknown fields are skipped by the decoder and kept in the stored event, which is the
line as sent. Anything else (a bad or unusual field, a body to normalise, clock-skew
fields) returns None, and the caller checks the line the general way, which gives the
same row or the errors pointing at it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from ..store.events import EventRow
from .event_sources import event_source, memo_size
from .ingest import too_deep, utc_stamp

Kind = Literal["track", "page", "screen", "identify", "alias", "group"]


class _Page(msgspec.Struct):
    # Text where text belongs; a line with anything else here takes the general check.
    url: str | None = None
    referrer: str | None = None
    path: str | None = None


class _Props(msgspec.Struct):
    # A page event's properties may carry its url, referrer and path; other events'
    # properties are theirs, anything goes.
    url: Any = None
    referrer: Any = None
    path: Any = None


class _Context(msgspec.Struct):
    campaign: dict[str, Any] | None = None
    page: _Page | None = None
    userAgent: str | None = None
    device: dict[str, Any] | None = None


class _Event(msgspec.Struct):
    type: Kind
    messageId: str
    timestamp: str
    anonymousId: str | None = None
    userId: str | None = None
    previousId: str | None = None
    event: str | None = None
    name: str | None = None
    sentAt: str | None = None
    receivedAt: str | None = None
    properties: _Props | None = None  # only url, referrer and path are read here
    context: _Context | None = None


_decode = msgspec.json.Decoder(_Event).decode
_control = re.compile(r"[\x00-\x1f\x7f]")
_NO_PAGE = _Page()
_NO_CONTEXT = _Context()
_NO_PROPS = _Props()
# An http(s) URL with a plain host (and port) and a plain path: group 1 is its scheme
# and host, group 2 its path, both as urlsplit reads them (no character that urlsplit
# removes or strips is in them, and the path ends where the query, fragment or URL does).
_PLAIN_URL = re.compile(r"(https?://[A-Za-z0-9.-]+(?::[0-9]+)?)(/[^?#\x00-\x20\x7f]*)?(?=[?#]|\Z)")


def _aware(text: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def fast_row(line: bytes, max_bytes: int, max_id: int, max_text: int) -> EventRow | None:
    """The row of a usual, valid event line; None when the line needs the general check
    (which is then the one to say whether it is valid)."""
    if len(line) > max_bytes or b"\\u0000" in line or too_deep(line):
        return None
    try:
        e = _decode(line)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
        return None
    kind = e.type
    anonymous, user, previous = e.anonymousId, e.userId, e.previousId
    if anonymous is None and user is None:
        return None
    if kind == "alias" and (previous is None or user is None):
        return None
    name = e.event if kind == "track" else e.name
    if kind == "track" and name is None:
        return None
    # Every declared text field is checked, whichever the event's type reads: the
    # lengths one by one, control characters in one pass over them all.
    message_id, event, page_name = e.messageId, e.event, e.name
    if (
        not 0 < len(message_id) <= max_text
        or (anonymous is not None and not 0 < len(anonymous) <= max_id)
        or (user is not None and not 0 < len(user) <= max_id)
        or (previous is not None and not 0 < len(previous) <= max_id)
        or (event is not None and not 0 < len(event) <= max_text)
        or (page_name is not None and not 0 < len(page_name) <= max_text)
    ):
        return None
    joined = (
        f"{message_id}{anonymous or ''}{user or ''}{previous or ''}{event or ''}{page_name or ''}"
    )
    if _control.search(joined) is not None:
        return None
    # Both sentAt and receivedAt: a clock-skew correction, made the general way; one of
    # them: checked, not used.
    sent, received = e.sentAt, e.receivedAt
    if sent is not None and received is not None:
        return None
    other = sent if sent is not None else received
    if other is not None and _aware(other) is None:
        return None
    at = _aware(e.timestamp)
    if at is None:
        return None
    if at.tzinfo is not UTC:
        try:
            at = at.astimezone(UTC)
        except OverflowError:
            return None
    context = e.context or _NO_CONTEXT
    page = context.page or _NO_PAGE
    props = (e.properties or _NO_PROPS) if kind == "page" else _NO_PROPS
    url = page.url or _str(props.url)
    referrer = page.referrer or _str(props.referrer)
    plain = _PLAIN_URL.match(url) if url else None
    if url and plain is not None:
        # A source depends on the URL's host and query only: without its path, a site's
        # URLs repeat, and the source is looked up once per query and referrer.
        path = page.path or _str(props.path) or plain.group(2) or None
        src = event_source(context.campaign, url[: plain.end(1)] + url[plain.end() :], referrer)
    else:
        path = page.path or _str(props.path) or url_path(url)
        src = event_source(context.campaign, url, referrer)
    agent = context.userAgent
    device = agent_device(agent) if context.device is None else device_of(context.device, agent)
    return EventRow(
        kind, anonymous, user, name, at, message_id, path[:2000] if path else None,
        src.source, src.medium, src.campaign, src.referrer_host, src.click_id, device,
        previous if kind == "alias" else None, utc_stamp(e.timestamp, at), line.decode("utf-8"),
    )  # fmt: skip


def url_path(url: str | None) -> str | None:
    return _url_path(url) if memo_size(url) else _path(url)


@lru_cache(maxsize=1 << 16)  # a site's page URLs repeat
def _url_path(url: str | None) -> str | None:
    return _path(url)


def _path(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).path or None
    except ValueError:
        return None


def agent_device(agent: str | None) -> str | None:
    """device_of for an event without ``context.device``."""
    return _agent_device(agent) if memo_size(agent) else device_of(None, agent)


@lru_cache(maxsize=1 << 12)  # a site's visitors share a few user agents
def _agent_device(agent: str | None) -> str | None:
    return device_of(None, agent)


def device_of(device: Any, agent: Any) -> str | None:
    """``context.device.type`` (phones as mobile), else read from the user agent."""
    kind = device.get("type") if isinstance(device, dict) else None
    if isinstance(kind, str) and kind:
        kind = kind.lower()
        if kind in ("ios", "android", "phone", "smartphone"):
            return "mobile"
        return kind[:200]
    if not isinstance(agent, str) or not agent:
        return None
    if "iPad" in agent or "Tablet" in agent:
        return "tablet"
    if "Mobi" in agent or "Android" in agent or "iPhone" in agent:
        return "mobile"
    return "desktop"
