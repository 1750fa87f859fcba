"""Whole bulk batches coded and formatted column by column.

Most bulk batches are alike: every touch time has one UTC shape (so text order is time
order and a journey's day is the first ten characters of a time), no journey has a
value or conversion time to check against its flag, every stage is known and every id
is new. Such a batch is coded here without per-journey Python beyond a few list
comprehensions: fields are gathered into flat lists, each distinct name is looked up
once, and the COPY text of the array columns is assembled by one join per batch
(numpy places the tokens). The result is exactly the text and rollup totals that
:func:`api.service.ingest.journey_row` and the store's per-journey formatting give (a test holds
the two to it). A batch this cannot take returns None and goes the per-journey way,
which reports every error.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from itertools import compress
from typing import Any, NamedTuple

import numpy as np

from .. import store
from ..store import copytext as ct
from .ingest import (
    STAMP_SHAPES,
    JourneyLine,
    TouchLine,
    journey_rules,
    local_day,
    stamp_shape,
    too_deep,
)

NULL = ct.NULL


class Batch(NamedTuple):
    """One batch's COPY lines (each starting with the workspace prefix), its journey
    ids in order, and its rollup totals: "day\\tchannels\\tstages" -> [conversions,
    nulls, value]."""

    text: str
    journey_ids: list[str]
    rollups: dict[str, list[Any]]


def utc_digits(stamps: list[str]) -> np.ndarray | None:
    """The touch times as a matrix of characters (one row each) when all have one shape
    that ends in Z (then text order is time order); None otherwise. All must have the
    first one's length; the shape is then checked on the whole matrix at once:
    separators where the first time has them, ASCII digits everywhere else."""
    width = len(stamps[0])
    shape = stamp_shape(stamps[0])
    if shape not in STAMP_SHAPES or not shape.endswith(b"Z"):
        return None
    if len(set(map(len, stamps))) > 1:
        return None
    try:
        text = "".join(stamps).encode("ascii")
    except UnicodeEncodeError:
        return None
    digits = np.frombuffer(text, np.uint8).reshape(-1, width)
    template = np.frombuffer(shape, np.uint8)
    is_digit = template == ord("0")
    if not (digits[:, ~is_digit] == template[~is_digit]).all():
        return None
    if not (digits[:, is_digit] - ord("0") <= 9).all():  # unsigned: below "0" wraps
        return None
    return digits


def code_batch(
    coder: store.Coder,
    journeys: Sequence[JourneyLine],
    touches: list[TouchLine],
    stamps: list[str],
    digits: np.ndarray,
    prefix: str,
    ids: list[str],
) -> Batch | None:
    """Code and format ``journeys`` (decoded by the pattern-free structs from a batch
    with no backslash, so no text needs escaping), or None when some journey needs the
    per-journey way. ``touches`` are all their touches in order, ``stamps`` the touch
    times, ``digits`` those times from :func:`utc_digits` and ``ids`` the journeys'
    ids."""
    values = list(map(_VALUE, journeys))
    ats = list(map(_CONVERTED_AT, journeys))
    if (any(values) or ats.count(None) < len(ats)) and any(
        journey_rules(j) for j in journeys if j.converted_at is not None or j.value
    ):
        return None
    raw = list(map(bytes, map(_ATTRIBUTES, journeys)))
    joined = b"\x00".join(raw)
    objects = joined.startswith(b"{") + joined.count(b"\x00{") + raw.count(b"")
    if objects < len(raw) or b"\t" in joined or b"\r" in joined or too_deep(joined):
        return None  # not an object, whitespace that COPY text must escape, too deep
    try:
        attributes = joined.decode("utf-8").split("\x00")
    except UnicodeDecodeError:
        return None
    if b"" in raw:
        attributes = [a or "{}" for a in attributes]
    keys = _time_keys(digits)
    if keys is None:
        return None
    layout = _Layout(list(map(len, map(_TOUCHPOINTS, journeys))))
    order = layout.time_order(keys)
    if order is not None:
        touches = [touches[k] for k in order]
        stamps = [stamps[k] for k in order]
    stage_text = {None: "0"} | {name: str(code) for name, code in coder.stages.items()}
    try:
        stages = list(map(stage_text.__getitem__, map(_STAGE, touches)))
    except KeyError:
        return None
    channel_text = {name: str(code) for name, code in coder.channels.items()}
    try:
        channels = list(map(channel_text.__getitem__, map(_CHANNEL, touches)))
    except KeyError:  # new channels: coded in order of touch
        for name in dict.fromkeys(map(_CHANNEL, touches)):
            coder.channel_code(name)
        channel_text = {name: str(code) for name, code in coder.channels.items()}
        channels = list(map(channel_text.__getitem__, map(_CHANNEL, touches)))
    paths = layout.paths(channels, stages)

    last = list(map(stamps.__getitem__, layout.last))
    days = _days(last, coder.zone)
    flags = list(map(_CONVERTED, journeys))
    converted = list(compress(range(len(flags)), flags))
    converted_at = [NULL] * len(journeys)
    for k in converted:
        at = ats[k]
        if at is None:  # converted at its last touch
            converted_at[k] = _parse(last[k]).isoformat()
        else:
            converted_at[k] = at.isoformat()
            days[k] = local_day(at, coder.zone).isoformat()
    customers = list(map(_CUSTOMER_ID, journeys))
    if None in customers:
        customers = [c or NULL for c in customers]
    text = layout.lines(
        [prefix, ids, "\t", customers, "\t", paths, "\t"],
        stamps,
        [_elements(touches, "campaign"), _elements(touches, "device")],
        [["t" if f else "f" for f in flags], "\t", list(map(repr, map(float, values))), "\t",
         converted_at, "\t", days, "\t", attributes, "\n"],
    )  # fmt: skip
    rollup_keys = [f"{d}\t{p}" for d, p in zip(days, paths, strict=True)]
    return Batch(text, ids, _rollups(rollup_keys, converted, values))


_parse = datetime.fromisoformat


def _days(last: list[str], zone: tzinfo) -> list[str]:
    """The days of journeys last touched at ``last`` (times of one UTC shape): their
    first ten characters in UTC, else each time's date in the workspace's zone."""
    if zone is UTC or getattr(zone, "key", None) == "UTC":
        return [s[:10] for s in last]
    return [local_day(_parse(s), zone).isoformat() for s in last]


# Fields read with map() over C getters: no Python frame per journey or touch.
_VALUE, _CONVERTED, _CONVERTED_AT = map(operator.attrgetter, ("value", "converted", "converted_at"))
_CUSTOMER_ID = operator.attrgetter("customer_id")
_ATTRIBUTES, _TOUCHPOINTS = map(operator.attrgetter, ("attributes", "touchpoints"))
_CHANNEL, _STAGE = map(operator.attrgetter, ("channel", "stage"))
_ELEMENTS: dict[str | None, str] = {None: "NULL"}  # campaign and device names repeat


def _elements(touches: list[TouchLine], field: str) -> list[str]:
    """One optional text field of every touch as text[] elements ("NULL" for none,
    which a name cannot be: names come quoted)."""
    get = operator.attrgetter(field)
    try:
        return list(map(_ELEMENTS.__getitem__, map(get, touches)))
    except KeyError:
        if len(_ELEMENTS) > 100_000:
            _ELEMENTS.clear()
            _ELEMENTS[None] = "NULL"
        for v in set(map(get, touches)):
            _ELEMENTS[v] = ct.element(v)
        return [_ELEMENTS.get(v) or ct.element(v) for v in map(get, touches)]


_MONTH_DAYS = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _time_keys(digits: np.ndarray) -> np.ndarray | None:
    """Integers in the order of the touch times (from :func:`utc_digits`), or None when
    some time is no date or time of day (2024-02-30, 25:00): the fields are read from
    the digits of all times at once and checked as datetime.fromisoformat checks them."""
    width = digits.shape[1]
    d = digits.astype(np.int64) - 48

    def number(start: int, end: int) -> np.ndarray:
        out = d[:, start]
        for k in range(start + 1, end):
            out = out * 10 + d[:, k]
        return out

    year, month, day = number(0, 4), number(5, 7), number(8, 10)
    hour, minute = number(11, 13), number(14, 16)
    second = number(17, 19) if width > 17 else np.zeros_like(year)
    fraction = number(20, width - 1) * 10 ** (27 - width) if width > 21 else 0  # µs
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _MONTH_DAYS[np.clip(month, 0, 12)] - ((month == 2) & ~leap)
    valid = (
        (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
        & (hour <= 23) & (minute <= 59) & (second <= 59)
    )  # fmt: skip
    if not valid.all():
        return None
    days = (year * 12 + month) * 31 + day
    keys: np.ndarray = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1_000_000 + fraction
    return keys


def _rollups(keys: list[str], converted: list[int], values: list[float]) -> dict[str, list[Any]]:
    """Totals per key: [conversions, nulls, value]; ``converted`` the positions of the
    converting journeys (the others add no value)."""
    totals: dict[str, list[Any]] = {k: [0, n, 0.0] for k, n in Counter(keys).items()}
    for k in converted:
        total = totals[keys[k]]
        total[0] += 1
        total[1] -= 1
        total[2] += values[k]
    return totals


Column = str | list[str]


class _Layout:
    """Where each journey's touches sit in the flat per-touch lists, and where each
    value goes in the batch's COPY text."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = np.array(counts, dtype=np.int64)
        ends = np.cumsum(self.counts)
        self.starts = ends - self.counts
        self.last: list[int] = (ends - 1).tolist()
        self.journey = np.repeat(np.arange(len(counts)), self.counts)
        self.local = np.arange(len(self.journey)) - self.starts[self.journey]
        self.is_last = self.local == self.counts[self.journey] - 1

    def time_order(self, keys: np.ndarray) -> list[int] | None:
        """Touch positions in time order within each journey (ties keep their order);
        None when they already are."""
        if not ((keys[1:] < keys[:-1]) & (self.local[1:] > 0)).any():
            return None
        return np.lexsort((keys, self.journey)).tolist()  # type: ignore[no-any-return]

    def _separators(self, last: str) -> np.ndarray:
        """Per touch, "," or ``last`` after a journey's last touch."""
        out = np.full(len(self.journey), ",", dtype=object)
        out[self.is_last] = last
        return out

    def paths(self, channels: list[str], stages: list[str]) -> list[str]:
        """Per journey, ``{channel codes}\\t{stage codes}`` as COPY text (the rollup key
        and two columns): both columns' codes and separators are placed in one token
        array, joined once and split at the journeys."""
        per_journey = self.counts[self.journey]
        at = 4 * self.starts[self.journey] + 2 * self.local
        tokens = np.empty(4 * len(self.journey), dtype=object)
        for c, (column, end) in enumerate([(channels, "}\t{"), (stages, "}\x00{")]):
            put = at + 2 * c * per_journey
            tokens[put] = np.array(column, dtype=object)
            tokens[put + 1] = self._separators(end)
        return ("{" + "".join(tokens.tolist())).split("\x00")[:-1]

    def lines(
        self, head: list[Column], stamps: list[str], optional: list[list[str]],
        tail: list[Column],
    ) -> str:  # fmt: skip
        """The batch's COPY lines: per journey the ``head`` columns (a str is the same
        for every journey), the touch times' literal, one text[] literal per
        ``optional`` per-touch column of elements (NULL for a journey with only "NULL"
        elements in it, as the per-journey way stores it), then the ``tail`` columns.
        Every token goes to its place in one array, joined once."""
        n_touch = len(self.journey)
        arrays: list[tuple[list[str], np.ndarray | None]] = [(stamps, None)]
        for elements in optional:
            absent = elements.count("NULL")
            some = None
            if absent == n_touch:
                some = np.zeros(len(self.counts), bool)
            elif absent:
                mask = np.fromiter([e != "NULL" for e in elements], bool, n_touch)
                some = np.add.reduceat(mask, self.starts) > 0
            arrays.append((elements, some))
        width = np.full(len(self.counts), len(head) + len(tail), dtype=np.int64)
        for _, some in arrays:
            width += 1 if some is not None and not some.any() else 1 + 2 * self.counts
        ends = np.cumsum(width)
        tokens = np.empty(int(ends[-1]), dtype=object)
        cursor = ends - width
        for column in head:
            tokens[cursor] = column if isinstance(column, str) else np.array(column, object)
            cursor += 1
        separators = self._separators("}\t")
        for values, some in arrays:
            if some is not None and not some.any():
                tokens[cursor] = NULL + "\t"
                cursor += 1
                continue
            touch_at = cursor[self.journey] + 1 + 2 * self.local
            tokens[touch_at] = np.array(values, dtype=object)
            if some is None:
                tokens[cursor] = "{"
                tokens[touch_at + 1] = separators
            else:  # the journeys without a value: NULL, then empty tokens
                tokens[cursor] = np.where(some, "{", NULL + "\t").astype(object)
                hidden = ~some[self.journey]
                tokens[touch_at[hidden]] = ""
                shown = separators.copy()
                shown[hidden] = ""
                tokens[touch_at + 1] = shown
            cursor += 1 + 2 * self.counts
        for column in tail:
            tokens[cursor] = column if isinstance(column, str) else np.array(column, object)
            cursor += 1
        return "".join(tokens.tolist())
