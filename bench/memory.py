"""Worker memory and run times of a large workspace, end to end over HTTP.

One seeded synthetic data set (``attribution.synthetic``, no stages) is aggregated to
its unique paths, which are stored as client-aggregated paths (through the service's
own ``write_paths``, in process: the same rows ``POST /v1/paths`` writes, without
sending millions of paths over HTTP). A gunicorn server then answers
``POST /v1/attribution`` with Markov at each order, several times, with a small write
before each run so that no cached run answers. Printed: each run's time, and each
server worker's peak resident set (``VmHWM`` in ``/proc``) at the end.

::

    python bench/memory.py --journeys 10000000 --channels 30

Uses DATABASE_URL when set (its role needs CREATEDB), else the embedded server in
.data/pgbench.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import machine  # noqa: E402
from ingest import free_port, start_server, stop_server, with_database  # noqa: E402
from race import call, change, new_workspace  # noqa: E402

from api import store  # noqa: E402
from api.cli import embedded  # noqa: E402
from api.service.paths import write_paths  # noqa: E402
from attribution.synthetic import generate  # noqa: E402

BATCH = 100_000


def store_paths(url: str, workspace_id: int, n: int, channels: int) -> tuple[int, int, float]:
    """The data set's unique paths as client paths; (paths, touches, seconds)."""
    paths = generate(n, n_channels=channels, seed=0).to_pathset(stages=False)
    names, tokens, offsets = paths.channel_names, paths.tokens, paths.offsets
    started = time.perf_counter()
    db = store.Database(url, max_size=1)
    try:
        for first in range(0, paths.n_paths, BATCH):
            last = min(first + BATCH, paths.n_paths)
            records: list[dict[str, Any]] = [
                {
                    "path": [names[t] for t in tokens[offsets[k] : offsets[k + 1]].tolist()],
                    "stages": None,
                    "date": None,
                    "conversions": float(paths.conversions[k]),
                    "nulls": float(paths.nulls[k]),
                    "value": float(paths.value[k]),
                }
                for k in range(first, last)
            ]
            write_paths(db, workspace_id, records, limit=BATCH)
    finally:
        db.close()
    return paths.n_paths, len(tokens), time.perf_counter() - started


def workers_of(pid: int) -> list[int]:
    """The server's gunicorn workers: the children of its arbiter running gunicorn."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if _cmdline(int(c)) == _cmdline(pid)]  # forks


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=10_000_000)
    parser.add_argument("--channels", type=int, default=30)
    parser.add_argument("--orders", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--runs", type=int, default=3, help="runs per order")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL") or str(
        embedded.server(ROOT / ".data" / "pgbench").get_uri()
    )
    name = f"pathcredit_memory_{os.getpid()}"
    store.ensure_database(admin, name)
    url = with_database(admin, name)
    store.migrate_url(url)
    port = free_port()
    ws, key = new_workspace(url, "memory")
    n_paths, n_touches, seconds = store_paths(url, ws, args.journeys, args.channels)
    print(f"stored {n_paths:,} unique paths ({n_touches:,} touches) in {seconds:.0f} s", flush=True)
    server = start_server(url, port, args.workers)
    try:
        for order in args.orders:
            body = {"models": ["markov"], "markov": {"order": order}}
            for _ in range(args.runs + args.workers):  # the first of each worker reads codes
                change(port, key, "paths")
                elapsed, _ = call(port, key, "POST", "/v1/attribution", body)
                print(f"markov order {order}: {elapsed:.2f} s", flush=True)
        peaks = [peak_mib(w) for w in workers_of(server.pid)]
    finally:
        stop_server(server)
        store.drop_database(admin, name)
    print(f"machine: {machine()}")
    print("worker peak resident MiB: " + ", ".join(f"{p:,.0f}" for p in sorted(peaks)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
