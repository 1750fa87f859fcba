"""Which model is right? Every model against the known truth of simulated worlds.

For each world of :data:`attribution.worlds.WORLDS`, journeys are drawn from a seed,
the true credit of each channel (conversions and value) is worked out by switching the
channel off with common random numbers (see :mod:`attribution.worlds`), and every
registered model is given the aggregated paths (with stages in the worlds that have
them; credit is compared per channel). The scoring is :mod:`attribution.truth`; per
model and world this prints, for conversion credit and for value credit:

- **error**: total absolute share error, ``sum over channels of |model share - true
  share|`` in percentage points (0 is perfect, 200 the most wrong possible);
- **worst**: the channel with the largest share error, and that error, signed
  (positive: the model gives it too much);
- **tau**: Kendall's tau-b between the model's channel credit and the truth (1: same
  ranking).

The intervals are bootstrap percentile intervals: journeys are resampled with
replacement (each journey counted as often as it is drawn, the same replicates for
every model, one replicate in memory at a time), the truth is recomputed on each
resample from the same per-journey lifts, and the metric is taken on each replicate.
``time_decay`` runs on a clock of one touch a day (see :mod:`attribution.truth`)::

    python bench/truth.py                          # 10^5 journeys, 100 replicates
    python bench/truth.py --journeys 1000000 --replicates 20
    python bench/truth.py --worlds closer order --models last_touch markov_1
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# small dense solves are slower with a second BLAS thread on a 2-core machine
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from attribution.truth import MODELS, ModelScore, Score, score_models  # noqa: E402
from attribution.worlds import WORLDS, Simulation, simulate  # noqa: E402

KINDS = ("conversions", "value")


def run_world(
    sim: Simulation, labels: Sequence[str], replicates: int, rng: np.random.Generator
) -> dict[str, tuple[ModelScore, list[ModelScore]]]:
    """Each model's scores on the full set and on every bootstrap replicate."""
    point = score_models(sim, labels)
    reps: dict[str, list[ModelScore]] = {label: [] for label in labels}
    n = sim.n_journeys
    for _ in range(replicates):
        weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        for label, result in score_models(sim, labels, weights).items():
            reps[label].append(result)
    return {label: (point[label], reps[label]) for label in labels}


def interval(values: Sequence[float], digits: int) -> str:
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return ""
    low, high = np.percentile(finite, [2.5, 97.5])
    return f" [{low:.{digits}f}, {high:.{digits}f}]"


def cells(point: Score, reps: list[Score]) -> str:
    tau = "n/a" if not np.isfinite(point.tau) else f"{point.tau:.2f}"
    return (
        f"{point.error:.1f}{interval([r.error for r in reps], 1)} "
        f"| {point.worst} {point.worst_error:+.1f} "
        f"| {tau}{interval([r.tau for r in reps], 2)}"
    )


def row(world: str, label: str, point: ModelScore, reps: list[ModelScore]) -> str:
    conv = cells(point.conversions, [r.conversions for r in reps])
    value = cells(point.value, [r.value for r in reps])
    return f"| {world} | {label} | {conv} | {value} | {point.seconds:.2f} |"


def truth_line(sim: Simulation) -> str:
    def shares(credit: np.ndarray) -> str:
        return ", ".join(
            f"{c} {100 * t / credit.sum():.1f}%"
            for c, t in zip(sim.world.channel_names, credit, strict=True)
        )

    paths = sim.to_pathset()
    return (
        f"- **{sim.world.name}** ({sim.world.description}) {int(sim.total_conversions):,} "
        f"conversions, {paths.n_paths:,} unique paths; true shares: "
        f"{shares(sim.true_credit())}; of value: {shares(sim.true_value_credit())}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--journeys", type=int, default=100_000)
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=list(WORLDS))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    print(
        f"{args.journeys:,} journeys per world, seed {args.seed}, {args.replicates} "
        f"bootstrap replicates; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}\n"
    )
    started = time.perf_counter()
    sims = [simulate(WORLDS[w], args.journeys, args.seed) for w in args.worlds]
    for sim in sims:
        print(truth_line(sim))
    print(f"\n{time.perf_counter() - started:.0f} s to simulate the worlds and their truth")
    print(
        "\n| world | model | error, pp [95%] | worst channel, pp | Kendall tau [95%] "
        "| value error, pp [95%] | worst for value, pp | value tau [95%] | s |"
        "\n|---|---|---|---|---|---|---|---|---|"
    )
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    errors: dict[str, dict[str, dict[str, float]]] = {kind: {} for kind in KINDS}
    for sim in sims:
        for label, (point, reps) in run_world(sim, args.models, args.replicates, rng).items():
            print(row(sim.world.name, label, point, reps), flush=True)
            for kind in KINDS:
                errors[kind].setdefault(label, {})[sim.world.name] = getattr(point, kind).error
    print(f"\n{time.perf_counter() - started:.0f} s for the models and replicates")
    for kind in KINDS:
        print(f"\nShare error of {kind} credit, pp:\n")
        print(pivot(errors[kind], args.worlds))


def pivot(errors: dict[str, dict[str, float]], worlds: Sequence[str]) -> str:
    """Share error (pp) per model and world, the best of each world in bold; the
    mean and the largest over the worlds."""
    best = {w: min(errors[m][w] for m in errors) for w in worlds}
    lines = [
        "| model | " + " | ".join(worlds) + " | mean | largest |",
        "|---|" + "---:|" * (len(worlds) + 2),
    ]
    for label, by_world in errors.items():
        cells = [
            f"**{by_world[w]:.1f}**" if by_world[w] == best[w] else f"{by_world[w]:.1f}"
            for w in worlds
        ]
        summary = [np.mean([by_world[w] for w in worlds]), max(by_world[w] for w in worlds)]
        cells += [f"{v:.1f}" for v in summary]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
