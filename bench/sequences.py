"""Sequence effects at scale: the top-K transitions' removal effects, timed.

One seeded synthetic data set (``attribution.synthetic``, no stages), aggregated to
unique paths; then ``sequence_effects(paths, order, top)`` for each order and K,
with BLAS pinned to one thread. Prints a Markdown table: states of the chain, the
solver that ran, the time with ``top=1`` (chain and uncut solve, one cut) and with
``top=K``, and the time per extra cut::

    python bench/sequences.py                             # 10^6 journeys x 30 channels
    python bench/sequences.py --journeys 100000 --channels 10 --tops 20
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads: see PERFORMANCE notes

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from attribution.sequences import sequence_effects  # noqa: E402
from attribution.synthetic import generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--channels", type=int, default=30)
    parser.add_argument("--orders", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--tops", type=int, nargs="+", default=[20, 100, 200])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    paths = generate(args.journeys, n_channels=args.channels, seed=args.seed).to_pathset(
        stages=False
    )
    print(
        f"{args.journeys:,} journeys x {args.channels} channels: {paths.n_paths:,} unique "
        f"paths, generated in {time.perf_counter() - started:.1f} s\n"
    )
    print(
        "| order | states | transitions | solver | K | wall s (top=1) | wall s (top=K) "
        "| ms per extra cut |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for order in args.orders:
        one, fx1 = timed(paths, order, 1)
        for top in args.tops:
            wall, fx = timed(paths, order, top)
            per_cut = 1000 * (wall - one) / max(1, len(fx.source) - 1)
            print(
                f"| {order} | {states(paths, order):,} | {fx.n_transitions:,} | {fx.solver} "
                f"| {len(fx.source)} | {one:.2f} | {wall:.2f} | {per_cut:.1f} |",
                flush=True,
            )
        del fx1


def timed(paths, order, top):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fx = sequence_effects(paths, order=order, top=top)
    return time.perf_counter() - started, fx


def states(paths, order):  # type: ignore[no-untyped-def]
    from attribution.chain import build_chain

    return build_chain(paths, order).n_states


if __name__ == "__main__":
    main()
