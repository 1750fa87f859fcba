"""Sequence effects at scale: the top-K transitions' removal effects, timed.

One seeded synthetic data set (``attribution.synthetic``, no stages), aggregated to
unique paths; then ``sequence_effects(paths, order, top)`` for each order and K,
with BLAS pinned to one thread. Prints a Markdown table: states of the chain, the
solver that ran, the time with ``top=1`` (chain and uncut solve, one cut) and with
``top=K``, and the time per extra cut::

    python bench/sequences.py                             # 10^6 journeys x 30 channels
    python bench/sequences.py --journeys 100000 --channels 10 --tops 20

Times are medians over ``--reps`` calls, wall and CPU (the process's, which other work
on a shared machine does not stretch). ``--world NAME`` draws the journeys from a
simulated world of :data:`attribution.worlds.WORLDS` instead, and ``--show N`` prints,
for each order, the ``N`` transitions with the largest removal effects among the top
``K`` by steps::

    python bench/sequences.py --world order --journeys 1000000 --orders 1 2 3 --tops 25 --show 6
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads: see PERFORMANCE notes

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from attribution.sequences import sequence_effects  # noqa: E402
from attribution.synthetic import generate  # noqa: E402
from attribution.worlds import WORLDS, simulate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--channels", type=int, default=30)
    parser.add_argument("--orders", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--tops", type=int, nargs="+", default=[20, 100, 200])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--world", choices=list(WORLDS))
    parser.add_argument("--show", type=int, default=0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    if args.world:
        paths = simulate(WORLDS[args.world], args.journeys, args.seed).to_pathset()
    else:
        synthetic = generate(args.journeys, n_channels=args.channels, seed=args.seed)
        paths = synthetic.to_pathset(stages=False)
    print(
        f"{args.journeys:,} journeys of {args.world or 'the synthetic generator'}, "
        f"{paths.n_channels} channels: {paths.n_paths:,} unique paths, made in "
        f"{time.perf_counter() - started:.1f} s\n"
    )
    print(
        "| order | states | transitions | solver | K | wall s (top=1) | wall s (top=K) "
        "| CPU s (top=1) | CPU s (top=K) | CPU ms per extra cut |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    shown = []
    for order in args.orders:
        one, one_cpu, _ = timed(paths, order, 1, args.reps)
        for top in args.tops:
            wall, cpu, fx = timed(paths, order, top, args.reps)
            per_cut = 1000 * (cpu - one_cpu) / max(1, len(fx.source) - 1)
            print(
                f"| {order} | {states(paths, order):,} | {fx.n_transitions:,} | {fx.solver} "
                f"| {len(fx.source)} | {one:.2f} | {wall:.2f} | {one_cpu:.2f} | {cpu:.2f} "
                f"| {per_cut:.1f} |",
                flush=True,
            )
        by_effect = sorted(fx.to_rows(), key=lambda r: -r["removal_effect"])
        shown.append((order, by_effect[: args.show]))
    for order, rows in shown if args.show else ():
        print(f"\nOrder {order}:\n\n| sequence | steps | removal effect |\n|---|---:|---:|")
        for r in rows:
            print(f"| {r['sequence']} | {r['steps']:,.0f} | {r['removal_effect']:.4f} |")


def timed(paths, order, top, reps):  # type: ignore[no-untyped-def]
    """Median wall and CPU seconds of ``reps`` calls, and the last call's result."""
    walls, cpus = [], []
    for _ in range(reps):
        wall, cpu = time.perf_counter(), time.process_time()
        fx = sequence_effects(paths, order=order, top=top)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), fx


def states(paths, order):  # type: ignore[no-untyped-def]
    from attribution.chain import build_chain

    return build_chain(paths, order).n_states


if __name__ == "__main__":
    main()
