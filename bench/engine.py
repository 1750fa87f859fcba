"""The Markov engine against ChannelAttribution's ``markov_model``, side by side.

For each size (journeys) and channel count, one seeded synthetic data set without
stages, aggregated to unique paths, is given to both engines: ChannelAttribution as a
pandas DataFrame of ``a > b > c`` strings with ``total_conversions``, ``total_null``
and ``total_conversion_value`` at its defaults (``ncore=1``, ``conv_par=0.05``), and
``Markov(order=k).attribute(paths)`` on the integer-coded path set. Every
measurement runs in a fresh subprocess with BLAS pinned to one thread: wall time is
the median over repetitions, peak memory the largest rise of the process's resident
set above where it stood before the call. The table also gives the largest absolute
gap between ChannelAttribution's simulated removal effects and our exact ones, and
times order-1 Markov plus ``shapley_simple`` on one core::

    python bench/engine.py                        # 10^4..10^6 x 10/20/30 channels
    python bench/engine.py --sizes 10000000 --channels 30 --reps 1   # the 10^7 run

ChannelAttribution 2.2.5 imports matplotlib at load time but needs it only for
plots; when matplotlib is absent an empty stand-in module is registered first.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from attribution import PathSet, get_model
from attribution.paths import CA_SEPARATOR
from attribution.synthetic import generate

MARK = "@@result "
"""Prefix of the child's JSON line (ChannelAttribution prints its own lines)."""

ONE_THREAD = {v: "1" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
"""Set in every child before numpy loads: a second BLAS thread on a busy 2-core
machine makes small dense products orders of magnitude slower."""


# ---------------------------------------------------------------------- data
def prepare(n_journeys: int, n_channels: int, folder: Path, seed: int = 0) -> dict[str, Any]:
    """Generate, aggregate and save one data set; return its facts and file names."""
    paths = generate(n_journeys, n_channels=n_channels, seed=seed).to_pathset(stages=False)
    stem = folder / f"{n_journeys}x{n_channels}"
    np.savez(
        f"{stem}.npz",
        channel_names=np.array(paths.channel_names),
        tokens=paths.tokens,
        offsets=paths.offsets,
        conversions=paths.conversions,
        nulls=paths.nulls,
        value=paths.value,
    )
    names = paths.channel_names
    bounds = paths.offsets.tolist()
    tokens = paths.tokens.tolist()
    strings = [
        CA_SEPARATOR.join(names[t] for t in tokens[a:b]) for a, b in itertools.pairwise(bounds)
    ]
    import pandas as pd

    frame = pd.DataFrame(
        {
            "path": strings,
            "total_conversions": paths.conversions,
            "total_null": paths.nulls,
            "total_conversion_value": paths.value,
        }
    )
    frame.to_pickle(f"{stem}.pkl")
    return {"stem": str(stem), "unique_paths": paths.n_paths, "touches": len(paths.tokens)}


def load_paths(stem: str) -> PathSet:
    data = np.load(f"{stem}.npz")
    return PathSet(
        channel_names=tuple(str(c) for c in data["channel_names"]),
        tokens=data["tokens"],
        offsets=data["offsets"],
        conversions=data["conversions"],
        nulls=data["nulls"],
        value=data["value"],
    )


# ---------------------------------------------------------------------- child side
def rss_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def measured(call: Callable[[], Any]) -> tuple[float, float, float, Any]:
    """(wall seconds, CPU seconds, peak MiB above the resident set before, result).

    CPU time is reported beside wall time because other work on a shared machine
    stretches wall time without changing the work done.
    """
    try:
        # resets the high-water mark to the current resident set (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        pass
    before = rss_kib("VmRSS")
    start, cpu = time.perf_counter(), time.process_time()
    result = call()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return seconds, cpu, max(0, rss_kib("VmHWM") - before) / 1024, result


def run_ours(stem: str, order: int, reps: int, with_shapley: bool) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    # warm up outside the timing: loading scipy.sparse.linalg is not the engine
    tiny = PathSet.from_lists([["a", "b"], ["b"]], [1, 0], [1, 1])
    get_model("markov", order=order).attribute(tiny)
    get_model("shapley_simple").attribute(tiny)
    times, cpus, peaks = [], [], []
    effects: dict[str, float] = {}
    details: dict[str, Any] = {}
    for _ in range(reps):
        paths = load_paths(stem)  # fresh: cached per-touch arrays count in every rep

        def call(paths: PathSet = paths) -> Any:
            credit = get_model("markov", order=order).attribute(paths)
            if with_shapley:
                get_model("shapley_simple").attribute(paths)
            return credit

        seconds, cpu, peak, credit = measured(call)
        times.append(seconds)
        cpus.append(cpu)
        peaks.append(peak)
        fx = credit.removal_effects["channel"]
        effects = {c: float(x) for c, x in zip(credit.channel_names, fx, strict=True)}
        details = {k: credit.details[k] for k in ("n_states", "solver", "p_conversion")}
    return {"times": times, "cpu": cpus, "peak_mib": max(peaks), "effects": effects, **details}


def run_ca(stem: str, order: int, reps: int) -> dict[str, Any]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        stand_in = types.ModuleType("matplotlib")
        stand_in.pyplot = types.ModuleType("matplotlib.pyplot")  # type: ignore[attr-defined]
        sys.modules["matplotlib"] = stand_in
        sys.modules["matplotlib.pyplot"] = stand_in.pyplot  # type: ignore[attr-defined]
    import pandas as pd
    from ChannelAttribution import markov_model

    frame = pd.read_pickle(f"{stem}.pkl")
    times, cpus, peaks = [], [], []
    effects: dict[str, float] = {}
    for _ in range(reps):

        def call() -> Any:
            return markov_model(
                frame,
                "path",
                "total_conversions",
                var_value="total_conversion_value",
                var_null="total_null",
                order=order,
                out_more=True,
                verbose=False,
                flg_pro=False,
            )

        seconds, cpu, peak, out = measured(call)
        times.append(seconds)
        cpus.append(cpu)
        peaks.append(peak)
        fx = out["removal_effects"]
        effects = dict(
            zip(fx["channel_name"], map(float, fx["removal_effects_conversion"]), strict=True)
        )
    return {"times": times, "cpu": cpus, "peak_mib": max(peaks), "effects": effects}


def child(spec: dict[str, Any]) -> None:
    if spec["engine"] == "ca":
        out = run_ca(spec["stem"], spec["order"], spec["reps"])
    else:
        out = run_ours(spec["stem"], spec["order"], spec["reps"], spec.get("shapley", False))
    print(MARK + json.dumps(out), flush=True)


# ---------------------------------------------------------------------- parent side
def spawn(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **ONE_THREAD},
    )
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])  # type: ignore[no-any-return]
    raise RuntimeError(f"measurement {spec} failed:\n{proc.stderr[-2000:]}")


def gap(a: dict[str, float], b: dict[str, float]) -> float:
    return max(abs(a[c] - b.get(c, 0.0)) for c in a)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import scipy

    return (
        f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, BLAS pinned to 1 thread"
    )


HEADER = (
    "| journeys | channels | unique paths | order | states | CA wall s | ours wall s | speed-up "
    "| CA CPU s | ours CPU s | CPU speed-up | CA peak MiB | ours peak MiB "
    "| max abs gap in removal effect |\n" + "|---" * 14 + "|"
)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    print(f"machine: {machine()}", file=sys.stderr)
    rows = [HEADER]
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            reps = args.reps if n < 10**7 else 1
            for ch in args.channels:
                data = prepare(n, ch, Path(tmp))
                for order in args.orders:
                    spec = {"stem": data["stem"], "order": order, "reps": reps}
                    ours = spawn({"engine": "ours", **spec})
                    with_ca = order in args.ca_orders and not args.no_ca
                    ca = spawn({"engine": "ca", **spec}) if with_ca else None
                    rows.append(table_row(n, ch, order, data, ours, ca))
                    print(rows[-1], file=sys.stderr, flush=True)
                if args.shapley and (n, ch) == (10**6, 20):
                    both = spawn(
                        {
                            "engine": "ours",
                            "stem": data["stem"],
                            "order": 1,
                            "reps": reps,
                            "shapley": True,
                        }
                    )
                    notes.append(shapley_note(data, both))
                    print(notes[-1], file=sys.stderr, flush=True)
                Path(data["stem"] + ".npz").unlink()
                Path(data["stem"] + ".pkl").unlink()
    print("\n".join([*rows, "", *notes]))
    return 0


def shapley_note(data: dict[str, Any], both: dict[str, Any]) -> str:
    return (
        f"order-1 Markov + shapley_simple, 10^6 journeys x 20 channels "
        f"({data['unique_paths']} unique paths), one core: median wall "
        f"{statistics.median(both['times']):.3f} s, CPU {statistics.median(both['cpu']):.3f} s "
        f"over {len(both['times'])} runs (wall: {', '.join(f'{t:.3f}' for t in both['times'])}), "
        f"peak {both['peak_mib']:.0f} MiB"
    )


def table_row(
    n: int,
    ch: int,
    order: int,
    data: dict[str, Any],
    ours: dict[str, Any],
    ca: dict[str, Any] | None,
) -> str:
    wall, cpu = statistics.median(ours["times"]), statistics.median(ours["cpu"])
    cells = [f"{n:.0e}", str(ch), str(data["unique_paths"]), str(order), str(ours["n_states"])]
    if ca is None:
        ca_wall = ca_cpu = "—"
        wall_ratio = cpu_ratio = ca_mem = diff = "—"
    else:
        ca_w, ca_c = statistics.median(ca["times"]), statistics.median(ca["cpu"])
        ca_wall, ca_cpu = f"{ca_w:.3f}", f"{ca_c:.3f}"
        wall_ratio, cpu_ratio = f"{ca_w / wall:.1f}x", f"{ca_c / cpu:.1f}x"
        ca_mem = f"{ca['peak_mib']:.0f}"
        diff = f"{gap(ours['effects'], ca['effects']):.4f}"
    cells += [ca_wall, f"{wall:.3f}", wall_ratio, ca_cpu, f"{cpu:.3f}", cpu_ratio]
    cells += [ca_mem, f"{ours['peak_mib']:.0f}", diff]
    return "| " + " | ".join(cells) + " |"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**4, 10**5, 10**6])
    parser.add_argument("--channels", type=int, nargs="+", default=[10, 20, 30])
    parser.add_argument("--orders", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--ca-orders", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--reps", type=int, default=3, help="repetitions (1 at 10^7)")
    parser.add_argument("--no-ca", action="store_true", help="skip ChannelAttribution")
    parser.add_argument(
        "--no-shapley", dest="shapley", action="store_false", help="skip Markov + shapley_simple"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
