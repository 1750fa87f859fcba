"""The fast decoding of bulk lines accepts exactly what the strict structs accept, and
decodes learned names exactly as plain strings."""

from __future__ import annotations

import itertools
import json
import re

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.service.bulk import Names, _decode_fast, _fast_decoder
from api.service.ingest import STAMP, STAMP_SHAPES, block_lines, ndjson_blocks, stamps_match


def test_the_shape_check_agrees_with_the_pattern() -> None:
    """Shapes are the pattern with digits blanked; the offsets the pattern refuses
    (hours over 15, minutes over 59) are found by the extra search."""
    for shape in STAMP_SHAPES:
        for digit in "0159":
            stamp = shape.decode().replace("0", digit)
            assert bool(re.match(STAMP, stamp)) == stamps_match([stamp]), stamp
    for offset in ("+15:59", "-1559", "+16:00", "-23", "+11:60", "-0099"):
        stamp = f"2024-03-01T10:00:00{offset}"
        assert bool(re.match(STAMP, stamp)) == stamps_match([stamp]), stamp
    assert stamps_match(["2024-03-01T10:00:00+15:59"])
    assert not stamps_match(["2024-03-01T10:00:00Z", "2024-03-01T10:00:00+16:00"])


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-03-01T10:00:00Z",
        "2024-03-01 10:00+01",
        "2024-03-01T10:00:00.123456-05:30",
        "2024-03-01T10:00:00.5+0530",
        "2024-03-01T10:00:00",
        "2024-03-01T10:00:00z",
        "2024-03-01T10:00:00.1234567Z",
        "2024-03-01",
        "2024-03-01T10:00:00Z ",
        "",
    ],
)
def test_stamps_match_agrees_with_the_pattern(stamp: str) -> None:
    expected = re.fullmatch(STAMP.rstrip("$").lstrip("^"), stamp) is not None
    assert stamps_match([stamp]) is expected
    assert stamps_match(["2024-03-01T10:00:00Z", stamp, "2024-03-01T10:00:00Z"]) is expected


def test_stamps_match_leaves_unicode_digits_to_the_strict_path() -> None:
    assert not stamps_match(["\uff12024-03-01T10:00:00Z"])


@given(
    lines=st.lists(st.sampled_from([b'{"a":1}', b"", b"  ", b'{"b":[1,2]}\r', b"x" * 50])),
    cuts=st.lists(st.integers(0, 400)),
    size=st.integers(1, 120),
    end=st.sampled_from([b"", b"\n", b"\n\n"]),
)
def test_blocks_keep_every_line_in_place(
    lines: list[bytes], cuts: list[int], size: int, end: bytes
) -> None:
    """However the stream is chunked and blocked, the blocks' lines are the stream's
    lines in order (record indices hold), up to blank lines at the very end."""
    stream = b"\n".join(lines) + end
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    got = [line for block in ndjson_blocks(chunks, size) for line in block_lines(block)]
    expected = stream.split(b"\n")
    while expected and not expected[-1].strip():
        expected.pop()
    while got and not got[-1].strip():
        got.pop()
    assert got == expected


# Touch names as a block may hold them: valid ones, and ones the plain struct rejects
# (empty, too long, not a string), which a learned literal must reject too.
touch_names = st.sampled_from(["email", "search", "más", "brand", "", "x" * 201, 7, None])


@st.composite
def touch_blocks(draw: st.DrawFn) -> bytes:
    lines = []
    for k in range(draw(st.integers(1, 6))):
        touches = []
        for _ in range(draw(st.integers(0, 3))):
            touch = {"timestamp": "2025-03-04T10:00:00Z"}
            for field in Names.FIELDS:
                if draw(st.booleans()):
                    touch[field] = draw(touch_names)
            touches.append(touch)
        record = {"journey_id": f"j{k}", "touchpoints": touches}
        lines.append(json.dumps(record, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8")


def plain(block: bytes) -> bytes | None:
    """The block as the plain struct decodes it (re-encoded), or None when it rejects it."""
    try:
        journeys = _fast_decoder.decode(b"[" + block.replace(b"\n", b",")[:-1] + b"]")
        return msgspec.json.encode(journeys)
    except msgspec.MsgspecError:
        return None


@given(blocks=st.lists(touch_blocks(), min_size=1, max_size=6))
def test_learned_names_decode_as_plain_strings_do(blocks: list[bytes]) -> None:
    names = Names()
    for block in blocks:
        decoded = _decode_fast(block, names)
        got = msgspec.json.encode(decoded.journeys) if decoded is not None else None
        assert got == plain(block)


def journey_block(*touches: dict) -> bytes:
    record = {"journey_id": "j", "touchpoints": [
        {"timestamp": "2025-03-04T10:00:00Z", **t} for t in touches
    ]}  # fmt: skip
    return json.dumps(record).encode() + b"\n"


def test_names_are_learned_once_and_then_shared() -> None:
    names = Names()
    first = _decode_fast(journey_block({"channel": "email"}, {"channel": "search"}), names)
    assert first is not None and names.learning
    again = journey_block({"channel": "email", "campaign": "brand"}, {"channel": "email"})
    decoded = _decode_fast(again, names)
    assert decoded is not None and names.learning  # "brand" was new
    decoded = _decode_fast(again, names)
    assert decoded is not None and not names.learning
    a, b = decoded.touches
    assert a.channel == "email" and a.channel is b.channel  # one string object per name
    assert names.names == {
        "channel": {"email", "search"}, "stage": set(), "campaign": {"brand"}, "device": set()
    }  # fmt: skip


def test_a_field_whose_names_keep_coming_stays_plain() -> None:
    names = Names()
    for k in range(Names.MAX_CHANGES + 1):
        _decode_fast(journey_block({"channel": "email", "campaign": f"c{k}"}), names)
        assert names.learning
    decoded = _decode_fast(journey_block({"channel": "email", "campaign": "new"}), names)
    assert decoded is not None and not names.learning  # campaigns are plain strings now
    assert decoded.touches[0].campaign == "new"
    decoded = _decode_fast(journey_block({"channel": "other", "campaign": "newer"}), names)
    assert decoded is not None and names.learning  # channels are still literals


def test_a_field_with_many_names_stays_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Names, "MAX_NAMES", 3)
    names = Names()
    many = [{"channel": "email", "device": f"d{k}"} for k in range(Names.MAX_NAMES + 1)]
    _decode_fast(journey_block(*many[:2]), names)
    _decode_fast(journey_block(*many), names)
    decoded = _decode_fast(journey_block({"channel": "email", "device": "another"}), names)
    assert decoded is not None and not names.learning
