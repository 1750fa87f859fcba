"""The data-driven model and the holdout validation: in process, and over HTTP once.

In process, for each size, one seeded synthetic data set (``attribution.synthetic``,
10 channels, with or without stages) aggregated to unique paths is given to
``DataDriven().attribute`` (fit, per-path Shapley shares, held-out scores; each part
timed too) and to ``attribution.holdout.validate`` at its defaults (5 folds, Markov
orders 1-4 and data_driven). Each measurement runs in a fresh subprocess with BLAS
pinned to one thread; wall and CPU time are the medians over repetitions::

    python bench/fitted.py --sizes 100000 1000000
    python bench/fitted.py --sizes 1000000 --http     # and once over HTTP

``--http`` serves the API with gunicorn against a fresh database (DATABASE_URL, else
the embedded server in .data/pgbench), loads the largest size through the bulk
endpoint, and times one ``POST /v1/attribution`` with ``data_driven`` and one
``POST /v1/attribution/validate``, end to end. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MARK = "@@result "


def child(n: int, stages: bool, what: str) -> dict[str, Any]:
    """One measurement in this process (run by :func:`measure` in a subprocess)."""
    from attribution.data_driven import DataDriven
    from attribution.holdout import validate
    from attribution.synthetic import generate

    paths = generate(n, n_channels=10, seed=0).to_pathset(stages=stages)
    out: dict[str, Any] = {"unique_paths": paths.n_paths, "players": int(paths.n_states)}
    model = DataDriven()
    wall, cpu = time.perf_counter(), time.process_time()
    if what == "attribute":
        marks = {}
        x = model.matrix(paths)
        marks["design"] = time.perf_counter()
        credit, w = model._credit(paths)
        marks["fit + shares"] = time.perf_counter()
        model.held_out(paths, w)
        marks["held-out (5 folds)"] = time.perf_counter()
        out["parts"] = _parts(wall, marks)
        out["columns"] = int(x.shape[1])
        out["games"] = credit.details["games"]
    else:
        validate(paths)
    out["wall"] = time.perf_counter() - wall
    out["cpu"] = time.process_time() - cpu
    return out


def _parts(start: float, marks: dict[str, float]) -> dict[str, float]:
    out, last = {}, start
    for name, at in marks.items():
        out[name] = at - last
        last = at
    return out


def measure(n: int, stages: bool, what: str, reps: int) -> dict[str, Any]:
    runs = []
    for _ in range(reps):
        call = f"fitted.child({n}, {stages}, {what!r})"
        code = f"import json, fitted; print({MARK!r} + json.dumps({call}))"
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=ROOT / "bench",
            check=True,
        )
        line = next(x for x in done.stdout.splitlines() if x.startswith(MARK))
        runs.append(json.loads(line[len(MARK) :]))
    result = runs[0]
    result["wall"] = statistics.median(r["wall"] for r in runs)
    result["cpu"] = statistics.median(r["cpu"] for r in runs)
    return result


def over_http(n: int) -> None:
    import psycopg
    from ingest import free_port, journeys_file, start_server, stop_server, upload, with_database

    from api import store
    from api.cli import embedded

    admin = os.environ.get("DATABASE_URL") or embedded.server(ROOT / ".data" / "pgbench").get_uri()
    name = f"pathcredit_bench_fitted_{os.getpid()}"
    store.ensure_database(admin, name)
    url = with_database(admin, name)
    os.environ["PATHCREDIT_RUN_TIMEOUT_SECONDS"] = "3600"
    os.environ["PATHCREDIT_SYNC_WORK_BUDGET"] = str(10**12)
    try:
        store.migrate_url(url)
        port = free_port()
        server = start_server(url, port, 1)
        try:
            with psycopg.connect(url) as conn:
                ws = store.create_workspace(conn, "bench")
                key = store.create_api_key(conn, ws.workspace_id)
            seconds, counts = upload(port, key, journeys_file(n, 0))
            print(f"loaded {counts['received']:,} journeys in {seconds:.1f} s (bulk endpoint)")
            for path, body in (
                ("/v1/attribution", {"models": ["data_driven"]}),
                ("/v1/attribution/validate", {}),
            ):
                elapsed, payload = _post(port, key, path, body)
                size = payload.get("unique_paths") or payload.get("totals", {})
                print(f"POST {path} {json.dumps(body)}: {elapsed:.2f} s ({size})")
        finally:
            stop_server(server)
    finally:
        store.drop_database(admin, name)


def _post(port: int, key: str, path: str, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    started = time.perf_counter()
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    payload = json.loads(response.read())
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"{path} failed: {response.status} {payload}")
    return elapsed, payload


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--reps", type=int, default=1, help="repetitions per measurement")
    parser.add_argument("--http", action="store_true", help="also once over HTTP, largest size")
    args = parser.parse_args()
    print("| journeys | stages | unique paths | players | call | wall s | CPU s | parts (wall s) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        for stages in (False, True):
            for what in ("attribute", "validate"):
                r = measure(n, stages, what, args.reps)
                parts = ", ".join(f"{k} {v:.2f}" for k, v in r.get("parts", {}).items())
                call = "data_driven" if what == "attribute" else "validate"
                print(
                    f"| {n:.0e} | {'5' if stages else '—'} | {r['unique_paths']:,} | "
                    f"{r['players']} | {call} | {r['wall']:.2f} | {r['cpu']:.2f} | {parts} |",
                    flush=True,
                )
    if args.http:
        over_http(max(args.sizes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
