"""Column-wise coding of bulk batches gives exactly what the per-journey way gives.

The per-journey way (journey_row, then the store's COPY formatting) is the reference:
for any batch the column-wise coder takes, the COPY text, the journey ids, the rollup
totals and the channel codes handed out must be identical; a batch it declines must be
one the per-journey way rejects or one whose attributes it leaves to that way.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import store
from api.service import bulk, bulk_columns
from api.service.ingest import journey_row, stamps_match
from api.store.journeys import _lines

PREFIX = "7\t"
SHAPES = [
    "{d}T{t}:{s}Z",
    "{d} {t}:{s}Z",
    "{d}T{t}Z",
    "{d}T{t}:{s}.{f}Z",
]

names = st.sampled_from(["email", "search", "social", "direct", "new one", "más"])
labels = st.none() | st.sampled_from(["brand", "retarget", "a,b", "{x}", "NULL"])
stages = st.none() | st.sampled_from(["awareness", "decision", "retention"])
rarely = st.integers(0, 60).map(lambda k: k == 0)  # about one draw in sixty


@st.composite
def stamp_parts(draw: st.DrawFn) -> tuple[int, int, int, int, int, int, int]:
    month = draw(st.integers(1, 12))
    bad = draw(rarely)
    return (
        draw(st.sampled_from([1999, 2024, 2025, 2100])),
        month,
        # 31 April, 30 February, hour 24, second 60: times of the right shape, no dates
        draw(st.integers(29, 31) if bad else st.integers(1, 28)),
        draw(st.integers(0, 24) if bad else st.integers(0, 23)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 60) if bad else st.integers(0, 59)),
        draw(st.integers(0, 999)),
    )


def stamp(shape: str, parts: tuple[int, ...]) -> str:
    y, mo, d, h, mi, s, f = parts
    return shape.format(
        d=f"{y:04d}-{mo:02d}-{d:02d}", t=f"{h:02d}:{mi:02d}", s=f"{s:02d}", f=f"{f:03d}"
    )


@st.composite
def batches(draw: st.DrawFn) -> list[dict]:
    shape = draw(st.sampled_from(SHAPES))
    n = draw(st.integers(1, 12))
    out = []
    for k in range(n):
        touches = []
        for _ in range(draw(st.integers(1, 5))):
            touch = {"channel": draw(names), "timestamp": stamp(shape, draw(stamp_parts()))}
            for field, values in (("stage", stages), ("campaign", labels), ("device", labels)):
                value = "nowhere" if field == "stage" and draw(rarely) else draw(values)
                if value is not None or draw(st.booleans()):
                    touch[field] = value
            touches.append(touch)
        record: dict = {"journey_id": f"j{k}", "touchpoints": touches}
        if draw(st.booleans()):
            record["customer_id"] = draw(st.none() | st.sampled_from(["c1", "c 2"]))
        converted = draw(st.booleans())
        if converted or draw(st.integers(0, 9)) == 0:
            record["converted"] = converted
        if converted and draw(st.booleans()):
            record["value"] = draw(st.sampled_from([0, 1, 12.5, 1e-3]))
        if draw(rarely):
            record["value"] = 3.0  # on a journey that may not have converted
        if converted and draw(st.booleans()):
            record["converted_at"] = draw(
                st.sampled_from(["2025-01-31T23:30:00-02:00", "2025-02-01T00:10:00+05:30"])
            )
        odd = st.sampled_from([[1], "null", "tab"])
        attributes = draw(odd if draw(rarely) else st.sampled_from([None, {}, {"segment": "new"}]))
        if attributes == "tab":
            record["attributes"] = "TAB"
        elif attributes == "null":
            record["attributes"] = None
        elif attributes is not None:
            record["attributes"] = attributes
        out.append(record)
    return out


def encode(records: list[dict]) -> bytes:
    """NDJSON lines; "TAB" attributes become an object with a tab as whitespace."""
    lines = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records]
    return "\n".join(lines).replace('"TAB"', '{\t"a":1}').encode("utf-8") + b"\n"


@pytest.fixture
def workspace_id(conn: psycopg.Connection) -> int:
    workspace = store.create_workspace(conn, "columns")
    store.replace_stages(
        conn, workspace.workspace_id, [("awareness", None), ("decision", None), ("retention", None)]
    )
    return workspace.workspace_id


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seen=batches(), records=batches())
def test_column_coding_equals_the_per_journey_way(
    conn: psycopg.Connection, workspace_id: int, seen: list[dict], records: list[dict]
) -> None:
    names = bulk.Names()  # names learned from an earlier block: some decode as literals
    bulk._decode_fast(encode(seen), names)
    fast = bulk._decode_fast(encode(records), names)
    assert fast is not None and fast.digits is not None
    journeys = fast.journeys

    columns = store.Coder(conn, workspace_id)
    batch = bulk_columns.code_batch(columns, *fast, PREFIX, [j.journey_id for j in journeys])

    reference = store.Coder(conn, workspace_id)
    coded = [journey_row(reference, j) for j in journeys]
    if batch is None:
        declined_attributes = any(
            (not bytes(j.attributes).startswith(b"{") and bytes(j.attributes))
            or b"\t" in bytes(j.attributes)
            for j in journeys
        )
        assert declined_attributes or any(errors for _, errors in coded)
        return
    assert not any(errors for _, errors in coded)
    rows = [row for row, _ in coded if row is not None]
    totals: dict = {}
    assert batch.text == _lines(rows, PREFIX, totals)
    assert batch.journey_ids == [r.journey_id for r in rows]
    assert batch.rollups == totals
    assert columns.channels == reference.channels


def test_a_batch_with_every_kind_of_journey_is_taken(
    conn: psycopg.Connection, workspace_id: int
) -> None:
    records = [
        {"journey_id": "sorted", "touchpoints": [
            {"channel": "email", "timestamp": "2025-03-01T10:00:00Z", "campaign": "c"},
            {"channel": "search", "timestamp": "2025-03-02T10:00:00Z", "stage": "decision"},
        ], "converted": True, "value": 10.0, "attributes": {"a": 1}},
        {"journey_id": "reversed", "customer_id": "x", "touchpoints": [
            {"channel": "new", "timestamp": "2025-03-05T10:00:00Z", "device": "mobile"},
            {"channel": "email", "timestamp": "2025-03-04T23:59:59Z"},
        ], "converted": True, "converted_at": "2025-03-06T01:00:00+02:00"},
        {"journey_id": "single", "touchpoints": [
            {"channel": "email", "timestamp": "2025-03-04T00:00:00Z", "stage": "retention"},
        ]},
    ]  # fmt: skip
    fast = bulk._decode_fast(encode(records), bulk.Names())
    assert fast is not None and fast.digits is not None
    coder = store.Coder(conn, workspace_id)
    batch = bulk_columns.code_batch(coder, *fast, PREFIX, [r["journey_id"] for r in records])
    assert batch is not None
    lines = batch.text.splitlines()
    assert len(lines) == 3
    email, search, new = (coder.channels[c] for c in ("email", "search", "new"))
    decision, retention = coder.stages["decision"], coder.stages["retention"]
    # The reversed journey is stored in time order; it counts on the UTC day of its
    # conversion time (23:00 UTC on the 5th), the others on their last touch's.
    assert lines[1].split("\t")[3:9] == [
        f"{{{email},{new}}}", "{0,0}", "{2025-03-04T23:59:59Z,2025-03-05T10:00:00Z}",
        "\\N", '{NULL,"mobile"}', "t",
    ]  # fmt: skip
    assert lines[1].split("\t")[10:12] == [
        datetime.fromisoformat("2025-03-06T01:00:00+02:00").isoformat(),
        "2025-03-05",
    ]
    assert batch.rollups == {
        f"2025-03-02\t{{{email},{search}}}\t{{0,{decision}}}": [1, 0, 10.0],
        f"2025-03-05\t{{{email},{new}}}\t{{0,0}}": [1, 0, 0.0],
        f"2025-03-04\t{{{email}}}\t{{{retention}}}": [0, 1, 0.0],
    }


@pytest.mark.parametrize(
    "stamp",
    ["2024-02-29T10:00:00Z", "2023-02-29T10:00:00Z", "2024-04-31T10:00:00Z",
     "2024-01-01T24:00:00Z", "2024-01-01T10:60:00Z", "2024-01-01T10:00:60Z",
     "0000-01-01T10:00:00Z", "2024-00-01T10:00:00Z", "2024-13-01T10:00:00Z",
     "1900-02-29T10:00:00Z", "2000-02-29T10:00:00Z", "2024-01-00T10:00Z"],
)  # fmt: skip
def test_time_keys_accept_exactly_the_real_times(stamp: str) -> None:
    try:
        datetime.fromisoformat(stamp)
        real = True
    except ValueError:
        real = False
    digits = bulk_columns.utc_digits([stamp, stamp])
    assert digits is not None
    assert (bulk_columns._time_keys(digits) is not None) is real


@given(st.lists(st.datetimes(), min_size=2, max_size=20), st.sampled_from(SHAPES))
def test_time_keys_order_as_the_times(times: list[datetime], shape: str) -> None:
    stamps = [
        stamp(shape, (t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond // 1000))
        for t in times
    ]
    digits = bulk_columns.utc_digits(stamps)
    assert digits is not None
    keys = bulk_columns._time_keys(digits)
    assert keys is not None
    parsed = [datetime.fromisoformat(s) for s in stamps]
    assert sorted(range(len(stamps)), key=lambda k: (keys[k], k)) == sorted(
        range(len(stamps)), key=lambda k: (parsed[k], k)
    )


@given(
    st.lists(st.datetimes(), min_size=2, max_size=8),
    st.sampled_from(SHAPES),
    st.lists(st.integers(0, 200), min_size=1),
)
def test_times_cut_at_other_places_are_not_taken(
    times: list[datetime], shape: str, cuts: list[int]
) -> None:
    """Times whose lengths differ are refused even when they add up to whole times
    (the matrix would otherwise line up the characters of the wrong ones)."""
    text = "".join(
        stamp(shape, (t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond // 1000))
        for t in times
    )
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    stamps = [text[a:b] for a, b in itertools.pairwise(bounds)]
    if bulk_columns.utc_digits(stamps) is not None:
        assert stamps_match(stamps)


def test_a_time_split_across_two_is_not_taken() -> None:
    stamps = ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z2024-01-01", "T00:00:00Z"]
    assert bulk_columns.utc_digits(stamps) is None
