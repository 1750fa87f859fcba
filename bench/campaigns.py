"""Campaign runs against channel-only runs, over HTTP, on the same journeys.

One seeded synthetic data set (10 channels, no stages, 90 days) gets campaigns: channel
``k`` runs ``5 + 5k`` campaigns (5 to 50), drawn per touch with Zipf-like weights, and
one touch in ten carries none. The journeys go through ``POST /v1/journeys/bulk`` to a
gunicorn server on 127.0.0.1 against a fresh database. Then ``POST /v1/attribution``
is timed end to end, the first run after a data change (one journey written before
every timed call, so no cached run or selection answers), for the same models:

- channel only (the rollups);
- channel only from the raw journeys (``"lookback_days": 3650`` keeps every touch but
  makes the run read the journeys, as a campaign run must);
- with ``"campaigns": {"top_n": 20}`` (the default): raw journeys with their
  campaigns, channel-campaign states;
- with ``"campaigns": {"top_n": 5}``.

Where a campaign run's time goes is measured in this process on the same database: the
store read, mapping touches to pairs and grouping unique paths, and the models.

::

    python bench/campaigns.py --journeys 1000000

Uses DATABASE_URL when set (its role needs CREATEDB), else the embedded server in
.data/pgbench.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import psycopg  # noqa: E402
from engine import machine  # noqa: E402
from ingest import free_port, start_server, stop_server, upload, with_database  # noqa: E402
from race import call, change, new_workspace  # noqa: E402

from api import store  # noqa: E402
from api.cli import embedded  # noqa: E402
from attribution import PathSet, get_model  # noqa: E402
from attribution.campaigns import campaign_paths  # noqa: E402
from attribution.synthetic import generate  # noqa: E402

CHANNELS = 10
NO_CAMPAIGN = 0.1


def campaign_codes(tokens: np.ndarray, seed: int) -> tuple[list[str], np.ndarray]:
    """Names (channel k has ``5 + 5k``) and a code per touch (-1: none)."""
    rng = np.random.default_rng(seed)
    names: list[str] = []
    first = np.zeros(CHANNELS + 1, dtype=np.int64)
    for k in range(CHANNELS):
        names.extend(f"ch{k}-campaign-{j}" for j in range(5 + 5 * k))
        first[k + 1] = len(names)
    codes = np.empty(len(tokens), dtype=np.int64)
    for k in range(CHANNELS):
        at = np.flatnonzero(tokens == k)
        count = int(first[k + 1] - first[k])
        weights = 1.0 / np.arange(1, count + 1)
        codes[at] = first[k] + rng.choice(count, len(at), p=weights / weights.sum())
    codes[rng.random(len(tokens)) < NO_CAMPAIGN] = -1
    return names, codes


def journeys_file(folder: Path, n: int) -> Path:
    """The data set as NDJSON, each touch with its campaign (or none)."""
    data = generate(n, n_channels=CHANNELS, seed=0)
    names, codes = campaign_codes(data.tokens, seed=1)
    path = folder / f"campaigns-{n}.ndjson"
    touch = 0
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, n, 50_000):
            lines = []
            for record in data.records(start, start + 50_000):
                for point in record["touchpoints"]:
                    del point["stage"]
                    code = int(codes[touch])
                    point["campaign"] = names[code] if code >= 0 else None
                    touch += 1
                lines.append(json.dumps(record))
            out.write("\n".join(lines) + "\n")
    return path


def timed(port: int, key: str, body: dict[str, Any], repeats: int) -> tuple[float, int]:
    """Median seconds of ``repeats`` runs, each after a change; the table's rows."""
    times, rows = [], 0
    for k in range(repeats + 1):
        change(port, key, "bulk")
        seconds, out = call(port, key, "POST", "/v1/attribution", body)
        rows = len(out["table"])
        if k >= 1:  # the first lets each server process read the path codes once
            times.append(seconds)
    return float(statistics.median(times)), rows


def breakdown(url: str, workspace_id: int, models: list[str]) -> dict[str, float]:
    """In-process seconds of a campaign run with the default top N: read, group, models."""
    from api.store.selections import load_campaign_journeys

    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        arrays = load_campaign_journeys(conn, workspace_id)
        read = time.perf_counter() - started
    started = time.perf_counter()
    names, codes = arrays.pop("campaign_names"), arrays.pop("campaign_tokens")
    arrays.pop("days")
    paths = campaign_paths(PathSet.from_arrays(**arrays), names, codes).aggregate()
    group = time.perf_counter() - started
    started = time.perf_counter()
    for m in models:
        get_model(m).attribute(paths)
    model = time.perf_counter() - started
    return {"read": read, "group": group, "models": model, "unique": paths.n_paths,
            "states": int(paths.state_present.sum())}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--models", nargs="+", default=["last_touch", "linear", "markov"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL") or str(
        embedded.server(ROOT / ".data" / "pgbench").get_uri()
    )
    name = f"pathcredit_campaigns_{os.getpid()}"
    store.ensure_database(admin, name)
    url = with_database(admin, name)
    store.migrate_url(url)
    port = free_port()
    server = start_server(url, port, args.workers)
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = journeys_file(Path(tmp), args.journeys)
            workspace_id, key = new_workspace(url, "campaigns")
            seconds, _ = upload(port, key, path)
            print(f"loaded {args.journeys:,} journeys in {seconds:.1f} s", file=sys.stderr)
        base = {"models": args.models}
        for label, extra in (
            ("channel only", {}),
            ("channel only, raw journeys", {"lookback_days": 3650}),
            ("campaigns, top_n 20", {"campaigns": {"top_n": 20}}),
            ("campaigns, top_n 5", {"campaigns": {"top_n": 5}}),
        ):
            median, rows = timed(port, key, {**base, **extra}, args.repeats)
            results.append((label, median, rows))
            print(f"{label}: {median:.3f} s, {rows} rows", file=sys.stderr, flush=True)
        parts = breakdown(url, workspace_id, args.models)
    finally:
        stop_server(server)
        store.drop_database(admin, name)
    print(f"machine: {machine()}")
    print(f"models: {', '.join(args.models)}; {args.journeys:,} journeys x {CHANNELS} channels")
    print("| run | median s over HTTP | vs channel only | table rows |\n|---|---|---|---|")
    for label, median, rows in results:
        print(f"| {label} | {median:.3f} | {median / results[0][1]:.1f}x | {rows} |")
    print(
        f"campaign run in process (top_n 20): store read {parts['read']:.3f} s, pairs and "
        f"unique paths {parts['group']:.3f} s ({parts['unique']:,} unique paths, "
        f"{parts['states']} channel-campaign states), models {parts['models']:.3f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
