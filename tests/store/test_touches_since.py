"""touches_since, the lookback trimming every raw-journey read uses, against a
per-touch reference: the touches at or after the window's start, in order; the whole
array without a window; null when no touch is left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BASE = datetime(2024, 3, 1, tzinfo=UTC)
US = timedelta(microseconds=1)

QUERY = "SELECT touches_since(%s::smallint[], %s::timestamptz[], %s::timestamptz)"


def trimmed(conn: psycopg.Connection, items: list[int], times: list[datetime], since):  # type: ignore[no-untyped-def]
    row = conn.execute(QUERY, [items, times, since]).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        (None, [1, 2, 3, 4]),
        (BASE - US, [1, 2, 3, 4]),
        (BASE, [1, 2, 3, 4]),  # a touch at the window's start is inside
        (BASE + US, [2, 3, 4]),
        (BASE + timedelta(hours=1), [2, 3, 4]),  # both touches of the tie
        (BASE + timedelta(hours=1) + US, [4]),
        (BASE + timedelta(days=2), [4]),
        (BASE + timedelta(days=2) + US, None),
    ],
)
def test_hand_worked_windows(conn: psycopg.Connection, since, expected) -> None:  # type: ignore[no-untyped-def]
    hour = timedelta(hours=1)
    times = [BASE, BASE + hour, BASE + hour, BASE + timedelta(days=2)]
    assert trimmed(conn, [1, 2, 3, 4], times, since) == expected


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    offsets=st.lists(st.integers(0, 50), min_size=1, max_size=12),
    cut=st.integers(-2, 52),
)
def test_trimming_equals_the_per_touch_rule(
    conn: psycopg.Connection, offsets: list[int], cut: int
) -> None:
    times = [BASE + k * US for k in sorted(offsets)]  # stored in time order; ties allowed
    items = list(range(1, len(times) + 1))
    since = BASE + cut * US
    kept = [item for item, t in zip(items, times, strict=True) if t >= since]
    assert trimmed(conn, items, times, since) == (kept or None)
