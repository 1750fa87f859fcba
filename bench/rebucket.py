"""What a change of the workspace time zone costs: re-bucketing N stored journeys.

One seeded synthetic data set (``attribution.synthetic``, 10 channels, touches over
90 days) is imported through the bulk path in process, then the workspace's zone goes
from UTC to Asia/Tokyo and back, each change one transaction as the service runs it
(the write lock, the zone, every journey's day in batches, the per-day rollups rebuilt).
Printed per change: journeys whose day moved, the time to move the days, to rebuild
the rollups, to commit, and the total (writes of the workspace wait that long).

::

    python bench/rebucket.py --journeys 1000000

Uses DATABASE_URL when set (its role needs CREATEDB), else the embedded server in
.data/pgbench.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import machine  # noqa: E402
from generate import write_ndjson  # noqa: E402
from ingest import with_database  # noqa: E402
from race import new_workspace  # noqa: E402

from api import store  # noqa: E402
from api.cli import embedded  # noqa: E402
from api.service import bulk  # noqa: E402
from api.store import zones  # noqa: E402
from api.store.dictionaries import lock_workspace  # noqa: E402
from attribution.synthetic import generate  # noqa: E402


def load(db: store.Database, workspace_id: int, n: int) -> float:
    """Import ``n`` synthetic journeys; seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journeys.ndjson"
        write_ndjson(generate(n, n_channels=10, seed=0), path)
        started = time.perf_counter()
        with path.open("rb") as fh:
            bulk.import_stream(db, workspace_id, "ndjson", iter(lambda: fh.read(1 << 20), b""), 10)
    return time.perf_counter() - started


def change(db: store.Database, workspace_id: int, zone: str) -> str:
    """One change as the service makes it, timed by phase."""
    marks: list[float] = []
    started = time.perf_counter()
    with db.transaction() as conn:
        lock_workspace(conn, workspace_id)
        zones.set_time_zone(conn, workspace_id, zone)
        moved = zones.rebucket(
            conn, workspace_id, zone, lambda done: marks.append(time.perf_counter())
        )
        built = time.perf_counter()
    done = time.perf_counter()
    return (
        f"to {zone}: {moved:,} days moved; days {marks[-1] - started:.2f} s, rollups "
        f"{built - marks[-1]:.2f} s, commit {done - built:.2f} s, total {done - started:.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=100_000)
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL") or str(
        embedded.server(ROOT / ".data" / "pgbench").get_uri()
    )
    name = f"pathcredit_rebucket_{os.getpid()}"
    store.ensure_database(admin, name)
    url = with_database(admin, name)
    store.migrate_url(url)
    ws, _ = new_workspace(url, "rebucket")
    db = store.Database(url, max_size=2)
    try:
        seconds = load(db, ws, args.journeys)
        print(f"imported {args.journeys:,} journeys in {seconds:.1f} s", flush=True)
        for zone in ("Asia/Tokyo", "UTC"):
            print(change(db, ws, zone), flush=True)
    finally:
        db.close()
        store.drop_database(admin, name)
    print(f"machine: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
