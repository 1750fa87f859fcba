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
  A last line times the same decoding with derivation's columns handed to Python, one
  tuple per event, as our derivation would take them.

So DuckDB's figure is less than a compiled reader would need for the same work::

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
from api.service.ingest import block_lines, ndjson_blocks  # noqa: E402
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
        ):
            per = seconds / n * 1e6
            unit = "tuples" if "rows" in label else "chars of COPY text"
            print(f"round {r}: {label:34s} {seconds:6.2f} s  {per:5.2f} us/event  {size:,} {unit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
