"""The fast decoding of bulk lines accepts exactly what the strict structs accept."""

from __future__ import annotations

import re

import pytest

from api.ingest import STAMP, STAMP_SHAPES, stamps_match


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
