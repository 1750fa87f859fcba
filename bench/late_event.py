"""One late event in a workspace of N events, alone in its database.

Loads the seeded events of ``bench/events.py`` (the same file) into a fresh workspace
through the code of ``pathcredit import``, then writes one late page event of a known
person (an hour before their first event, a new messageId each time) four times at
once, waits for the database to settle, and four times more; prints each time::

    python bench/late_event.py --events 10000000

Uses DATABASE_URL when set (its role needs CREATEDB), else the embedded server in
.data/pgbench. The database it creates is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api import store  # noqa: E402
from api.cli import embedded  # noqa: E402
from api.service import events  # noqa: E402
from bench.events import events_file, import_file, stamp  # noqa: E402
from bench.ingest import with_database  # noqa: E402


def late(db: store.Database, workspace_id: int, k: int) -> float:
    url = "https://shop.example/?utm_source=late&utm_medium=cpc"
    at = stamp(1_709_251_200 - 3_600 - k)
    ev = {"type": "page", "messageId": f"late-{k}", "anonymousId": "anon-1",
          "timestamp": at, "context": {"page": {"url": url}}}  # fmt: skip
    started = time.perf_counter()
    events.import_stream(db, workspace_id, iter([json.dumps(ev).encode() + b"\n"]), "segment", 1)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settle", type=float, default=120.0, help="seconds between the fours")
    args = parser.parse_args()
    path = events_file(args.events, args.seed)
    admin = os.environ.get("DATABASE_URL") or embedded.server(ROOT / ".data" / "pgbench").get_uri()
    name = f"pathcredit_bench_late_{os.getpid()}"
    store.ensure_database(admin, name)
    url = with_database(admin, name)
    try:
        store.migrate_url(url)
        db = store.Database(url)
        try:
            with db.transaction() as conn:
                workspace_id = store.create_workspace(conn, "late").workspace_id
            print(f"load: {import_file(url, workspace_id, path):.2f} s", flush=True)
            for k in range(8):
                if k == 4:
                    time.sleep(args.settle)
                print(f"late event {k}: {late(db, workspace_id, k) * 1e3:.1f} ms", flush=True)
                time.sleep(2)
        finally:
            db.close()
    finally:
        store.drop_database(admin, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
