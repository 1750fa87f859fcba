"""Write seeded synthetic journeys to files for benchmarks and imports.

Writes the raw journeys as NDJSON in the API's JSON shape (one journey per line, what
``pathcredit import`` and ``POST /v1/journeys`` take) and the aggregated unique paths
as a ChannelAttribution-style CSV (``path`` as ``a > b > c``, ``total_conversions``,
``total_null``, ``total_conversion_value``; with ``--stages`` also a ``stages``
column, and paths are then unique channel-and-stage paths)::

    python bench/generate.py --journeys 1000000 --channels 30 --seed 0 --out data/
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from attribution.paths import CA_SEPARATOR, PathSet
from attribution.synthetic import SyntheticJourneys, generate

CSV_COLUMNS = ("path", "total_conversions", "total_null", "total_conversion_value")
CHUNK = 10_000  # journeys formatted per batch: bounds memory while writing 10^7


def write_ndjson(journeys: SyntheticJourneys, target: Path) -> None:
    """One JSON object per line, in journey order."""
    with target.open("w", encoding="utf-8") as fh:
        for start in range(0, journeys.n_journeys, CHUNK):
            lines = [
                json.dumps(r, separators=(",", ":")) for r in journeys.records(start, start + CHUNK)
            ]
            if lines:
                fh.write("\n".join(lines) + "\n")


def write_paths_csv(paths: PathSet, target: Path) -> None:
    """Aggregated paths as a ChannelAttribution-style CSV (plus ``stages`` when present)."""
    channels = paths.channel_names
    stages = paths.stage_names
    bounds = paths.offsets.tolist()
    tokens = paths.tokens.tolist()
    stage_tokens = None if paths.stage_tokens is None else paths.stage_tokens.tolist()
    columns = CSV_COLUMNS + (("stages",) if stages is not None else ())
    with target.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(columns)
        for i in range(paths.n_paths):
            a, b = bounds[i], bounds[i + 1]
            row: list[object] = [
                CA_SEPARATOR.join(channels[t] for t in tokens[a:b]),
                _number(paths.conversions[i]),
                _number(paths.nulls[i]),
                round(float(paths.value[i]), 2),
            ]
            if stages is not None and stage_tokens is not None:
                row.append(CA_SEPARATOR.join(stages[s] for s in stage_tokens[a:b]))
            out.writerow(row)


def _number(x: float) -> int | float:
    """Counts are whole numbers here; write them without a trailing ``.0``."""
    return int(x) if float(x).is_integer() else float(x)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--journeys", type=int, default=10_000, help="number of journeys")
    parser.add_argument("--channels", type=int, default=10, help="number of channels")
    parser.add_argument("--stages-count", type=int, default=5, help="number of funnel stages")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", type=Path, default=Path("."), help="output directory")
    parser.add_argument("--ndjson", type=Path, help="journeys file (default OUT/journeys-…)")
    parser.add_argument("--csv", type=Path, help="paths file (default OUT/paths-…)")
    parser.add_argument("--no-ndjson", action="store_true", help="skip the journeys file")
    parser.add_argument(
        "--stages", action="store_true", help="aggregate by channel and stage, add a stages column"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stem = f"{args.journeys}x{args.channels}-s{args.seed}"
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    journeys = generate(args.journeys, args.channels, args.stages_count, seed=args.seed)
    paths = journeys.to_pathset(stages=args.stages, aggregate=True)
    generated = time.perf_counter()
    csv_path = args.csv or args.out / f"paths-{stem}.csv"
    write_paths_csv(paths, csv_path)
    print(f"{csv_path}: {paths.n_paths} unique paths", file=sys.stderr)
    if not args.no_ndjson:
        ndjson_path = args.ndjson or args.out / f"journeys-{stem}.ndjson"
        write_ndjson(journeys, ndjson_path)
        print(f"{ndjson_path}: {journeys.n_journeys} journeys", file=sys.stderr)
    print(
        f"generated and aggregated in {generated - started:.2f} s, "
        f"wrote in {time.perf_counter() - generated:.2f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
