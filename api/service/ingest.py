"""Journey records -> validated, integer-coded rows for the store.

Shared by ``POST /v1/journeys`` (records already shaped by marshmallow), the bulk
endpoint and ``pathcredit import`` (NDJSON or CSV streams). Structure is checked by
the schemas (marshmallow for JSON requests, the msgspec structs below for bulk lines);
the rules that need the workspace's dictionaries or more than one field live here,
once. Nothing here knows HTTP or SQL.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, timedelta, tzinfo
from typing import Annotated, Any

import msgspec

from .. import store
from .errors import FieldError, InvalidInput

MAX_TOUCHES = 1000
MAX_TEXT = 200
# No control characters: ids end up in CSV and logs. PLAIN is the spec's pattern (in
# ECMA-262 `$` is the end of the text); Python's `$` also matches before a final
# newline, so Python checks anchor at the very end (\Z) instead.
PLAIN = r"^[^\x00-\x1f\x7f]+$"
PLAIN_END = PLAIN[:-1] + r"\Z"

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT, pattern=PLAIN_END)]
Aware = Annotated[datetime, msgspec.Meta(tz=True)]
# Touch times stay the strings they came as (RFC 3339, offset required): PostgreSQL
# reads them as they are, and Python only parses them (fast) to order and date them,
# never formats them again (slow).
STAMP = r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-](0\d|1[0-5])(:?[0-5]\d)?)\Z"
# An offset STAMP refuses though its shape is allowed: hours over 15, or minutes over 59.
_BIG_OFFSET = re.compile(r"[+-]((1[6-9]|[2-9]\d)(:?\d\d)?|\d\d:?[6-9]\d)$", re.MULTILINE)
Stamp = Annotated[str, msgspec.Meta(pattern=STAMP)]
NOT_A_TIME = "Not a valid aware datetime (ISO 8601 with a time zone, like 2024-03-01T10:00:00Z)."
# An offset can carry a time of the years 1 or 9999 out of the range Python (and so
# every read of the journey) holds once it is in UTC.
OUT_OF_RANGE = "Out of range: in UTC, the time must fall in the years 1 to 9999."
# Touch times are stored as they came, and PostgreSQL reads offsets up to 15:59.
MAX_OFFSET = timedelta(hours=15, minutes=59)
NOT_UTF8 = "Not valid UTF-8."
# Attributes are free-form JSON: every layer that reads them back (psycopg, json,
# marshmallow) recurses once per level, so their depth is bounded.
MAX_DEPTH = 32
TOO_DEEP = f"Must not nest arrays and objects more than {MAX_DEPTH} levels deep."
# Values are summed in float64 across paths: the same cap as the JSON schemas.
MAX_VALUE = 1e15
NonNegative = Annotated[float, msgspec.Meta(ge=0, le=MAX_VALUE)]
TOUCHES = msgspec.Meta(min_length=1, max_length=MAX_TOUCHES)


# gc=False: millions of these are created per bulk file and none can form a cycle;
# keeping them out of the cyclic collector saves most of its passes.
class TouchIn(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    channel: Text
    timestamp: Stamp
    stage: Text | None = None
    campaign: Text | None = None
    device: Text | None = None


class JourneyIn(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    journey_id: Text
    touchpoints: Annotated[list[TouchIn], TOUCHES]
    customer_id: Text | None = None
    converted: bool = False
    value: NonNegative = 0.0
    converted_at: Aware | None = None
    # Kept as the raw JSON text: it goes to a jsonb column as it came, checked only for
    # being an object, so no Python object per attribute is built.
    attributes: msgspec.Raw = msgspec.Raw()  # empty: absent


# The same shapes without the per-string patterns, which cost msgspec a Python regex
# call per string (two thirds of the decoding). Bulk batches decode with these when the
# batch can hold no control character (no backslash escape, no DEL) and every touch time
# has one of STAMP_SHAPES; any other batch is decoded again with the structs above.
Bounded = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)]


class TouchLine(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    channel: Bounded
    timestamp: str
    stage: Bounded | None = None
    campaign: Bounded | None = None
    device: Bounded | None = None


class JourneyLine(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    journey_id: Bounded
    touchpoints: Annotated[list[TouchLine], TOUCHES]
    customer_id: Bounded | None = None
    converted: bool = False
    value: NonNegative = 0.0
    converted_at: Aware | None = None
    attributes: msgspec.Raw = msgspec.Raw()


def _stamp_shapes() -> frozenset[bytes]:
    """Every string STAMP matches, with each digit written as 0."""
    seconds = ["", ":00"] + [":00." + "0" * k for k in range(1, 7)]
    offsets = ["Z"] + [sign + rest for sign in "+-" for rest in ("00", "0000", "00:00")]
    return frozenset(
        f"0000-00-00{sep}00:00{s}{o}".encode() for sep in "T " for s in seconds for o in offsets
    )


STAMP_SHAPES = _stamp_shapes()
_UTC_SHAPES = {shape for shape in STAMP_SHAPES if shape.endswith(b"Z")}
_SHAPE = bytes(48 if 48 <= b <= 57 else b if chr(b) in "-+:.TZ \n" else 63 for b in range(256))


def stamp_shapes(stamps: list[str]) -> set[bytes]:
    """The distinct shapes of these strings, digits written as 0 (blanked in one C pass)."""
    return set(stamp_shape("\n".join(stamps)).split(b"\n"))


def stamp_shape(stamp: str) -> bytes:
    """A string with its ASCII digits written as 0 (and unexpected characters as ?)."""
    return stamp.encode().translate(_SHAPE)


_write_lock = threading.Lock()
_writes = 0
_collecting = False  # whether the collector ran when the first write began
_interval = 0.005  # the switch interval then
SWITCH_INTERVAL = 0.0001  # seconds a thread waiting for the GIL waits at most, in writes


@contextlib.contextmanager
def large_write() -> Iterator[None]:
    """Python set for a large write (the process's settings, restored when the last
    write of its threads ends). Two of them:

    - **The cyclic garbage collector is off.** A write holds millions of small objects
      (rows, events, touches) and makes more: every few hundred allocations trigger a
      collection, and the older generations' collections walk everything held. At 10^6
      events that took more time than decoding them (2.4 against 0.9 us an event).
      Nothing a write builds is cyclic, so reference counting frees it all.
    - **The GIL changes hands within 0.1 ms instead of 5.** A write's second thread
      feeds PostgreSQL's COPY in 128 KiB pieces, each after waiting on the socket; with
      the first thread busy decoding, every piece waited up to the 5 ms switch interval
      for the GIL, and COPYing 10^6 events took 15 s instead of 6.
    """
    global _writes, _collecting, _interval
    with _write_lock:
        if _writes == 0:
            _collecting = gc.isenabled()
            _interval = sys.getswitchinterval()
            gc.disable()
            sys.setswitchinterval(min(_interval, SWITCH_INTERVAL))
        _writes += 1
    try:
        yield
    finally:
        with _write_lock:
            _writes -= 1
            if _writes == 0:
                sys.setswitchinterval(_interval)
                if _collecting:
                    gc.enable()


def utc_stamp(sent: str, at: datetime) -> str:
    """The time ``at`` as COPY text: the string it was sent as when that is an RFC 3339
    UTC time (PostgreSQL reads it as Python did, and formatting costs a microsecond an
    event), else ``at`` formatted. ``sent`` must be the text ``at`` was read from."""
    return sent if stamp_shape(sent) in _UTC_SHAPES else at.isoformat()


def stamps_match(stamps: list[str]) -> bool:
    """Whether every string matches STAMP: the few distinct shapes are compared with
    the allowed ones, and offsets (when any is not Z) searched once for hours over 15."""
    shapes = stamp_shapes(stamps)
    if not shapes <= STAMP_SHAPES:
        return False
    return shapes <= _UTC_SHAPES or not _BIG_OFFSET.search("\n".join(stamps))


def journey_row(
    coder: store.Coder, j: JourneyIn | JourneyLine
) -> tuple[store.JourneyRow | None, list[FieldError]]:
    """Code one structurally valid journey; errors carry pointers relative to it.

    Runs once per journey of every bulk file, so the common case takes one pass of
    list comprehensions and builds error messages only when something is wrong.
    """
    touches: Sequence[TouchIn | TouchLine] = j.touchpoints
    stage_codes = coder.stages
    stages = [0 if t.stage is None else stage_codes.get(t.stage, -1) for t in touches]
    attributes = bytes(j.attributes)
    if (
        -1 in stages
        or j.converted_at is not None
        or j.value
        or attributes[:1] not in b"{"
        or b"\\u0000" in attributes
        or too_deep(attributes)
    ):
        errors = journey_rules(j) + _stage_errors(coder, touches, stages)
        if errors:
            return None, errors
    stamps = [t.timestamp for t in touches]
    try:
        times = [_parse(s) for s in stamps]
    except ValueError:
        return None, _time_errors(stamps)
    if len(times) > 1 and times != sorted(times):
        order = sorted(range(len(touches)), key=times.__getitem__)  # stable for equal times
        touches = [touches[k] for k in order]
        stages = [stages[k] for k in order]
        times = [times[k] for k in order]
        stamps = [stamps[k] for k in order]
    # Only the earliest and the latest time can leave the range, and only from there.
    if times[0].year == MINYEAR or times[-1].year == MAXYEAR:
        errors = _range_errors(j.touchpoints)
        if errors:
            return None, errors
    try:
        attributes_text = "{}" if not attributes else _attributes_text(attributes)
    except UnicodeDecodeError:
        return None, [FieldError("/attributes", NOT_UTF8)]
    converted_at = j.converted_at
    if j.converted and converted_at is None:
        converted_at = times[-1]
    channel_codes, new_code = coder.channels, coder.channel_code
    campaigns = [t.campaign for t in touches]
    devices = [t.device for t in touches]
    counted_at = converted_at or times[-1]
    # Positional: this runs for every journey of a bulk file.
    row = store.JourneyRow(
        j.journey_id,
        j.customer_id,
        [channel_codes.get(t.channel) or new_code(t.channel) for t in touches],
        stages,
        stamps,
        campaigns if any(campaigns) else None,
        devices if any(devices) else None,
        j.converted,
        float(j.value),
        converted_at,
        local_day(counted_at, coder.zone),
        attributes_text,
    )
    return row, []


_parse = datetime.fromisoformat


def local_day(at: datetime, zone: tzinfo) -> date:
    """The day a journey counted at ``at`` counts on in the workspace's time zone."""
    if at.tzinfo is zone:
        return at.date()
    return at.astimezone(zone).date()


def _time_errors(stamps: list[str]) -> list[FieldError]:
    """The touch times that match the pattern but are no time (2024-02-30, 25:00)."""
    errors = []
    for k, stamp in enumerate(stamps):
        try:
            if _parse(stamp).tzinfo is None:
                raise ValueError(stamp)
        except ValueError:
            errors.append(FieldError(f"/touchpoints/{k}/timestamp", NOT_A_TIME))
    return errors


def _range_errors(touches: Sequence[TouchIn | TouchLine]) -> list[FieldError]:
    return [
        FieldError(f"/touchpoints/{k}/timestamp", OUT_OF_RANGE)
        for k, t in enumerate(touches)
        if not in_utc_range(_parse(t.timestamp))
    ]


def in_utc_range(time: datetime) -> bool:
    """Whether an aware time is still a time Python holds once in UTC."""
    try:
        time.astimezone(UTC)
    except OverflowError:
        return False
    return True


_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
# Keeps quotes and brackets only, arrays written as objects: only the nesting counts.
_BRACKETS = bytes.maketrans(b"[]", b"{}")
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"[]{}')))


def too_deep(text: bytes) -> bool:
    """Whether a JSON text nests arrays and objects more than MAX_DEPTH levels deep.

    Cheap for the usual text, which has too few brackets to be that deep; otherwise
    its strings are dropped and its innermost pairs of brackets removed, one level a
    pass. Several texts joined (by anything but a quote) are as deep as the deepest.
    """
    if text.count(b"{") + text.count(b"[") <= MAX_DEPTH:
        return False
    if b"\\" in text:
        text = _ESCAPE.sub(b"", text)
    marks = text.translate(_BRACKETS, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in marks:  # brackets inside strings
        marks = _STRING.sub(b"", marks)
    for _ in range(MAX_DEPTH):
        marks = marks.replace(b"{}", b"")
        if not marks:
            return False
    return True


def _stage_errors(
    coder: store.Coder, touches: Sequence[TouchIn | TouchLine], stages: list[int]
) -> list[FieldError]:
    known = ", ".join(coder.stages) or "none"
    return [
        FieldError(f"/touchpoints/{k}/stage", f"Unknown stage {t.stage!r}; stages: {known}.")
        for k, (t, code) in enumerate(zip(touches, stages, strict=True))
        if code == -1
    ]


def _attributes_text(text: bytes) -> str:
    if text[:1] == b"{":
        return text.decode("utf-8")
    text = text.strip()
    return "{}" if text in (b"", b"null") else text.decode("utf-8")


def raw_json(value: Any) -> msgspec.Raw:
    """A Python value as the raw JSON that JourneyIn.attributes holds."""
    return msgspec.Raw(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def journey_rules(j: JourneyIn | JourneyLine) -> list[FieldError]:
    errors = []
    attributes = bytes(j.attributes).strip()
    if attributes not in (b"", b"null") and not attributes.startswith(b"{"):
        errors.append(FieldError("/attributes", "Must be a JSON object."))
    elif b"\\u0000" in attributes:  # jsonb cannot hold NUL characters
        errors.append(FieldError("/attributes", "Must not contain NUL characters (\\u0000)."))
    elif too_deep(attributes):
        errors.append(FieldError("/attributes", TOO_DEEP))
    if not math.isfinite(j.value):
        errors.append(FieldError("/value", "Must be a finite number."))
    if j.value > 0 and not j.converted:
        errors.append(FieldError("/value", "A journey that did not convert has no value."))
    if j.converted_at is not None and not j.converted:
        errors.append(
            FieldError("/converted_at", "A journey that did not convert has no conversion time.")
        )
    elif j.converted_at is not None and not in_utc_range(j.converted_at):
        errors.append(FieldError("/converted_at", OUT_OF_RANGE))
    return errors


def write_batch(
    db: store.Database, workspace_id: int, journeys: Sequence[JourneyIn], limit: int
) -> dict[str, int]:
    """Store a JSON batch of journeys in one transaction, or raise InvalidInput listing
    every bad record; nothing is written then."""
    batch_limit(journeys, limit, "journeys", "; use /v1/journeys/bulk for more")
    with db.transaction() as conn:
        write = store.JourneyWrite(conn, workspace_id)
        write.copy(code_batch(write.coder, journeys, "/journeys"))
        return write_result(write.finish())


def batch_limit(records: Sequence[Any], limit: int, name: str, hint: str) -> None:
    """A JSON batch holds 1 to ``limit`` records."""
    if not records or len(records) > limit:
        raise InvalidInput(
            f"A batch holds 1 to {limit} {name}{hint}.",
            [FieldError(f"/{name}", f"Length must be between 1 and {limit}.")],
        )


def write_result(result: store.WriteCounts) -> dict[str, int]:
    """What a write did, as the API reports it."""
    return {
        "received": result.received,
        "created": result.created,
        "replaced": result.replaced,
        "unchanged": result.unchanged,
    }


def code_batch(
    coder: store.Coder, journeys: Sequence[JourneyIn], prefix: str
) -> list[store.JourneyRow]:
    """Code a whole batch or raise one InvalidInput listing every bad record."""
    rows, errors = [], []
    seen: dict[str, int] = {}
    for i, j in enumerate(journeys):
        row, errs = journey_row(coder, j)
        errs += _duplicate(seen, j.journey_id, i)
        errors += [FieldError(f"{prefix}/{i}{e.pointer}", e.detail) for e in errs]
        if row is not None:
            rows.append(row)
    if errors:
        bad = len({e.pointer.split("/")[2] for e in errors})
        raise InvalidInput(
            f"{bad} of {len(journeys)} journeys are invalid; nothing was written.", errors
        )
    return rows


def _duplicate(seen: dict[str, int], journey_id: str, index: int) -> list[FieldError]:
    first = seen.setdefault(journey_id, index)
    if first == index:
        return []
    return [FieldError("/journey_id", f"Duplicate journey_id; record {first} has it too.")]


# --------------------------------------------------------------------------- streams

_MSGSPEC_PATH = re.compile(r"^(.*?)(?: - at `\$(.*)`)?$", re.DOTALL)
_FIELD_IN_MESSAGE = re.compile(r"^Object (?:contains unknown|missing required) field `([^`]*)`")


def pointer_from_msgspec(error: msgspec.MsgspecError) -> tuple[str, str]:
    """msgspec's ``... - at `$.touchpoints[3].timestamp``` -> (pointer, detail)."""
    match = _MSGSPEC_PATH.match(str(error))
    assert match is not None
    detail, path = match.group(1), match.group(2) or ""
    pointer = re.sub(r"\[(\d+)\]", r"/\1", path).replace(".", "/")
    if pointer.endswith("/timestamp") and "regex" in detail:
        return pointer, NOT_A_TIME
    named = _FIELD_IN_MESSAGE.match(detail)
    if named:
        pointer += "/" + named.group(1)
        detail = "Unknown field." if "unknown" in detail else "Missing data for required field."
    return pointer, detail


def ndjson_blocks(chunks: Iterable[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """Split a byte stream into blocks of whole lines, each about ``size`` bytes (one
    line at least); a block's lines are its records, blank ones included, so that a
    line's index in the stream is its record index."""
    pending = b""
    for chunk in chunks:
        data = pending + chunk if pending else chunk
        start = 0
        while len(data) - start >= size:
            cut = data.find(b"\n", start + size - 1)
            if cut < 0:
                break
            yield data[start : cut + 1]
            start = cut + 1
        pending = data[start:]
    if pending.strip():
        yield pending


def block_lines(block: bytes) -> list[bytes]:
    """The lines of a block from :func:`ndjson_blocks`."""
    lines = block.split(b"\n")
    if block.endswith(b"\n"):
        lines.pop()
    return lines
