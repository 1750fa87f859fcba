"""``pathcredit demo``: a generated data set loaded through the bulk path, attributed.

The journeys come from the engine's seeded generator (``attribution.synthetic``), so a
newcomer sees real output at once, and the same seed always gives the same numbers.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from typing import Any

from .. import store
from ..config import Settings

TOP_ROWS = 12


def run_demo(
    args: argparse.Namespace,
    settings: Settings,
    db: store.Database,
    ensure_workspace: Callable[[store.Database, str], str | None],
    import_chunks: Callable[..., store.WriteCounts],
) -> int:
    from attribution import PathSet, attribute
    from attribution.synthetic import generate

    key = ensure_workspace(db, args.workspace)
    journeys = generate(args.journeys, seed=args.seed)
    counts = import_chunks(settings, args.workspace, "ndjson", _lines(journeys))
    print(
        f"Loaded {counts.received} generated journeys into workspace {args.workspace!r} "
        f"({counts.created} new, {counts.replaced} replaced, {counts.unchanged} unchanged)."
    )
    with db.transaction() as conn:
        workspace = store.get_workspace(conn, args.workspace)
        arrays = store.load_paths(conn, workspace.workspace_id)
    db.close()
    paths = PathSet.from_arrays(**arrays)
    credit = attribute(paths, "markov", order=1)
    rows = [r for r in credit.to_rows() if r["dimension"] == "channel"]
    print(f"\nMarkov order 1 over {len(arrays['offsets']) - 1} unique paths, credit per channel:")
    _print_table(rows[:TOP_ROWS])
    _print_access(args.workspace, key)
    return 0


def _print_access(workspace: str, key: str | None) -> None:
    """The demo data lives in its own workspace, not the server's ``default``: say so,
    and how to reach it over the API."""
    from . import command_name

    print(f"\nThe journeys are in workspace {workspace!r}, apart from 'default'.")
    if key:
        print(f"Its API key (shown once; use it instead of the default key):\n{key}")
    else:
        print(f"It existed already; another key for it: {command_name()} key create {workspace}")


def _lines(journeys: Any, batch: int = 5000) -> Iterator[bytes]:
    for start in range(0, journeys.n_journeys, batch):
        records = journeys.records(start, start + batch)
        yield ("\n".join(json.dumps(r) for r in records) + "\n").encode()


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'channel':<20} {'conversions':>12} {'value':>12} {'share':>7}")
    for r in rows:
        print(
            f"{r['channel']:<20} {r['conversions']:>12.1f} {r['value']:>12.2f} {r['share']:>7.1%}"
        )
