"""Bulk ingestion through the HTTP endpoint, against a raw COPY of the same rows.

Generates seeded synthetic journeys as NDJSON (cached in bench/out/), serves the API
with gunicorn on 127.0.0.1 against a fresh database, streams the file to
``POST /v1/journeys/bulk`` and times it end to end (upload, validation, coding, COPY,
merge, rollups, commit). Then it takes the very rows the endpoint stored and COPYs them,
pre-formatted, into a table shaped like ``journeys`` (same keys) and into a bare one,
and in COPY's binary format into the keyed one: the practical limits of getting those
rows into the same PostgreSQL. Prints journeys/s, touchpoints/s and the ratios::

    python bench/ingest.py --journeys 1000000 --rounds 2 --resend

Uses DATABASE_URL when set (its role needs CREATEDB), else the embedded server in
.data/pgbench. Every database it creates is dropped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

from api import store  # noqa: E402
from api.cli import embedded  # noqa: E402
from attribution.synthetic import generate  # noqa: E402

OUT = ROOT / "bench" / "out"
COLUMNS = (
    "journey_id, customer_id, channels, stages, touched_at, campaigns, devices, "
    "converted, value, converted_at, day, attributes"
)


def journeys_file(n: int, seed: int) -> Path:
    """The NDJSON file of ``n`` journeys, generated once per (n, seed)."""
    target = OUT / f"ingest-journeys-{n}-{seed}.ndjson"
    if target.exists():
        return target
    OUT.mkdir(parents=True, exist_ok=True)
    data = generate(n, seed=seed)
    partial = target.with_suffix(".part")
    with partial.open("w", encoding="utf-8") as fh:
        for start in range(0, n, 20_000):
            lines = [
                json.dumps(r, separators=(",", ":")) for r in data.records(start, start + 20_000)
            ]
            fh.write("\n".join(lines) + "\n")
    partial.rename(target)
    return target


def with_database(url: str, name: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo(**params)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "PATHCREDIT_PORT": str(port),
           "PATHCREDIT_WORKERS": str(workers), "PATHCREDIT_LOG_LEVEL": "WARNING"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not become ready")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def upload(port: int, key: str, path: Path) -> tuple[float, dict[str, int]]:
    """POST the file to the bulk endpoint; seconds until the response arrived."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600, blocksize=1 << 20)
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/x-ndjson",
        "Content-Length": str(path.stat().st_size),
    }
    started = time.perf_counter()
    with path.open("rb") as body:
        conn.request("POST", "/v1/journeys/bulk", body=body, headers=headers)
        response = conn.getresponse()
        payload = json.loads(response.read())
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"bulk upload failed: {response.status} {payload}")
    return elapsed, payload


def stored_rows(url: str, workspace_id: int, options: str = "") -> bytes:
    """The rows the endpoint stored, in a COPY format (text unless ``options`` say)."""
    buffer = io.BytesIO()
    select = f"SELECT {COLUMNS} FROM journeys WHERE workspace_id = {int(workspace_id)}"
    with (
        psycopg.connect(url) as conn,
        conn.cursor().copy(f"COPY ({select}) TO STDOUT {options}") as copy,
    ):
        for chunk in copy:
            buffer.write(chunk)
    return buffer.getvalue()


def touchpoints(url: str, workspace_id: int) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT sum(cardinality(channels)) FROM journeys WHERE workspace_id = %s",
            [workspace_id],
        ).fetchone()
    return int(row[0]) if row and row[0] else 0


def read_paths(url: str, workspace_id: int) -> tuple[float, int]:
    """Seconds for store.load_paths over every date, and the unique paths it returned."""
    with psycopg.connect(url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        started = time.perf_counter()
        arrays = store.load_paths(conn, workspace_id)
        return time.perf_counter() - started, len(arrays["offsets"]) - 1


def raw_copy(url: str, rows: bytes, like: str, options: str = "") -> float:
    """Seconds to COPY pre-formatted rows into a fresh table shaped like journeys."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_journeys")
        conn.execute(f"CREATE TABLE raw_journeys (LIKE journeys {like})")
        conn.execute("ALTER TABLE raw_journeys ALTER workspace_id SET DEFAULT 1")
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor().copy(f"COPY raw_journeys ({COLUMNS}) FROM STDIN {options}") as copy,
        ):
            for start in range(0, len(rows), 1 << 20):
                copy.write(rows[start : start + (1 << 20)])
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE raw_journeys")
    return elapsed


def one_round(admin: str, path: Path, workers: int, resend: bool) -> dict[str, Any]:
    """Load the file through the endpoint into a fresh database, then COPY the stored
    rows raw into the same database; every figure of one round comes from one database."""
    name = f"pathcredit_bench_{os.getpid()}"
    store.ensure_database(admin, name)
    url = with_database(admin, name)
    try:
        store.migrate_url(url)
        with psycopg.connect(url) as conn:
            workspace = store.create_workspace(conn, "bench")
            key = store.create_api_key(conn, workspace.workspace_id)
            version = conn.execute("SHOW server_version").fetchone()
        port = free_port()
        server = start_server(url, port, workers)
        try:
            seconds, counts = upload(port, key, path)
            again = upload(port, key, path)[0] if resend else None
        finally:
            stop_server(server)
        touches = touchpoints(url, workspace.workspace_id)
        read_seconds, n_paths = read_paths(url, workspace.workspace_id)
        keys = "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES"
        rows = stored_rows(url, workspace.workspace_id)
        keyed = raw_copy(url, rows, keys)
        bare = raw_copy(url, rows, "INCLUDING DEFAULTS")
        rows = stored_rows(url, workspace.workspace_id, "(FORMAT binary)")
        binary = raw_copy(url, rows, keys, "(FORMAT binary)")
        del rows
    finally:
        store.drop_database(admin, name)
    return {
        "seconds": seconds, "resend": again, "counts": counts, "touches": touches,
        "keyed": keyed, "bare": bare, "binary": binary, "read": read_seconds, "paths": n_paths,
        "postgres": f"PostgreSQL {version[0] if version else '?'}",
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--journeys", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--resend", action="store_true", help="also time re-sending the file")
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="repeat the whole comparison, each in a fresh database (times on shared "
        "machines wander: compare the ratios of one round)",
    )  # fmt: skip
    args = parser.parse_args()

    path = journeys_file(args.journeys, args.seed)
    admin = os.environ.get("DATABASE_URL") or embedded.server(ROOT / ".data" / "pgbench").get_uri()
    rounds = [one_round(admin, path, args.workers, args.resend) for _ in range(args.rounds)]

    first = rounds[0]
    n, touches = first["counts"]["received"], first["touches"]
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"machine: {os.cpu_count()} CPUs, {_memory_gib():.0f} GiB, {python}, {first['postgres']}")
    print(f"data: {n} journeys, {touches} touchpoints, {path.stat().st_size / 1e6:.0f} MB NDJSON")
    print(f"counts: {first['counts']}")
    for k, r in enumerate(rounds, 1):
        print(f"-- round {k}")
        _line("HTTP bulk endpoint (NDJSON)", r["seconds"], n, touches)
        if r["resend"] is not None:
            _line("HTTP bulk re-send (all unchanged)", r["resend"], n, touches)
        _line("raw COPY, table with journeys' keys", r["keyed"], n, touches)
        _line("raw COPY, bare table", r["bare"], n, touches)
        _line("raw binary COPY, table with keys", r["binary"], n, touches)
        print(f"load_paths (all dates): {r['paths']:,} unique paths in {r['read']:.2f} s")
        print(f"ratio endpoint / raw COPY with keys: {r['keyed'] / r['seconds']:.2f}")
        print(f"ratio endpoint / raw COPY bare:      {r['bare'] / r['seconds']:.2f}")
        print(f"ratio endpoint / binary with keys:   {r['binary'] / r['seconds']:.2f}")
        if r["resend"] is not None:
            print(f"ratio re-send / raw COPY with keys:  {r['keyed'] / r['resend']:.2f}")
    return 0


def _line(label: str, seconds: float, journeys: int, touches: int) -> None:
    print(f"{label:<38} {seconds:7.2f} s  {journeys / seconds:10,.0f} journeys/s  "
          f"{touches / seconds:12,.0f} touchpoints/s")  # fmt: skip


def _memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return float("nan")


if __name__ == "__main__":
    sys.exit(main())
