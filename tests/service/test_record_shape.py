"""The journey record is declared once, as ``JourneyIn`` / ``TouchIn`` in
``api.service.ingest``; every other shape of it is held to that declaration here:
the pattern-free bulk structs, the JSON schema of the routes and the spec, the CSV
columns of bulk files, and the COPY layout of stored rows."""

from __future__ import annotations

import re
import typing
from typing import Any

import msgspec
import psycopg
from marshmallow import fields, validate

from api.schemas.journeys import JourneyInSchema, TouchpointIn
from api.service import bulk
from api.service.ingest import (
    MAX_TEXT,
    MAX_TOUCHES,
    MAX_VALUE,
    JourneyIn,
    JourneyLine,
    TouchIn,
    TouchLine,
)
from api.store import JourneyRow
from api.store.sqlfiles import query

PAIRS = [(JourneyIn, JourneyLine, JourneyInSchema), (TouchIn, TouchLine, TouchpointIn)]


def _without_patterns(kind: Any) -> Any:
    """A field type with every string pattern dropped, the nested record types named."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Annotated:
        metas = [m for m in kind.__metadata__ if not (m.pattern and m.min_length is None)]
        metas = [
            msgspec.Meta(min_length=m.min_length, max_length=m.max_length) if m.pattern else m
            for m in metas
        ]
        inner = _without_patterns(args[0])
        return (inner, *[repr(m) for m in metas]) if metas else inner
    if args:
        return (origin, *[_without_patterns(a) for a in args])
    if kind in (TouchIn, TouchLine):
        return "touch"
    return kind


def test_the_bulk_structs_are_the_record_without_patterns() -> None:
    for strict, fast, _ in PAIRS:
        want = [
            (f.name, _without_patterns(f.type), f.required, f.default)
            for f in msgspec.structs.fields(strict)
        ]
        got = [
            (f.name, _without_patterns(f.type), f.required, f.default)
            for f in msgspec.structs.fields(fast)
        ]
        assert got == want, strict.__name__
    # a touch time's pattern is checked on the whole block instead (``stamps_match``)
    assert msgspec.structs.fields(TouchLine)[1].type is str


def _length(field: fields.Field[Any]) -> tuple[int | None, int | None]:
    checks = field.validators or []
    found = [(v.min, v.max) for v in checks if isinstance(v, validate.Length)]
    return found[0] if found else (None, None)


def test_the_json_schema_has_the_record_fields_and_limits() -> None:
    for strict, _, schema in PAIRS:
        declared = schema().fields
        struct_fields = {f.name: f for f in msgspec.structs.fields(strict)}
        assert set(declared) == set(struct_fields)
        for name, field in declared.items():
            assert field.required == struct_fields[name].required, name
    journey, touch = JourneyInSchema().fields, TouchpointIn().fields
    assert _length(journey["touchpoints"]) == (1, MAX_TOUCHES)
    for field in [journey["journey_id"], journey["customer_id"], touch["channel"]]:
        assert _length(field) == (1, MAX_TEXT)
    value_range = [v for v in journey["value"].validators if isinstance(v, validate.Range)]
    assert (value_range[0].min, value_range[0].max) == (0, MAX_VALUE)


def test_bulk_csv_columns_are_the_record_fields() -> None:
    journey = [f.name for f in msgspec.structs.fields(JourneyIn) if f.name != "touchpoints"]
    touch = [f.name for f in msgspec.structs.fields(TouchIn)]
    assert set(bulk.CSV_COLUMNS) == set(journey) | set(touch)
    assert set(bulk.TOUCH_COLUMNS) == set(touch)
    required = {f.name for f in msgspec.structs.fields(JourneyIn) if f.required} - {"touchpoints"}
    required |= {f.name for f in msgspec.structs.fields(TouchIn) if f.required}
    assert set(bulk.CSV_REQUIRED) == required


def _copy_columns(name: str) -> list[str]:
    match = re.search(r"COPY \w+ \(([^)]*)\) FROM STDIN", query(name))
    assert match is not None, name
    return [c.strip() for c in match.group(1).split(",")]


def test_copy_rows_are_laid_out_as_the_table(conn: psycopg.Connection) -> None:
    layout = ["workspace_id", *JourneyRow._fields]
    assert _copy_columns("copy_journeys") == layout
    assert _copy_columns("copy_journeys_in") == layout
    for table in ("journeys", "journeys_in"):
        conn.execute(query("create_journeys_in"))
        columns = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
            " AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (table,),
        ).fetchall()
        assert [c for (c,) in columns] == layout, table
