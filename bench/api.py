"""Attribution over HTTP: run latency by workspace size, and cached table throughput.

Serves the API with gunicorn on 127.0.0.1 against a fresh database, loads one
workspace per size with seeded synthetic journeys through the bulk endpoint, then:

1. times ``POST /v1/attribution`` with Markov (order 1) and Shapley, end to end
   (request, rollup read, both models, storing the run, response), ``--repeats`` times
   per size (every request is a new run: POST never reads the cache);
2. warms ``GET /v1/attribution/table`` once and drives the cached URL with a load
   generator for ``--seconds``: Debian's ``wrk`` when installed, else a bounded pool of
   Python threads. Reports requests/s and p50/p99 latency.

::

    python bench/api.py --sizes 10000 100000 1000000

Uses DATABASE_URL when set (its role needs CREATEDB), else the embedded server in
.data/pgbench. The database is dropped and the server stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402
from ingest import (  # noqa: E402
    free_port,
    journeys_file,
    start_server,
    stop_server,
    upload,
    with_database,
)

from api import store  # noqa: E402
from api.cli import embedded  # noqa: E402

RUN_BODY = {"models": ["markov", "shapley"], "markov": {"order": 1}}
SELECTIONS = {
    "rollups (no filter)": {},
    "raw journeys: attribute filter": {"filters": {"attributes": {"segment": "returning"}}},
    "raw journeys: device filter": {"filters": {"device": "mobile"}},
    "raw journeys: lookback 30 days": {"lookback_days": 30},
}
"""What a selection costs: the same cheap model over each way of reading the data."""
TABLE_PATH = "/v1/attribution/table?models=markov,shapley"


def post_run(
    port: int, key: str, body: dict[str, object] = RUN_BODY
) -> tuple[float, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    started = time.perf_counter()
    conn.request("POST", "/v1/attribution", body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    payload = json.loads(response.read())
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"run failed: {response.status} {payload}")
    return elapsed, payload


def get_table(port: int, key: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    conn.request("GET", TABLE_PATH, headers={"Authorization": f"Bearer {key}"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"table failed: {response.status}")
    return response.getheader("Pathcredit-Cache") or "?"


def load_with_wrk(port: int, key: str, seconds: int, connections: int) -> dict[str, float]:
    """wrk's own figures: requests/s and latency percentiles (ms)."""
    command = [
        "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
        "-H", f"Authorization: Bearer {key}", f"http://127.0.0.1:{port}{TABLE_PATH}",
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures = {"requests/s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if match:
            scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]
            figures[f"p{pct} ms"] = float(match.group(1)) * scale
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non-2xx"] = float(errors.group(1)) if errors else 0.0
    return figures


def load_with_threads(port: int, key: str, seconds: int, connections: int) -> dict[str, float]:
    """A bounded Python load generator: ``connections`` threads, each on one keep-alive
    connection, for ``seconds``."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}"}

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            conn.request("GET", TABLE_PATH, headers=headers)
            conn.getresponse().read()
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        for _ in range(connections):
            pool.submit(worker)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests/s": len(latencies) / elapsed,
        "p50 ms": latencies[len(latencies) // 2] * 1e3,
        "p99 ms": latencies[int(len(latencies) * 0.99)] * 1e3,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3, help="runs per size (1 above 10^5)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--seconds", type=int, default=15, help="load generation time")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument(
        "--selections", action="store_true", help="also time reading rollups vs raw journeys"
    )
    args = parser.parse_args()

    admin = os.environ.get("DATABASE_URL") or embedded.server(ROOT / ".data" / "pgbench").get_uri()
    name = f"pathcredit_bench_api_{os.getpid()}"
    store.ensure_database(admin, name)
    url = with_database(admin, name)
    os.environ["PATHCREDIT_RUN_TIMEOUT_SECONDS"] = "3600"
    try:
        store.migrate_url(url)
        port = free_port()
        server = start_server(url, port, args.workers)
        try:
            _report_machine(url)
            keys = {n: _loaded_workspace(url, port, n) for n in args.sizes}
            for n, key in keys.items():
                _time_runs(port, key, n, 1 if n > 100_000 else args.repeats)
                if args.selections:
                    _time_selections(port, key, n)
            _load(port, keys[args.sizes[0]], args)
        finally:
            stop_server(server)
    finally:
        store.drop_database(admin, name)
    return 0


def _loaded_workspace(url: str, port: int, n: int) -> str:
    with psycopg.connect(url) as conn:
        workspace = store.create_workspace(conn, f"bench-{n}")
        key = store.create_api_key(conn, workspace.workspace_id)
    seconds, counts = upload(port, key, journeys_file(n, 0))
    print(f"loaded {counts['received']:>9,} journeys in {seconds:6.1f} s (bulk endpoint)")
    return key


def _time_runs(port: int, key: str, n: int, repeats: int) -> None:
    times, payload = [], {}
    for _ in range(repeats):
        elapsed, payload = post_run(port, key)
        times.append(elapsed)
    totals = payload.get("totals", {})
    print(
        f"POST /v1/attribution markov(1)+shapley  {n:>9,} journeys: "
        f"median {statistics.median(times):6.2f} s, min {min(times):6.2f} s over {repeats} "
        f"({totals})"
    )


def _time_selections(port: int, key: str, n: int) -> None:
    for label, selection in SELECTIONS.items():
        times = [post_run(port, key, {"models": ["last_touch"], **selection})[0] for _ in range(3)]
        print(
            f"  last_touch, {label:<32} {n:>9,} journeys: median {statistics.median(times):6.2f} s"
        )


def _load(port: int, key: str, args: argparse.Namespace) -> None:
    print(f"warm-up GET {TABLE_PATH}: cache {get_table(port, key)}, then {get_table(port, key)}")
    tool = "wrk" if shutil.which("wrk") else "python threads"
    run = load_with_wrk if tool == "wrk" else load_with_threads
    figures = run(port, key, args.seconds, args.connections)
    shown = ", ".join(f"{k} {v:,.1f}" for k, v in figures.items())
    print(
        f"cached GET table, {tool}, {args.connections} connections, {args.seconds} s, "
        f"{args.workers} gunicorn workers: {shown}"
    )


def _report_machine(url: str) -> None:
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    python = f"{platform.python_implementation()} {platform.python_version()}"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"machine: {os.cpu_count()} CPUs, {memory:.0f} GiB, {python}, "
        f"PostgreSQL {version[0] if version else '?'}"
    )


if __name__ == "__main__":
    sys.exit(main())
