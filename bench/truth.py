"""Which model is right? Every model against the known truth of simulated worlds.

For each world of :data:`attribution.worlds.WORLDS`, journeys are drawn from a seed,
the true credit of each channel is worked out by switching the channel off with
common random numbers (see :mod:`attribution.worlds`), and every registered model
that runs on unique paths is given the aggregated paths (with stages in the worlds
that have them; credit is compared per channel). Per model and world it prints:

- **error**: total absolute share error, ``sum over channels of |model share - true
  share|`` in percentage points (0 is perfect, 200 the most wrong possible);
- **worst**: the channel with the largest share error, and that error, signed
  (positive: the model gives it too much);
- **tau**: Kendall's tau-b between the model's channel credit and the truth (1: same
  ranking).

The intervals are bootstrap percentile intervals: journeys are resampled with
replacement (multinomial counts, the same replicates for every model), the truth is
recomputed on each resample from the same per-journey lifts, and the metric is taken
on each replicate. ``time_decay`` needs touch times, which aggregated paths do not
carry, so it is left out::

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# small dense solves are slower with a second BLAS thread on a 2-core machine
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from attribution import MODEL_NAMES, PathSet, get_model  # noqa: E402
from attribution.worlds import WORLDS, Simulation, simulate  # noqa: E402

MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "first_touch": ("first_touch", {}),
    "last_touch": ("last_touch", {}),
    "linear": ("linear", {}),
    "position_based": ("position_based", {}),
    **{f"markov_{k}": ("markov", {"order": k}) for k in (1, 2, 3, 4)},
    "shapley": ("shapley", {}),
    "shapley_simple": ("shapley_simple", {}),
    "shapley_rate": ("shapley_rate", {}),
    "shapley_ordered": ("shapley_ordered", {}),
    "data_driven": ("data_driven", {}),
}
"""Label -> (registered name, options): every model that runs on unique paths."""
NEEDS_TIMES = ("time_decay",)
# a model registered later must be added above (or to NEEDS_TIMES), not left out quietly
assert {name for name, _ in MODELS.values()} == set(MODEL_NAMES) - set(NEEDS_TIMES)


@dataclass(frozen=True)
class Score:
    error: float
    worst: str
    worst_error: float
    tau: float


def score(names: Sequence[str], credit: np.ndarray, truth: np.ndarray) -> Score:
    """Share error, worst channel and rank agreement of one credit vector."""
    total = truth.sum()
    model_share = credit / credit.sum() if credit.sum() else credit
    true_share = truth / total if total else truth
    gap = 100.0 * (model_share - true_share)
    worst = int(np.argmax(np.abs(gap)))
    tau = float(kendalltau(credit, truth).statistic)
    return Score(float(np.abs(gap).sum()), names[worst], float(gap[worst]), tau)


def channel_credit(label: str, paths: PathSet, names: Sequence[str]) -> np.ndarray:
    """The model's conversion credit per channel, in the world's channel order."""
    name, options = MODELS[label]
    model = get_model(name, **options)
    # the credit alone: data_driven's held-out scores are not compared with the truth
    credit = getattr(model, "attribute_replicate", model.attribute)(paths)
    by_name = dict(zip(credit.channel_names, credit.by_channel()[0], strict=True))
    return np.array([by_name.get(c, 0.0) for c in names])


def run_world(
    sim: Simulation, labels: Sequence[str], replicates: int, rng: np.random.Generator
) -> dict[str, tuple[Score, list[Score], float]]:
    names = sim.world.channel_names
    paths, truth = sim.to_pathset(), sim.true_credit()
    weights = rng.multinomial(
        sim.n_journeys, np.full(sim.n_journeys, 1 / sim.n_journeys), replicates
    )
    samples = [(sim.reweighted(w), sim.true_credit(w)) for w in weights]
    out = {}
    for label in labels:
        started = time.perf_counter()
        point = score(names, channel_credit(label, paths, names), truth)
        seconds = time.perf_counter() - started
        reps = [score(names, channel_credit(label, p, names), t) for p, t in samples]
        out[label] = (point, reps, seconds)
    return out


def interval(values: Sequence[float], digits: int) -> str:
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return ""
    low, high = np.percentile(finite, [2.5, 97.5])
    return f" [{low:.{digits}f}, {high:.{digits}f}]"


def row(world: str, label: str, point: Score, reps: list[Score], seconds: float) -> str:
    tau = "n/a" if not np.isfinite(point.tau) else f"{point.tau:.2f}"
    return (
        f"| {world} | {label} | {point.error:.1f}{interval([r.error for r in reps], 1)} "
        f"| {point.worst} {point.worst_error:+.1f} "
        f"| {tau}{interval([r.tau for r in reps], 2)} | {seconds:.2f} |"
    )


def truth_line(sim: Simulation) -> str:
    truth = sim.true_credit()
    shares = ", ".join(
        f"{c} {100 * t / truth.sum():.1f}%"
        for c, t in zip(sim.world.channel_names, truth, strict=True)
    )
    paths = sim.to_pathset()
    return (
        f"- **{sim.world.name}** ({sim.world.description}) {int(sim.total_conversions):,} "
        f"conversions, {paths.n_paths:,} unique paths; true shares: {shares}"
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
    sims = [simulate(WORLDS[w], args.journeys, args.seed) for w in args.worlds]
    for sim in sims:
        print(truth_line(sim))
    print(
        "\n| world | model | error, pp [95%] | worst channel, pp | Kendall tau [95%] | s |"
        "\n|---|---|---|---|---|---|"
    )
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    errors: dict[str, dict[str, float]] = {}
    for sim in sims:
        results = run_world(sim, args.models, args.replicates, rng)
        for label, (point, reps, seconds) in results.items():
            print(row(sim.world.name, label, point, reps, seconds), flush=True)
            errors.setdefault(label, {})[sim.world.name] = point.error
    print(f"\n{time.perf_counter() - started:.0f} s for the models and replicates\n")
    print(pivot(errors, args.worlds))


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
