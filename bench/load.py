"""A bounded mixed load against a served instance: many clients writing small batches
while attribution runs come in.

Serves the API with gunicorn (``pathcredit serve``) against a fresh database, preloads
one workspace with seeded synthetic journeys through the bulk endpoint, then for a fixed
time runs ``--clients`` threads, each posting batches of ``--batch`` new journeys to
``POST /v1/journeys`` back to back on a keep-alive connection, and one more thread
starting a synchronous ``POST /v1/attribution`` (the default models) every
``--run-every`` seconds. Every write moves the workspace's data version, so no run is
answered from a stored one. Prints, per request kind, the count, p50, p99 and the
slowest; errors by status; throughput; and the peak resident memory of each gunicorn
worker during the load (its high-water mark, reset after the preload). The request
rate limits are off (``PATHCREDIT_KEY_WRITES=0`` and the like, unless set): one key
stands for all the clients::

    python bench/load.py --journeys 100000 --clients 16 --batch 20 --seconds 60

Uses DATABASE_URL when set (its role needs CREATEDB), else the embedded server in
.data/pgbench. The database it creates is dropped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

# One key stands for every client here: its request rate limits are off, so the load
# measures the service, not the limiter.
for _limit in ("KEY_READS", "KEY_WRITES", "WORKSPACE_READS", "WORKSPACE_WRITES"):
    os.environ.setdefault(f"PATHCREDIT_{_limit}", "0")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psutil  # noqa: E402
import psycopg  # noqa: E402
from ingest import (  # noqa: E402
    _memory_gib,
    free_port,
    journeys_file,
    start_server,
    stop_server,
    upload,
    with_database,
)

from api import store  # noqa: E402
from api.cli import embedded  # noqa: E402
from attribution.synthetic import generate  # noqa: E402


class Recorder:
    """Latencies by request kind and answers by (kind, status), from every thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter[tuple[str, int | str]] = Counter()
        self.journeys = 0

    def add(self, kind: str, status: int | str, seconds: float, journeys: int = 0) -> None:
        with self.lock:
            self.statuses[kind, status] += 1
            if status == 200:
                self.seconds[kind].append(seconds)
                self.journeys += journeys


class Client:
    """One keep-alive connection, opened again after a failure."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.conn: http.client.HTTPConnection | None = None

    def post(self, target: str, body: Any) -> tuple[int | str, float]:
        data = json.dumps(body, separators=(",", ":")).encode()
        started = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            self.conn.request("POST", target, body=data, headers=self.headers)
            response = self.conn.getresponse()
            response.read()
            status: int | str = response.status
            if response.getheader("Connection", "").lower() == "close":
                self.close()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            status = type(e).__name__
        return status, time.perf_counter() - started

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def writer(
    number: int, port: int, key: str, pool: list[dict[str, Any]], batch: int,
    until: float, recorder: Recorder,
) -> None:  # fmt: skip
    client = Client(port, key)
    sent = 0
    while time.monotonic() < until:
        start = (number * 7919 + sent * batch) % (len(pool) - batch)
        records = [
            {**r, "journey_id": f"load-{number}-{sent}-{i}"}
            for i, r in enumerate(pool[start : start + batch])
        ]
        status, seconds = client.post("/v1/journeys", {"journeys": records})
        recorder.add("write", status, seconds, batch)
        sent += 1
    client.close()


def runner(port: int, key: str, every: float, until: float, recorder: Recorder) -> None:
    client = Client(port, key)
    while time.monotonic() < until:
        began = time.monotonic()
        status, seconds = client.post("/v1/attribution", {})
        client.close()  # idle until the next run: longer than the server keeps it open
        recorder.add("run", status, seconds)
        time.sleep(max(0.0, every - (time.monotonic() - began)))
    client.close()


def web_workers(server: Any) -> list[psutil.Process]:
    """gunicorn's workers: the serve process's children that are not job workers."""
    children = psutil.Process(server.pid).children()
    return [c for c in children if "worker" not in c.cmdline()]


def reset_peak(workers: list[psutil.Process]) -> None:
    """Start each worker's high-water mark afresh (Linux: clear_refs 5)."""
    for worker in workers:
        Path(f"/proc/{worker.pid}/clear_refs").write_text("5")


def peak_mib(worker: psutil.Process) -> float:
    for line in Path(f"/proc/{worker.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load(args: argparse.Namespace, url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        workspace = store.create_workspace(conn, "load")
        key = store.create_api_key(conn, workspace.workspace_id)
        version = conn.execute("SHOW server_version").fetchone()
    port = free_port()
    server = start_server(url, port, args.workers)
    try:
        preload_seconds, counts = upload(port, key, journeys_file(args.journeys, args.seed))
        pool = list(generate(20_000, seed=args.seed + 1).records(0, 20_000))
        workers = web_workers(server)
        # one run before the clock, as a running service has read its paths once
        Client(port, key).post("/v1/attribution", {})
        reset_peak(workers)
        recorder = Recorder()
        until = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=writer, args=(n, port, key, pool, args.batch, until, recorder))
            for n in range(args.clients)
        ]
        threads.append(
            threading.Thread(target=runner, args=(port, key, args.run_every, until, recorder))
        )
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        peaks = [peak_mib(w) for w in workers]
    finally:
        stop_server(server)
    return {
        "recorder": recorder, "elapsed": elapsed, "peaks": peaks, "preload": preload_seconds,
        "counts": counts, "postgres": f"PostgreSQL {version[0] if version else '?'}",
    }  # fmt: skip


def report(args: argparse.Namespace, found: dict[str, Any]) -> None:
    recorder: Recorder = found["recorder"]
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"machine: {os.cpu_count()} CPUs, {_memory_gib():.0f} GiB, {python}, {found['postgres']}")
    print(f"preload: {found['counts']['received']:,} journeys in {found['preload']:.1f} s")
    print(f"load: {args.clients} writers x {args.batch} journeys per batch, a run every "
          f"{args.run_every:g} s, {found['elapsed']:.1f} s, "
          f"{args.workers} gunicorn workers")  # fmt: skip
    print(f"{'kind':<6} {'ok':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind in ("write", "run"):
        seconds = sorted(recorder.seconds[kind])
        if not seconds:
            print(f"{kind:<6} {0:>6}")
            continue
        p99 = (
            statistics.quantiles(seconds, n=100, method="inclusive")[98]
            if len(seconds) > 1
            else seconds[0]
        )
        print(f"{kind:<6} {len(seconds):>6} {statistics.median(seconds) * 1000:>8.0f} "
              f"{p99 * 1000:>8.0f} {seconds[-1] * 1000:>8.0f}")  # fmt: skip
    errors = {f"{k} {s}": n for (k, s), n in sorted(recorder.statuses.items(), key=str) if s != 200}
    print(f"errors: {errors or 'none'}")
    writes = len(recorder.seconds["write"])
    print(f"throughput: {writes / found['elapsed']:.1f} writes/s, "
          f"{recorder.journeys / found['elapsed']:,.0f} journeys/s, "
          f"{len(recorder.seconds['run']) / found['elapsed'] * 60:.1f} runs/min")  # fmt: skip
    print("peak resident memory of the gunicorn workers during the load: "
          + ", ".join(f"{p:.0f} MiB" for p in found["peaks"]))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--journeys", type=int, default=100_000, help="preloaded journeys")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clients", type=int, default=16, help="writing threads")
    parser.add_argument("--batch", type=int, default=20, help="journeys per write")
    parser.add_argument("--run-every", type=float, default=5.0, help="seconds between runs")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    args = parser.parse_args()

    admin = os.environ.get("DATABASE_URL") or embedded.server(ROOT / ".data" / "pgbench").get_uri()
    name = f"pathcredit_load_{os.getpid()}"
    store.ensure_database(admin, name)
    try:
        url = with_database(admin, name)
        store.migrate_url(url)
        found = load(args, url)
    finally:
        store.drop_database(admin, name)
    report(args, found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
