"""What reading events costs a compiled columnar engine, against our Python.

The part of a load before derivation, for each event of bench/events.py's file: read
its line, decode the fields derivation reads, check them, and make the event's COPY
text for the ``events`` table. Both run in this process on one thread, with no
database:

- **ours**: ``fast_row`` per line (msgspec's decoder and the checks in Python), then
  ``copy_lines`` per block, the collector off as in a load;
- **DuckDB** (the ``bench`` dependency group), given less to do: its JSON reader
  takes each line's fields (``json_transform``), its timestamp is cast, its page URL
  split by one regular expression, and one COPY text per event is joined from the
  columns. Ids are not checked for length or control characters, and no traffic source,
  path or device is worked out. Nothing is handed back to Python but the total length.
  Another line times the same decoding with derivation's columns handed to Python, one
  tuple per event, as our derivation would take them.
- **DuckDB with fast_row's checks**: one query that takes a line only where its row
  would be fast_row's (see ``_CHECKED``): every key once in each object read, each
  field of the JSON type fast_row's decoder expects, the ids' lengths, a UTC time,
  the plain page URL, a campaign of strings. Checked against ``fast_row`` on every
  line of the 10^5 file and of the Segment example (equal rows, with the source and
  device worked out in Python per distinct value). msgspec would still have to check
  each line it takes, as DuckDB's reader accepts what JSON does not (trailing commas,
  NaN).

The first DuckDB figures are therefore below what a compiled reader would need for
the same work; the last one is about what it would need::

    python bench/columnar.py --events 1000000
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from api.service import events  # noqa: E402
from api.service.event_lines import fast_row  # noqa: E402
from api.service.ingest import MAX_DEPTH, block_lines, ndjson_blocks  # noqa: E402
from api.store import events as event_store  # noqa: E402
from bench.events import events_file  # noqa: E402

# The fields fast_row decodes, as DuckDB's JSON reader takes them.
FIELDS = (
    '{"type": "VARCHAR", "messageId": "VARCHAR", "anonymousId": "VARCHAR",'
    ' "userId": "VARCHAR", "previousId": "VARCHAR", "timestamp": "VARCHAR",'
    ' "event": "VARCHAR", "name": "VARCHAR", "sentAt": "VARCHAR", "receivedAt": "VARCHAR",'
    ' "properties": {"url": "JSON", "referrer": "JSON", "path": "JSON"},'
    ' "context": {"campaign": "JSON", "device": "JSON", "userAgent": "VARCHAR",'
    ' "page": {"url": "VARCHAR", "referrer": "VARCHAR", "path": "VARCHAR"}}}'
)
# A page URL's scheme and host, path, and the rest (fast_row's plain URL, in RE2).
PLAIN_URL = r"^(https?://[A-Za-z0-9.-]+(?::[0-9]+)?)(/[^?#\x00-\x20\x7f]*)?([?#].*)?$"


def _fields(*names: str) -> str:
    """A json_transform structure taking these fields as JSON text."""
    return "{" + ", ".join(f'"{n}": "JSON"' for n in names) + "}"


# Each field as JSON text: its JSON type is checked before its value is read.
_TOP = _fields(
    "type", "messageId", "timestamp", "anonymousId", "userId", "previousId", "event", "name",
    "sentAt", "receivedAt", "properties", "context",
)  # fmt: skip
_CONTEXT = _fields("campaign", "page", "userAgent", "device")
_PAGE = _fields("url", "referrer", "path")
# The UTC times utc_stamp keeps as they were sent, with the hours, minutes and seconds
# Python reads (the date is checked by the cast).
_UTC_TIME = r"^\d{4}-\d\d-\d\dT([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?Z$"
_KINDS = "('track', 'page', 'screen', 'identify', 'alias', 'group')"

_MACROS = (
    # The JSON type of a field, 'NULL' when absent or null (msgspec reads both as None).
    "CREATE MACRO ty(x) AS coalesce(json_type(x), 'NULL')",
    # A string field's value; None for any other JSON type.
    "CREATE MACRO sv(x) AS CASE WHEN json_type(x) = 'VARCHAR' THEN json_extract_string(x, '$') END",
    "CREATE MACRO text_or_null(x) AS ty(x) IN ('NULL', 'VARCHAR')",
    "CREATE MACRO object_or_null(x) AS ty(x) IN ('NULL', 'OBJECT')",
    "CREATE MACRO keys_once(k) AS k IS NULL OR len(k) = len(list_distinct(k))",
    "CREATE MACRO sized(x, most) AS x IS NULL OR strlen(x) BETWEEN 1 AND most",
    "CREATE MACRO obj(x, shape) AS"
    " CASE WHEN json_type(x) = 'OBJECT' THEN json_transform(x, shape) END",
    "CREATE MACRO obj_keys(x) AS CASE WHEN json_type(x) = 'OBJECT' THEN json_keys(x) END",
)  # fmt: skip

# $1: a line's most bytes; $2: an id's; $3: other text's. Lengths are compared in bytes,
# which a string has at least as many of as characters: a string DuckDB finds too long
# may be fine, and fast_row decides.
_CHECKED = f"""
WITH lines AS (
    SELECT line, row_number() OVER () - 1 AS n FROM {{lines}}
), plain AS MATERIALIZED (
    SELECT n, try(json_transform(line, '{_TOP}')) AS e, try(json_keys(line)) AS k
    FROM lines
    WHERE strlen(line) <= $1 AND starts_with(line, '{{') AND ends_with(line, '}}')
      AND NOT contains(line, '\\') AND NOT contains(line, chr(13))
      AND NOT contains(line, chr(127))
      AND strlen(line) - strlen(replace(replace(line, '{{', ''), '[', '')) <= {MAX_DEPTH}
), parts AS MATERIALIZED (
    SELECT n, e,
        sv(e.type) AS kind,
        obj(e.context, '{_CONTEXT}') AS c, obj_keys(e.context) AS ck,
        obj(e.properties, '{_PAGE}') AS p, obj_keys(e.properties) AS pk
    FROM plain
    WHERE e IS NOT NULL AND keys_once(k)
), inner_parts AS MATERIALIZED (
    SELECT n, e, kind, c, ck,
        CASE WHEN kind = 'page' THEN p END AS p, CASE WHEN kind = 'page' THEN pk END AS pk,
        obj(c.page, '{_PAGE}') AS g, obj_keys(c.page) AS gk, obj_keys(c.device) AS dk,
        CASE WHEN json_type(c.campaign) = 'OBJECT'
            THEN try(json_transform(c.campaign, '"MAP(VARCHAR, JSON)"')) END AS cm
    FROM parts
), fields AS MATERIALIZED (
    SELECT n, e, kind, c, g, cm, ck, pk, gk, dk,
        sv(e.anonymousId) AS anonymous, sv(e.userId) AS user_id,
        sv(e.previousId) AS previous, sv(e.event) AS event, sv(e.name) AS page_name,
        sv(e.messageId) AS message_id, sv(e.timestamp) AS stamp,
        sv(g.url) AS page_url, sv(g.referrer) AS page_referrer, sv(g.path) AS page_path,
        sv(p.url) AS prop_url, sv(p.referrer) AS prop_referrer, sv(p.path) AS prop_path
    FROM inner_parts
), page AS MATERIALIZED (
    SELECT *,
        coalesce(page_url, prop_url) AS url,
        coalesce(page_referrer, prop_referrer) AS referrer,
        regexp_extract(coalesce(page_url, prop_url), '{PLAIN_URL}', ['host', 'path', 'rest'])
            AS u
    FROM fields
)
SELECT n, kind, anonymous, user_id, CASE WHEN kind = 'track' THEN event ELSE page_name END,
    epoch_us(CAST(left(stamp, -1) AS TIMESTAMP)), message_id,
    coalesce(page_path, prop_path, nullif(u.path, '')),
    CAST(c.campaign AS VARCHAR), CASE WHEN url IS NOT NULL THEN u.host || u.rest END, referrer,
    CAST(c.device AS VARCHAR), sv(c.userAgent), CASE WHEN kind = 'alias' THEN previous END,
    stamp
FROM page
WHERE kind IN {_KINDS} AND ty(e.messageId) = 'VARCHAR' AND ty(e.timestamp) = 'VARCHAR'
  AND text_or_null(e.anonymousId) AND text_or_null(e.userId) AND text_or_null(e.previousId)
  AND text_or_null(e.event) AND text_or_null(e.name)
  AND e.sentAt IS NULL AND e.receivedAt IS NULL
  AND object_or_null(e.properties) AND object_or_null(e.context)
  AND keys_once(ck) AND keys_once(pk) AND keys_once(gk) AND keys_once(dk)
  AND text_or_null(c.userAgent) AND object_or_null(c.page) AND object_or_null(c.device)
  AND object_or_null(c.campaign)
  AND (json_type(c.campaign) IS DISTINCT FROM 'OBJECT' OR coalesce(list_bool_and(
        list_transform(map_values(cm), lambda v: ty(v) IN ('NULL', 'VARCHAR'))), cm IS NOT NULL))
  AND text_or_null(g.url) AND text_or_null(g.referrer) AND text_or_null(g.path)
  AND (anonymous IS NOT NULL OR user_id IS NOT NULL)
  AND (kind <> 'alias' OR (previous IS NOT NULL AND user_id IS NOT NULL))
  AND (kind <> 'track' OR event IS NOT NULL)
  AND strlen(message_id) BETWEEN 1 AND $3
  AND sized(anonymous, $2) AND sized(user_id, $2) AND sized(previous, $2)
  AND sized(event, $3) AND sized(page_name, $3)
  AND regexp_full_match(stamp, '{_UTC_TIME}') AND NOT starts_with(stamp, '0000')
  AND try_cast(left(stamp, -1) AS TIMESTAMP) IS NOT NULL
  AND '' NOT IN (coalesce(page_url, '-'), coalesce(page_referrer, '-'), coalesce(page_path, '-'),
                 coalesce(prop_url, '-'), coalesce(prop_referrer, '-'), coalesce(prop_path, '-'))
  AND (url IS NULL OR regexp_full_match(url, '{PLAIN_URL}'))
  AND strlen(coalesce(page_path, prop_path, u.path, '')) <= 2000
ORDER BY n
"""


def ours(path: Path) -> tuple[float, int]:
    """Seconds for fast_row and copy_lines over the file, and the COPY text's length."""
    gc.disable()
    try:
        started = time.perf_counter()
        size = 0
        with path.open("rb") as fh:
            for block in ndjson_blocks(iter(lambda: fh.read(1 << 20), b"")):
                rows = [
                    fast_row(line, events.MAX_EVENT_BYTES, events.MAX_ID, events.MAX_TEXT)
                    for line in block_lines(block)
                ]
                usual = [r for r in rows if r is not None]
                if len(usual) < len(rows):
                    raise RuntimeError("a generated event did not take the fast reading")
                size += len(event_store.copy_lines(1, usual))
        return time.perf_counter() - started, size
    finally:
        gc.enable()


def _lines(path: Path) -> str:
    """The file's lines whole, as one text column (no byte of a JSON line is \\x01)."""
    return (
        f"read_csv('{path}', columns = {{'line': 'VARCHAR'}}, delim = '\x01', quote = '',"
        " escape = '', header = false, auto_detect = false)"
    )


def _decoded(path: Path) -> str:
    """Each line's fields, timestamp and page URL, as both measurements below read them."""
    return f"""
        SELECT line, e, try_cast(e.timestamp AS timestamptz) AS occurred,
            regexp_extract(e.context.page.url, '{PLAIN_URL}', ['host', 'path', 'rest']) AS url
        FROM (SELECT line, json_transform(line, '{FIELDS}') AS e FROM {_lines(path)})
    """


def columnar(path: Path, threads: int) -> tuple[float, int]:
    """Seconds for DuckDB's share (see the module's docstring), and the text's length."""
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    text = r"""
        concat_ws(chr(9), '1', e.messageId, e.type, coalesce(e.anonymousId, '\N'),
            coalesce(e.userId, '\N'), coalesce(e.previousId, '\N'), coalesce(e.event, '\N'),
            strftime(occurred, '%Y-%m-%d %H:%M:%S+00'), coalesce(url.path, '\N'),
            coalesce(e.context.userAgent, '\N'),
            replace(replace(line, '\', '\\'), chr(9), '\t'))
    """
    started = time.perf_counter()
    (size,) = con.execute(f"SELECT sum(length({text}) + 1) FROM ({_decoded(path)})").fetchone()
    seconds = time.perf_counter() - started
    con.close()
    return seconds, int(size)


def columnar_rows(path: Path) -> tuple[float, int]:
    """Seconds for DuckDB (one thread) to decode the same fields and hand derivation's
    columns to Python as one tuple per event, and the number of tuples."""
    con = duckdb.connect()
    con.execute("SET threads = 1")
    started = time.perf_counter()
    rows = con.execute(
        f"""
        SELECT e.type, e.anonymousId, e.userId, e.event, epoch_us(occurred), e.messageId,
            url.path, url.host, url.rest, e.context.page.referrer, e.context.userAgent
        FROM ({_decoded(path)})
        """
    ).fetchall()
    seconds = time.perf_counter() - started
    con.close()
    return seconds, len(rows)


def checked(path: Path) -> tuple[float, int]:
    """Seconds for DuckDB (one thread) to take the file's lines as fast_row would take
    them (see _CHECKED), and how many it took."""
    con = duckdb.connect(config={"threads": 1})
    for macro in _MACROS:
        con.execute(macro)
    started = time.perf_counter()
    query = _CHECKED.replace("{lines}", _lines(path))
    taken = con.execute(
        f"SELECT count(*) FROM ({query})", [events.MAX_EVENT_BYTES, events.MAX_ID, events.MAX_TEXT]
    ).fetchone()
    seconds = time.perf_counter() - started
    con.close()
    return seconds, int(taken[0]) if taken else 0


def columnar_gc_off(path: Path) -> tuple[float, int]:
    """columnar_rows with the collector off, as in a load."""
    gc.disable()
    try:
        return columnar_rows(path)
    finally:
        gc.enable()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path = events_file(args.events, args.seed)
    n = sum(1 for _ in path.open("rb"))
    print(f"data: {n:,} events, {path.stat().st_size / 1e6:.0f} MB, DuckDB {duckdb.__version__}")
    for r in range(1, args.rounds + 1):  # in turns, as the machine's speed wanders
        for label, (seconds, size) in (
            ("ours (fast_row, copy_lines)", ours(path)),
            ("DuckDB, 1 thread", columnar(path, 1)),
            ("DuckDB, 2 threads", columnar(path, 2)),
            ("DuckDB, 1 thread, rows to Python", columnar_gc_off(path)),
            ("DuckDB, 1 thread, fast_row's checks", checked(path)),
        ):
            per = seconds / n * 1e6
            unit = "tuples" if "rows" in label else "lines taken" if "checks" in label else "chars"
            print(f"round {r}: {label:34s} {seconds:6.2f} s  {per:5.2f} us/event  {size:,} {unit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
