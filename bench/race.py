"""The live API against ChannelAttribution, side by side, on the same paths.

For each size and channel count one seeded synthetic data set (no stages, 90 days) is
generated. ChannelAttribution 2.2.5 ``markov_model`` runs at its defaults in memory on
its unique paths (``a > b > c`` strings, a fresh process per call, one core, as
``bench/engine.py`` runs it). The API, served by gunicorn on 127.0.0.1 against a fresh
database, receives the same data two ways, each into a workspace of its own:

- ``paths``: the unique paths through ``POST /v1/paths`` (10,000 per request);
- ``bulk``: the journeys as NDJSON through ``POST /v1/journeys/bulk``.

Then, per Markov order, ``POST /v1/attribution`` is timed end to end over HTTP
(request, store read, model, storing the run, response) on the first run after a
data change: before every timed call one journey (or path) is written, so no cached
run and no cached selection answers. Two untimed runs come first, so that each
server process has read the workspace's path codes once, as a running service has.
On the bulk workspace the last 30 days are timed too. ``--default-set`` also times
the default model set on journeys with 5 stages, and a second run with other models
on unchanged data.

Where the time goes is measured in this process on the same database, as a server
spends it: the first read of the selection by a process that holds the path codes
(every total), the read after a small write (the totals changed since, given to the
held path set), and the model call.

::

    python bench/race.py --sizes 100000 1000000 --channels 10 30 --default-set

Needs the ``bench`` extra (channelattribution, pandas). Uses DATABASE_URL when set
(its role needs CREATEDB), else the embedded server in .data/pgbench.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402
from engine import machine, prepare, spawn  # noqa: E402
from ingest import free_port, start_server, stop_server, upload, with_database  # noqa: E402

from api import store  # noqa: E402
from api.cli import embedded  # noqa: E402
from attribution import get_model  # noqa: E402
from attribution.synthetic import generate  # noqa: E402

PATHS_PER_REQUEST = 10_000


def call(port: int, key: str, method: str, path: str, body: Any) -> tuple[float, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    started = time.perf_counter()
    conn.request(method, path, body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    payload = json.loads(response.read())
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"{method} {path}: {response.status} {payload}")
    return elapsed, payload


def new_workspace(url: str, name: str) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        workspace = store.create_workspace(conn, name)
        key = store.create_api_key(conn, workspace.workspace_id)
    return workspace.workspace_id, key


def send_paths(port: int, key: str, n: int, channels: int) -> tuple[float, int]:
    """The data set's unique paths through POST /v1/paths; (seconds, paths)."""
    paths = generate(n, n_channels=channels, seed=0).to_pathset(stages=False)
    names, tokens, offsets = paths.channel_names, paths.tokens.tolist(), paths.offsets.tolist()
    records = [
        {
            "path": [names[t] for t in tokens[offsets[k] : offsets[k + 1]]],
            "conversions": float(paths.conversions[k]),
            "nulls": float(paths.nulls[k]),
            "value": float(paths.value[k]),
        }
        for k in range(paths.n_paths)
    ]
    seconds = 0.0
    for start in range(0, len(records), PATHS_PER_REQUEST):
        batch = records[start : start + PATHS_PER_REQUEST]
        seconds += call(port, key, "POST", "/v1/paths", {"paths": batch})[0]
    return seconds, len(records)


def journeys_file(folder: Path, n: int, channels: int, stages: bool) -> tuple[Path, date]:
    """The data set's journeys as NDJSON (without stages unless asked); the last day."""
    path = folder / f"journeys-{n}x{channels}{'-staged' if stages else ''}.ndjson"
    journeys = generate(n, n_channels=channels, seed=0)
    last = ""
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, n, 50_000):
            lines = []
            for record in journeys.records(start, start + 50_000):
                if not stages:
                    for touch in record["touchpoints"]:
                        del touch["stage"]
                last = max(last, record["touchpoints"][-1]["timestamp"][:10])
                lines.append(json.dumps(record))
            out.write("\n".join(lines) + "\n")
    return path, date.fromisoformat(last)


_writes = itertools.count(1)


def change(port: int, key: str, route: str) -> None:
    """One small write of a total no earlier write left: the data version moves, so no
    cached run answers; the path is one already stored after the first write."""
    n = next(_writes)
    if route == "paths":
        body = {"paths": [{"path": ["race_change"], "conversions": float(n)}]}
        call(port, key, "POST", "/v1/paths", body)
        return
    touch = {"channel": "race_change", "timestamp": "2024-01-01T00:00:00Z"}
    record = {
        "journey_id": "race-change", "touchpoints": [touch], "converted": True, "value": float(n)
    }  # fmt: skip
    call(port, key, "POST", "/v1/journeys", {"journeys": [record]})


def timed_runs(
    port: int, key: str, route: str, body: dict[str, Any], repeats: int, changed: bool = True
) -> list[float]:
    times = []
    for k in range(repeats + 2):
        if changed:
            change(port, key, route)
        seconds, _ = call(port, key, "POST", "/v1/attribution", body)
        if k >= 2:  # the first two only let each server process read the path codes
            times.append(seconds)
    return times


def breakdown(
    port: int, key: str, route: str, url: str, workspace_id: int, order: int, **selection: Any
) -> tuple[float, float, float]:
    """In-process seconds, as a running server spends them: the first read of the
    selection by a process that holds the path codes; the read after a small write
    (the rows changed since, and the held set given the new totals); the model."""
    from api.service.selection import Selection, _recent, load_selection
    from api.store import interned
    from api.store.runs import data_version

    chosen = Selection(**selection)
    with psycopg.connect(url) as conn:
        store.load_paths(conn, workspace_id, **selection)  # reads the path codes once
        conn.rollback()
        _recent.clear()
        interned._all_day.clear()
        started = time.perf_counter()
        version = data_version(conn, workspace_id)
        load_selection(conn, workspace_id, chosen, version=version)
        first = time.perf_counter() - started
        conn.rollback()
        change(port, key, route)
        started = time.perf_counter()
        version = data_version(conn, workspace_id)
        paths = load_selection(conn, workspace_id, chosen, version=version)
        after = time.perf_counter() - started
    model = get_model("markov", order=order)
    started = time.perf_counter()
    model.attribute(paths)
    return first, after, time.perf_counter() - started


def ca_seconds(stem: str, order: int, repeats: int) -> float:
    return float(statistics.median(spawn({"engine": "ca", "stem": stem, "order": order,
                                          "reps": repeats})["times"]))  # fmt: skip


def race(args: argparse.Namespace, url: str, port: int, folder: Path) -> list[str]:
    rows = []
    for n in args.sizes:
        for channels in args.channels:
            facts = prepare(n, channels, folder)
            ca = {k: ca_seconds(facts["stem"], k, args.repeats) for k in args.orders}
            for route in args.routes:
                ws, key = new_workspace(url, f"race-{route}-{n}-{channels}")
                if route == "paths":
                    seconds, sent = send_paths(port, key, n, channels)
                    load = f"{sent:,} paths in {seconds:.1f} s ({sent / seconds:,.0f} paths/s)"
                    ranges: list[dict[str, Any]] = [{}]
                else:
                    path, last = journeys_file(folder, n, channels, stages=False)
                    seconds, _ = upload(port, key, path)
                    load = f"{n:,} journeys in {seconds:.1f} s ({n / seconds:,.0f}/s)"
                    start = (last - timedelta(days=29)).isoformat()
                    ranges = [{}, {"date_from": start, "date_to": last.isoformat()}]
                print(f"{route} {n}x{channels}: loaded {load}", file=sys.stderr, flush=True)
                for order in args.orders:
                    for selection in ranges:
                        body = {"models": ["markov"], "markov": {"order": order}, **selection}
                        ours = statistics.median(timed_runs(port, key, route, body, args.repeats))
                        dates = {k: date.fromisoformat(v) for k, v in selection.items()}
                        first, after, model = breakdown(port, key, route, url, ws, order, **dates)
                        span = "last 30 days" if selection else "all"
                        rows.append(
                            f"| {route} | {n:.0e} | {channels} | {facts['unique_paths']:,} | "
                            f"{order} | {span} | {ca[order]:.3f} | {ours:.3f} | "
                            f"{ca[order] / ours:.1f}x | {first:.3f} | {after:.3f} | "
                            f"{model:.3f} |"
                        )
                        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def default_set(args: argparse.Namespace, url: str, port: int, folder: Path) -> list[str]:
    """The default models on journeys with 5 stages and 10 channels; then other models."""
    n = max(args.sizes)
    _, key = new_workspace(url, f"race-default-{n}")
    path, _ = journeys_file(folder, n, 10, stages=True)
    upload(port, key, path)
    first = statistics.median(timed_runs(port, key, "bulk", {}, args.repeats))
    other = {"models": ["linear", "markov"], "markov": {"order": 2}}
    timed_runs(port, key, "bulk", other, 0)  # reads this selection once
    again = statistics.median(timed_runs(port, key, "bulk", other, args.repeats, changed=False))
    return [
        f"default model set, {n:,} journeys x 10 channels x 5 stages, first run after a "
        f"change: median {first:.3f} s",
        f"linear + markov order 2 on unchanged data (selection kept in memory): median "
        f"{again:.3f} s",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--channels", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--orders", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--routes", nargs="+", default=["paths", "bulk"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--default-set", action="store_true")
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL") or str(
        embedded.server(ROOT / ".data" / "pgbench").get_uri()
    )
    name = f"pathcredit_race_{os.getpid()}"
    store.ensure_database(admin, name)
    url = with_database(admin, name)
    store.migrate_url(url)
    port = free_port()
    server = start_server(url, port, args.workers)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = race(args, url, port, Path(tmp))
            notes = default_set(args, url, port, Path(tmp)) if args.default_set else []
    finally:
        stop_server(server)
        store.drop_database(admin, name)
    print(f"machine: {machine()}")
    print(
        "| route | journeys | channels | unique paths | order | days | CA s | ours over "
        "HTTP s | speed-up | first read s | read after a write s | model s |\n" + "|---" * 12 + "|"
    )
    print("\n".join([*rows, "", *notes]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
