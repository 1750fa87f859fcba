"""Raw events into derived journeys, against a raw COPY of the same events.

Generates seeded synthetic Segment-style events as NDJSON (people with sessions from
several sources, some orders, some identified; cached in bench/out/), serves the API
with gunicorn on 127.0.0.1 against a fresh database and streams the file to ``POST
/v1/events`` (validation, storage, identity, sessions, journeys, rollups, commit),
then loads it again into a second workspace through the code of ``pathcredit import
--format segment`` in this process. In the same run it COPYs the same events, one JSON
document per line, into a table keyed by messageId: the practical limit of getting
them into the same PostgreSQL. It also times PostgreSQL's own share of a load: the
same events, checked and formatted beforehand, COPYed into the events table of a fresh
workspace (its key and the two id indexes a person's events are read by), with nothing
derived. Each timed load starts after a CHECKPOINT. Prints events/s and the ratios,
then the time one late event of a known person takes in the workspace just loaded
against one of 1,000 events, and the time new rules take to derive the workspace's
journeys again, in the request and as the background job::

    python bench/events.py --events 1000000
    python bench/events.py --events 10000000 --hold-events 10000000

``--hold-events N`` sets PATHCREDIT_HELD_EVENTS for the server and the import (both
hold the default, 2,000,000, without it).

Uses DATABASE_URL when set (its role needs CREATEDB), else the embedded server in
.data/pgbench. Every database it creates is dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg.conninfo import conninfo_to_dict  # noqa: E402

from api import store  # noqa: E402
from api.cli import embedded  # noqa: E402
from api.service import events, rederive  # noqa: E402
from api.service.event_lines import fast_row  # noqa: E402
from api.service.ingest import block_lines, ndjson_blocks  # noqa: E402
from api.store import events as event_store  # noqa: E402
from api.store.sqlfiles import query  # noqa: E402
from bench.ingest import free_port, start_server, stop_server, with_database  # noqa: E402

OUT = ROOT / "bench" / "out"
SOURCES = [
    "", "?utm_source=google&utm_medium=cpc&utm_campaign=brand", "?gclid=x",
    "?utm_source=newsletter&utm_medium=email&utm_campaign=weekly",
    "?utm_source=facebook&utm_medium=paid_social", "?fbclid=y",
]  # fmt: skip
REFERRERS = [
    None,
    None,
    "https://www.google.com/",
    "https://l.facebook.com/",
    "https://blog.example/",
]
PAGES = ["/", "/products/{}", "/products/{}", "/cart", "/pricing"]
PRODUCTS = 5_000  # product pages, so that page URLs do not all repeat
SMALL = 1_000  # events of the small workspace a late event is also timed in


def stamp(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def events_file(n: int, seed: int) -> Path:
    """NDJSON of about ``n`` events, generated once per (n, seed)."""
    target = OUT / f"events-v2-{n}-{seed}.ndjson"
    if target.exists():
        return target
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    written, person = 0, 0
    with target.open("w") as out:
        while written < n:
            person += 1
            anon, user = f"anon-{person}", f"user-{person}" if rng.random() < 0.3 else None
            t = 1_709_251_200 + rng.randrange(0, 60 * 86_400)
            for session in range(rng.randint(1, 4)):
                t += rng.randrange(3_600, 5 * 86_400) if session else 0
                source = rng.choice(SOURCES)
                referrer = None if source else rng.choice(REFERRERS)
                for k in range(rng.randint(1, 5)):
                    t += rng.randrange(10, 600)
                    page_path = rng.choice(PAGES).format(rng.randrange(PRODUCTS))
                    page: dict[str, Any] = {"url": "https://shop.example" + page_path}
                    if k == 0:
                        page["url"] += source
                        if referrer:
                            page["referrer"] = referrer
                    ev: dict[str, Any] = {
                        "type": "page", "messageId": f"m{written}", "anonymousId": anon,
                        "timestamp": stamp(t),
                        "context": {"page": page, "userAgent": "Mozilla/5.0 (Windows NT 10.0)"},
                    }  # fmt: skip
                    out.write(json.dumps(ev) + "\n")
                    written += 1
            if rng.random() < 0.15:
                t += 60
                ev = {
                    "type": "track",
                    "event": "Order Completed",
                    "messageId": f"m{written}",
                    "anonymousId": anon,
                    "timestamp": stamp(t),
                    "properties": {"revenue": rng.randint(10, 200), "order_id": f"o{written}"},
                }
                if user:
                    ev["userId"] = user
                out.write(json.dumps(ev) + "\n")
                written += 1
    return target


TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (pid and name left out)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _cpu(pids: list[int]) -> float:
    """CPU seconds (user and system) these processes have used so far."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = _stat(pid)
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every process this machine shows."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                out.append((int(entry.name), int(_stat(int(entry.name))[1]), line))
    return out


def server_cpu(url: str) -> float | None:
    """CPU seconds used so far by the server processes serving ``url``'s database (its
    connections, not autovacuum nor the server's own background work), when the server
    runs on this machine; None when no server process is seen."""
    name = conninfo_to_dict(url)["dbname"]
    server = [(pid, line) for pid, _, line in _processes() if line.startswith("postgres: ")]
    if not server:
        return None
    return _cpu([pid for pid, line in server if f" {name} " in line and "autovacuum" not in line])


def tree_cpu(root: int) -> float:
    """CPU seconds used so far by a process and its descendants still running."""
    children: dict[int, list[int]] = {}
    for pid, parent, _ in _processes():
        children.setdefault(parent, []).append(pid)
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return _cpu(pids)


Reading = tuple[float, float | None]


def cpu_now(url: str, root: int | None = None) -> Reading:
    """CPU seconds used so far by Python (this process, or the process tree ``root``)
    and by the server for ``url``'s database (see server_cpu)."""
    python = tree_cpu(root) if root is not None else time.process_time()
    return python, server_cpu(url)


def cpu_since(before: Reading, url: str, root: int | None = None) -> Reading:
    """CPU seconds used since ``before``, read while the processes measured still run
    (a connection's server process ends with it)."""
    python, server = cpu_now(url, root)
    return python - before[0], None if server is None or before[1] is None else server - before[1]


def post(port: int, key: str, path: Path) -> tuple[float, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=7200, blocksize=1 << 20)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson",
               "Content-Length": str(path.stat().st_size)}  # fmt: skip
    started = time.perf_counter()
    with path.open("rb") as body:
        conn.request("POST", "/v1/events", body=body, headers=headers)
        response = conn.getresponse()
        payload = json.loads(response.read())
    if response.status != 200:
        raise RuntimeError(f"upload failed: {response.status} {payload}")
    return time.perf_counter() - started, payload


def settle(url: str) -> None:
    """Write out what earlier steps left to write (a CHECKPOINT, when the role may), so
    that a timed step does not pay for them."""
    with (
        psycopg.connect(url, autocommit=True) as conn,
        contextlib.suppress(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("CHECKPOINT")


def raw_copy(url: str, path: Path) -> tuple[float, float | None]:
    """The file's events, one jsonb document each, COPYed into a table keyed by messageId:
    seconds, and the server's CPU seconds."""
    rows = []
    with path.open("rb") as fh:
        for line in fh:
            doc = json.loads(line)
            text = line.decode().rstrip("\n").replace("\\", "\\\\")
            rows.append(f"{doc['messageId']}\t{text}\n")
    data = "".join(rows)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE raw_events (message_id text PRIMARY KEY, body jsonb NOT NULL)")
        conn.commit()
        settle(url)
        before = cpu_now(url)
        started = time.perf_counter()
        with conn.cursor().copy("COPY raw_events FROM STDIN") as copy:
            copy.write(data)
        conn.commit()
        return time.perf_counter() - started, cpu_since(before, url)[1]


def events_copy(url: str, path: Path) -> tuple[float, float | None]:
    """Seconds PostgreSQL takes to COPY the file's events into the events table, their
    COPY text made beforehand (the events' share of a load, without Python's), and the
    server's CPU seconds."""
    with psycopg.connect(url) as conn:
        workspace_id = store.create_workspace(conn, "events-copy").workspace_id
        conn.commit()
        texts = []
        with path.open("rb") as fh:
            chunks = iter(lambda: fh.read(1 << 20), b"")
            for block in ndjson_blocks(chunks):
                rows = [fast_row(line, events.MAX_EVENT_BYTES, events.MAX_ID, events.MAX_TEXT)
                        for line in block_lines(block)]  # fmt: skip
                usual = [r for r in rows if r is not None]
                if len(usual) < len(rows):
                    raise RuntimeError("a generated event did not take the fast reading")
                texts.append(event_store.copy_lines(workspace_id, usual))
        settle(url)
        before = cpu_now(url)
        started = time.perf_counter()
        with conn.cursor().copy(query("copy_events")) as copy:
            for text in texts:
                copy.write(text)
        conn.commit()
        return time.perf_counter() - started, cpu_since(before, url)[1]


def import_file(url: str, workspace_id: int, path: Path, held: int = events.HELD_EVENTS) -> float:
    """Seconds to load a file through the code of ``pathcredit import``."""
    return timed_import(url, workspace_id, path, held)[0]


def timed_import(url: str, workspace_id: int, path: Path, held: int) -> tuple[float, Reading]:
    """import_file's seconds, and the CPU seconds of this process and of the server."""
    db = store.Database(url)
    try:
        before = cpu_now(url)
        started = time.perf_counter()
        with path.open("rb") as fh:
            chunks = iter(lambda: fh.read(1 << 20), b"")
            events.import_stream(db, workspace_id, chunks, "segment", 100, held)
        return time.perf_counter() - started, cpu_since(before, url)
    finally:
        db.close()


def late_event(url: str, workspace_id: int, tries: int = 7) -> float:
    """Median seconds to write one late page event of person 1 (an hour before their
    first event), each a new messageId, through the same code."""
    db = store.Database(url)
    times = []
    try:
        for k in range(tries):
            url = "https://shop.example/?utm_source=late&utm_medium=cpc"
            ev = {"type": "page", "messageId": f"late-{k}", "anonymousId": "anon-1",
                  "timestamp": stamp(1_709_251_200 - 3_600 - k),
                  "context": {"page": {"url": url}}}  # fmt: skip
            line = json.dumps(ev).encode() + b"\n"
            started = time.perf_counter()
            events.import_stream(db, workspace_id, iter([line]), "segment", 100)
            times.append(time.perf_counter() - started)
    finally:
        db.close()
    return sorted(times)[len(times) // 2]


def rederive_times(url: str, workspace_id: int) -> tuple[float, float]:
    """Seconds to derive a workspace's journeys again after a change of rules: in the
    request (one transaction), and as the background job does it (steps of its own)."""
    db = store.Database(url)
    try:
        started = time.perf_counter()
        rederive.change_rules(db, workspace_id, {"session_timeout_minutes": 20}, 10**12)
        inline = time.perf_counter() - started
        started = time.perf_counter()
        found = rederive.change_rules(db, workspace_id, {"session_timeout_minutes": 30}, 0)
        rederive.execute(db, workspace_id, str(found["rederivation"]["rederivation_id"]))
        return inline, time.perf_counter() - started
    finally:
        db.close()


def print_cpu(
    http: Reading, cli: Reading, copy_seconds: float, copy: float | None, events_only: float | None
) -> None:
    """CPU seconds of each load, and the least time two cores allow for it."""
    if copy is None or events_only is None or http[1] is None or cli[1] is None:
        print("CPU: the server is not on this machine, not measured")
        return
    print(f"CPU s, raw COPY: server {copy:.2f}; the events' COPY alone: server {events_only:.2f}")
    cores = os.cpu_count() or 1
    for label, (python, server) in (("endpoint", http), ("import", cli)):
        # Busy cores for the whole load at best: the sum over the cores, and no less
        # than the server's share alone (one backend does a write's SQL).
        least = max((python + server) / cores, server)
        print(f"CPU s, {label}: Python {python:.2f}, server {server:.2f}; least time on "
              f"{cores} cores {least:.2f} s, ratio at most {copy_seconds / least:.2f}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--hold-events", type=int, help="PATHCREDIT_HELD_EVENTS for both loads")
    args = parser.parse_args()
    held = events.HELD_EVENTS if args.hold_events is None else args.hold_events
    os.environ["PATHCREDIT_HELD_EVENTS"] = str(held)  # the server's
    path = events_file(args.events, args.seed)
    admin = os.environ.get("DATABASE_URL") or embedded.server(ROOT / ".data" / "pgbench").get_uri()
    name = f"pathcredit_bench_events_{os.getpid()}"
    store.ensure_database(admin, name)
    url = with_database(admin, name)
    try:
        store.migrate_url(url)
        with psycopg.connect(url) as conn:
            http_ws = store.create_workspace(conn, "http")
            key = store.create_api_key(conn, http_ws.workspace_id)
            cli_ws = store.create_workspace(conn, "cli")
        port = free_port()
        server = start_server(url, port, args.workers)
        try:
            settle(url)
            before = cpu_now(url, server.pid)
            http_seconds, counts = post(port, key, path)
            http_cpu = cpu_since(before, url, server.pid)
        finally:
            stop_server(server)
        settle(url)
        cli_seconds, cli_cpu = timed_import(url, cli_ws.workspace_id, path, held)
        late_large = late_event(url, cli_ws.workspace_id)
        inline, job = rederive_times(url, cli_ws.workspace_id)
        copy_seconds, copy_cpu = raw_copy(url, path)
        events_only, events_cpu = events_copy(url, path)
        with psycopg.connect(url) as conn:
            small_ws = store.create_workspace(conn, "small")
        small = events_file(SMALL, args.seed)
        import_file(url, small_ws.workspace_id, small)
        late_small = late_event(url, small_ws.workspace_id)
    finally:
        store.drop_database(admin, name)
    n = counts["received"]
    journeys = sum(counts["journeys"].values())
    size = path.stat().st_size / 1e6
    print(f"data: {n:,} events, {counts['people']:,} people, {journeys:,} journeys, {size:.0f} MB"
          f"; {held:,} held")  # fmt: skip
    for label, seconds in (("POST /v1/events (NDJSON)", http_seconds),
                           ("pathcredit import --format segment", cli_seconds),
                           ("raw COPY keyed by messageId", copy_seconds)):  # fmt: skip
        print(f"{label:38s} {seconds:8.2f} s  {n / seconds:12,.0f} events/s")
    print(f"ratio endpoint / raw COPY: {copy_seconds / http_seconds:.2f}")
    print(f"ratio import / raw COPY:   {copy_seconds / cli_seconds:.2f}")
    print(f"PostgreSQL's share, the events' COPY alone: {events_only:8.2f} s"
          f" (raw COPY / it: {copy_seconds / events_only:.2f})")  # fmt: skip
    print_cpu(http_cpu, cli_cpu, copy_seconds, copy_cpu, events_cpu)
    print(f"one late event, {n:,}-event workspace: {late_large * 1e3:8.1f} ms")
    print(f"one late event, {SMALL:,}-event workspace: {late_small * 1e3:8.1f} ms")
    print(f"new rules, derived again in the request: {inline:8.2f} s")
    print(f"new rules, derived again by the job:     {job:8.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
