"""The fast decoding of bulk lines accepts exactly what the strict structs accept."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.ingest import STAMP, STAMP_SHAPES, block_lines, ndjson_blocks, stamps_match


def test_every_stamp_shape_matches_the_pattern() -> None:
    for shape in STAMP_SHAPES:
        for digit in "0159":
            assert re.match(STAMP, shape.decode().replace("0", digit))


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
