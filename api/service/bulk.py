"""Bulk journey files (NDJSON or CSV) streamed into the store.

Used by ``POST /v1/journeys/bulk`` and ``pathcredit import`` alike. NDJSON is read in
blocks of whole lines, each decoded in one msgspec call (typed, C speed) and coded
against the workspace dictionaries, column by column when the block is a common one
(:mod:`api.service.bulk_columns`), else journey by journey; CSV journey by journey. The store
stores chunks while the rest of the stream is still being read, all in the caller's
one transaction. A bad record stops the
writing but not the reading, so the error lists every bad record (up to a limit), the
transaction rolls back and nothing is written.
"""

from __future__ import annotations

import codecs
import csv
import gc
import json
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Annotated, Any, Literal, NamedTuple, cast

import msgspec
import numpy as np

from .. import store
from . import bulk_columns
from .errors import FieldError, InvalidInput
from .ingest import (
    NOT_UTF8,
    TOO_DEEP,
    TOUCHES,
    JourneyIn,
    JourneyLine,
    TouchLine,
    block_lines,
    journey_row,
    ndjson_blocks,
    pointer_from_msgspec,
    raw_json,
    stamps_match,
)

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
CSV_TYPES = ("text/csv",)
CSV_COLUMNS = (
    "journey_id", "customer_id", "timestamp", "channel", "stage", "campaign", "device",
    "converted", "value", "converted_at", "attributes",
)  # fmt: skip
CSV_REQUIRED = ("journey_id", "timestamp", "channel")
BLOCK_BYTES = 1 << 20  # NDJSON decoded, checked and staged together (whole lines)
LINES_PER_BATCH = 2000  # CSV journeys staged together
TOUCH_COLUMNS = ("timestamp", "channel", "stage", "campaign", "device")

_TIMESTAMP = operator.attrgetter("timestamp")
# What decoding a batch raises besides msgspec's errors: UnicodeDecodeError for a
# string that is not UTF-8, RecursionError for values nested past the interpreter's limit.
_UNREADABLE = (msgspec.MsgspecError, UnicodeDecodeError, RecursionError)
_ESCAPED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, kept by surrogateescape
_fast_decoder = msgspec.json.Decoder(list[JourneyLine])
_batch_decoder = msgspec.json.Decoder(list[JourneyIn])
_line_decoder = msgspec.json.Decoder(JourneyIn)


FORMATS = ("ndjson", "csv")


def format_of(mimetype: str) -> str | None:
    """The bulk format of a media type, or None when it is not one we read."""
    if mimetype in NDJSON_TYPES:
        return "ndjson"
    if mimetype in CSV_TYPES:
        return "csv"
    return None


def import_stream(
    db: store.Database, workspace_id: int, kind: str, chunks: Iterable[bytes], max_errors: int
) -> store.WriteCounts:
    """Store a bulk file (``kind`` one of :data:`FORMATS`) in one transaction."""
    reader = import_csv if kind == "csv" else import_ndjson
    with db.transaction() as conn:
        return reader(store.JourneyWrite(conn, workspace_id), chunks, max_errors)


def _in_record(index: int, pointer: str) -> tuple[int, str]:
    return index, pointer


class _Collector:
    """Rows to stage and errors to report, with the duplicate-id check across batches.

    ``locate`` turns a record index and a pointer into its journey into the index and
    pointer the error names (a CSV row and column for a touch's field)."""

    def __init__(
        self,
        write: store.JourneyWrite,
        max_errors: int,
        locate: Callable[[int, str], tuple[int, str]] = _in_record,
    ) -> None:
        self.write = write
        self.max_errors = max_errors
        self.locate = locate
        self.errors: list[FieldError] = []
        self.bad_records = 0
        self.records = 0
        self.seen: dict[str, int] = {}
        self.undecodable = False  # the stream held bytes that are not UTF-8

    @property
    def full(self) -> bool:
        return len(self.errors) >= self.max_errors

    def add(
        self, index: int, journey: JourneyIn | JourneyLine, rows: list[store.JourneyRow]
    ) -> None:
        self.records += 1
        row, errors = journey_row(self.write.coder, journey)
        first = self.seen.setdefault(journey.journey_id, index)
        if first != index:
            errors.append(
                FieldError("/journey_id", f"Duplicate journey_id; record {first} has it too.")
            )
        if errors:
            self.reject(index, errors)
        elif row is not None and not self.errors:
            rows.append(row)

    def new_ids(self, journey_ids: list[str], indices: Iterable[int]) -> bool:
        """Record a batch's ids when all are new and distinct; False (nothing recorded)
        otherwise."""
        fresh = dict(zip(journey_ids, indices, strict=True))
        if len(fresh) < len(journey_ids) or not self.seen.keys().isdisjoint(fresh):
            return False
        self.seen.update(fresh)
        return True

    def reject(self, index: int, errors: list[FieldError]) -> None:
        self.bad_records += 1
        for e in errors:
            at, pointer = self.locate(index, e.pointer)
            self.errors.append(FieldError(f"/{at}{pointer}", e.detail))

    def stage(self, rows: list[store.JourneyRow]) -> None:
        if rows and not self.errors:
            self.write.copy(rows)

    def finish(self) -> store.WriteCounts:
        if self.errors:
            count = f"At least {self.bad_records}" if self.full else f"{self.bad_records}"
            raise InvalidInput(
                f"{count} of the records read are invalid (pointers start with the 0-based "
                f"record index; at most {self.max_errors} errors are listed); "
                "nothing was written.",
                self.errors[: self.max_errors],
            )
        if self.records == 0:
            raise InvalidInput("The upload holds no journeys; nothing was written.")
        return self.write.finish()


def import_ndjson(
    write: store.JourneyWrite, chunks: Iterable[bytes], max_errors: int = 100
) -> store.WriteCounts:
    """One JSON journey per line; the record index is the 0-based line number."""
    out = _Collector(write, max_errors)
    names = Names()
    index = 0
    try:
        with _paused_gc():
            for block in ndjson_blocks(chunks, BLOCK_BYTES):
                fast = _decode_fast(block, names)
                if fast is None or not _stage_columns(out, index, fast):
                    lines = block_lines(block)
                    present = [(index + k, line) for k, line in enumerate(lines) if line.strip()]
                    rows: list[store.JourneyRow] = []
                    for i, journey in _decode(present, fast, out):
                        out.add(i, journey, rows)
                    out.stage(rows)
                index += block.count(b"\n") + (not block.endswith(b"\n"))
                if out.full:
                    break
        return out.finish()
    except BaseException as e:
        write.abort(e)
        raise


class _Decoded(NamedTuple):
    """A block decoded by the pattern-free structs."""

    journeys: list[JourneyLine]
    touches: list[TouchLine]  # all of them, journey after journey
    stamps: list[str]  # their times
    digits: np.ndarray | None  # the times' characters when all have one UTC shape


def _stage_columns(out: _Collector, index: int, fast: _Decoded) -> bool:
    """Stage a whole block column-wise when it is a common one; False: it was not.
    The block has no blank line before its last record (else it would not decode), so
    its records are the lines from ``index`` on."""
    if out.errors or fast.digits is None:
        return False
    ids = [j.journey_id for j in fast.journeys]
    if not out.new_ids(ids, range(index, index + len(ids))):
        return False
    batch = bulk_columns.code_batch(
        out.write.coder, fast.journeys, fast.touches, fast.stamps, fast.digits,
        out.write.prefix, ids,
    )  # fmt: skip
    if batch is None:
        for journey_id in ids:
            del out.seen[journey_id]
        return False
    out.records += len(ids)
    out.write.copy_text(batch.text, batch.journey_ids, batch.rollups)
    return True


@contextmanager
def _paused_gc() -> Iterator[None]:
    """Decoding and coding allocate several containers per journey (lists of codes and
    times, rows), none of them cyclic: the collector's passes over them cost a quarter
    of the per-journey time, and reference counting frees them all anyway."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Names:
    """Pattern-free decoding that learns an upload's touch names.

    Channel, stage, campaign and device names repeat across millions of touches. Once
    seen, they are decoded as literals: msgspec then returns the one string object of a
    name instead of a new string per touch, and looking it up later hashes nothing
    again. A block with a name not seen yet is decoded again with plain strings and
    its names are learned; a field whose names keep coming (many of them, or new ones
    in many blocks) stays plain strings. Both ways accept exactly the same records: a
    literal only ever holds names that passed the plain struct's checks.
    """

    FIELDS = ("channel", "stage", "campaign", "device")
    MAX_NAMES = 1000  # per field
    MAX_CHANGES = 8  # blocks bringing new names to a field

    def __init__(self) -> None:
        self.names: dict[str, set[str]] = {f: set() for f in self.FIELDS}
        self.changes = dict.fromkeys(self.FIELDS, 0)
        self.decoder: msgspec.json.Decoder[Any] | None = None
        self.learning = False

    def decode(self, text: bytes) -> list[JourneyLine]:
        """The journeys of a JSON array; raises as the plain decoder does."""
        self.learning = False
        if self.decoder is not None:
            with suppress(msgspec.ValidationError):
                return cast(list[JourneyLine], self.decoder.decode(text))
        self.learning = True
        return _fast_decoder.decode(text)

    def learn(self, touches: list[TouchLine]) -> None:
        """Take the names of a block's touches (after :meth:`decode` fell back)."""
        changed = False
        for field in self.FIELDS:
            if self.changes[field] > self.MAX_CHANGES:
                continue
            names = self.names[field]
            new = set(map(operator.attrgetter(field), touches)) - names - {None}
            if new:
                changed = True
                names |= new
                self.changes[field] += 1
                if len(names) > self.MAX_NAMES:
                    self.changes[field] = self.MAX_CHANGES + 1
        if changed:
            self.decoder = msgspec.json.Decoder(list[self._journey_type()])  # type: ignore[misc]

    def _journey_type(self) -> type[msgspec.Struct]:
        def typed(field: msgspec.structs.FieldInfo) -> tuple[str, Any, Any]:
            names = self.names.get(field.name)
            kind = field.type
            if names is not None and self.changes[field.name] <= self.MAX_CHANGES:
                # None seen yet: a placeholder (a valid name), so that the first one
                # seen is learned too
                kind = Literal[tuple(sorted(names or {field.name}))]
                kind = kind if field.required else kind | None
            elif field.name == "touchpoints":
                kind = Annotated[list[touch], TOUCHES]  # type: ignore[valid-type]
            return field.name, kind, field.default

        def struct(name: str, base: type[msgspec.Struct]) -> type[msgspec.Struct]:
            fields = [typed(f) for f in msgspec.structs.fields(base)]
            return msgspec.defstruct(name, fields, forbid_unknown_fields=True, gc=False)

        touch = struct("TouchLine", TouchLine)
        return struct("JourneyLine", JourneyLine)


def _decode_fast(block: bytes, names: Names) -> _Decoded | None:
    """The block decoded by the pattern-free structs, in one call; None when it might
    hold what only the strict structs reject, or it has blank lines between records or
    a line with more than one value."""
    if b"\\" in block or b"\x7f" in block:
        return None
    text = block.rstrip(b"\r\n")
    try:
        journeys = names.decode(b"[" + text.replace(b"\n", b",") + b"]")
    except _UNREADABLE:
        return None
    if not journeys or len(journeys) != text.count(b"\n") + 1:
        return None  # blank lines only, or values joined by a comma on one line
    touches = [t for j in journeys for t in j.touchpoints]
    if names.learning:
        names.learn(touches)
    stamps = list(map(_TIMESTAMP, touches))
    digits = bulk_columns.utc_digits(stamps)
    if digits is None and not stamps_match(stamps):
        return None
    return _Decoded(journeys, touches, stamps, digits)


def _decode(
    present: list[tuple[int, bytes]],
    fast: _Decoded | None,
    out: _Collector,
) -> Iterator[tuple[int, JourneyIn | JourneyLine]]:
    """The batch's journeys: the pattern-free decoding when it held, else the strict one
    in one call, and only when that fails line by line to find every error."""
    decoded: list[JourneyIn] | list[JourneyLine] | None = None
    if fast is not None:
        decoded = fast.journeys
    else:
        with suppress(*_UNREADABLE):
            decoded = _batch_decoder.decode(b"[" + b",".join([line for _, line in present]) + b"]")
    if decoded is not None and len(decoded) == len(present):  # else a line held two values
        yield from zip((i for i, _ in present), decoded, strict=True)
        return
    for i, line in present:
        try:
            yield i, _line_decoder.decode(line)
        except msgspec.ValidationError as e:  # a subclass of DecodeError: first
            out.records += 1
            pointer, detail = pointer_from_msgspec(e)
            out.reject(i, [FieldError(pointer, detail)])
        except msgspec.DecodeError:
            out.records += 1
            out.reject(i, [FieldError("", "Not a valid JSON object.")])
        except UnicodeDecodeError:
            out.records += 1
            out.reject(i, [FieldError(_undecodable(line), NOT_UTF8)])
        except RecursionError:  # only attributes hold values of any depth
            out.records += 1
            out.reject(i, [FieldError("/attributes", TOO_DEEP)])


def _undecodable(line: bytes) -> str:
    """The pointer to a string (or key) of a JSON line that is not valid UTF-8, or ""
    (the record) when the line is no JSON anyway."""
    try:
        value = json.loads(line.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return ""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        pointer, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if _ESCAPED.search(key):
                    return f"{pointer}/{_shown(key)}"
                pending.append((f"{pointer}/{key}", item))
        elif isinstance(value, list):
            pending.extend((f"{pointer}/{k}", item) for k, item in enumerate(value))
        elif isinstance(value, str) and _ESCAPED.search(value):
            return pointer
    return ""


def import_csv(
    write: store.JourneyWrite, chunks: Iterable[bytes], max_errors: int = 100
) -> store.WriteCounts:
    """One touchpoint per row, a journey's rows together; the record index of an error
    is the 0-based data row (the header is not counted)."""
    out = _Collector(write, max_errors, _csv_pointer)
    rows: list[store.JourneyRow] = []
    try:
        with _paused_gc():
            for first, group in _csv_journeys(_text_lines(chunks, out), out):
                journey = _convert_group(first, group, out)
                if journey is not None:
                    out.add(first, journey, rows)
                if len(rows) >= LINES_PER_BATCH:
                    out.stage(rows)
                    rows = []
                if out.full:
                    break
            out.stage(rows)
        return out.finish()
    except BaseException as e:
        write.abort(e)
        raise


def _text_lines(chunks: Iterable[bytes], out: _Collector) -> Iterator[str]:
    """Text lines of a UTF-8 stream; a character split between chunks is kept whole and
    a leading byte-order mark (as spreadsheets write) is dropped. Bytes that are not
    UTF-8 are kept as surrogates, and ``out`` told, so that the cells holding them can
    be named."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")("surrogateescape")
    pending = ""
    for chunk in chunks:
        text = decoder.decode(chunk)
        if not text.isascii() and _ESCAPED.search(text):
            out.undecodable = True
        pending += text
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _csv_journeys(
    lines: Iterator[str], out: _Collector
) -> Iterator[tuple[int, list[dict[str, str]]]]:
    reader = csv.DictReader(lines)
    try:
        columns = reader.fieldnames or []
    except csv.Error as e:
        raise InvalidInput(
            "The CSV header cannot be read; nothing was written.",
            [FieldError("/header", f"Not a readable CSV row ({e}).")],
        ) from None
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    missing = [c for c in CSV_REQUIRED if c not in columns]
    separator = other_separator(columns)
    if separator is not None:
        raise InvalidInput(
            "The CSV header is not one this endpoint reads; nothing was written.",
            [
                FieldError(
                    "/header",
                    f"The columns are separated by {separator}; separate them with commas.",
                )
            ],
        )
    if unknown or missing:
        accepted = f"Unknown column; the columns read are {', '.join(CSV_COLUMNS)}."
        raise InvalidInput(
            "The CSV header is not one this endpoint reads; nothing was written.",
            [FieldError(f"/header/{_shown(c)}", accepted) for c in unknown]
            + [FieldError(f"/header/{c}", "Missing required column.") for c in missing],
        )
    group: list[dict[str, str]] = []
    start = read = 0
    try:
        for row in reader:
            if group and row["journey_id"] != group[0]["journey_id"]:
                yield start, group
                group, start = [], read
            group.append(row)
            read += 1
    except csv.Error as e:  # a field longer than csv.field_size_limit()
        out.records += 1
        out.reject(read, [FieldError("", f"Not a readable CSV row ({e}).")])
        return
    if group:
        yield start, group


def _convert_group(first: int, group: list[dict[str, str]], out: _Collector) -> JourneyIn | None:
    for k, row in enumerate(group):
        if None in row:
            out.records += 1
            out.reject(first + k, [FieldError("", "The row has more cells than the header.")])
            return None
    if out.undecodable:
        for k, row in enumerate(group):
            column = next((c for c, v in row.items() if v and _ESCAPED.search(v)), None)
            if column is not None:
                out.records += 1
                out.reject(first + k, [FieldError(f"/{column}", NOT_UTF8)])
                return None
    head = group[0]
    record: dict[str, Any] = {
        k: v for k, v in head.items() if k not in TOUCH_COLUMNS and v not in ("", None)
    }
    try:
        attributes = record.pop("attributes", None)
        record["touchpoints"] = [
            {k: row[k] for k in TOUCH_COLUMNS if row.get(k) not in ("", None)} for row in group
        ]
        journey = msgspec.convert(record, JourneyIn, strict=False)
        if attributes is not None:
            journey.attributes = raw_json(json.loads(attributes))
        return journey
    except json.JSONDecodeError:
        out.records += 1
        out.reject(first, [FieldError("/attributes", "Not a valid JSON object.")])
    except RecursionError:
        out.records += 1
        out.reject(first, [FieldError("/attributes", TOO_DEEP)])
    except msgspec.ValidationError as e:
        out.records += 1
        pointer, detail = pointer_from_msgspec(e)
        if pointer == "/converted":  # a CSV cell, read as text: say what it may hold
            detail = BOOLEAN_CELLS
        out.reject(first, [FieldError(pointer, detail)])
    return None


SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def other_separator(columns: Sequence[str], known: Sequence[str] = CSV_COLUMNS) -> str | None:
    """What a one-column header whose name splits into ``known`` columns is separated
    by (spreadsheets set to some locales write semicolons)."""
    if len(columns) != 1:
        return None
    for char, name in SEPARATORS.items():
        parts = columns[0].split(char)
        if len(parts) > 1 and any(p.strip() in known for p in parts):
            return name
    return None


BOOLEAN_CELLS = "Expected true or false (1 or 0 also read)."


def _shown(text: str) -> str:
    """Text decoded with surrogateescape, its undecodable bytes shown as U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _csv_pointer(first: int, pointer: str) -> tuple[int, str]:
    """``/touchpoints/2/timestamp`` of the journey starting at row ``first`` -> row
    ``first + 2``, column ``timestamp``."""
    parts = pointer.split("/")
    if len(parts) >= 4 and parts[1] == "touchpoints" and parts[2].isdigit():
        return first + int(parts[2]), "/" + "/".join(parts[3:])
    return first, pointer
