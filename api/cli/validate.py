"""``pathcredit validate``: the holdout of ``POST /v1/attribution/validate`` from the
command line, printed as a table (or the API's JSON with ``--json``)."""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

from .. import store
from ..service import validation
from ..store import runs


def add_parser(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "validate", help="score the models that predict conversion on held-out journeys"
    )
    parser.add_argument("--workspace", default="default", help="workspace name")
    parser.add_argument("--from", dest="date_from", type=date.fromisoformat, help="first day")
    parser.add_argument("--to", dest="date_to", type=date.fromisoformat, help="last day")
    parser.add_argument("--folds", type=int, default=5, help="folds (2 to 10, default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds (default 0)")
    parser.add_argument(
        "--orders", type=int, nargs="+", default=[1, 2, 3, 4], help="Markov orders scored"
    )
    parser.add_argument("--alpha", type=float, help="data_driven's L2 penalty (default 1)")
    parser.add_argument("--pairwise", action="store_true", help="data_driven's pairwise terms")
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer")
    return parser


def cmd_validate(args: argparse.Namespace, db: store.Database) -> int:
    body: dict[str, Any] = {"n_folds": args.folds, "seed": args.seed, "orders": args.orders}
    for key in ("date_from", "date_to"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    options: dict[str, Any] = {"pairwise": True} if args.pairwise else {}
    if args.alpha is not None:
        options["alpha"] = args.alpha
    body["data_driven"] = options
    with db.transaction() as conn:
        workspace = store.get_workspace(conn, args.workspace)
        defaults = runs.get_settings(conn, workspace.workspace_id)
    plan = validation.plan_validation(body, defaults)
    out = validation.run_validation(db, workspace.workspace_id, plan)
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(f"{out['journeys']:g} journeys, {out['unique_paths']} unique paths, {args.folds} folds")
    print(f"{'model':<14} {'metric':<9} {'held out':>10}  {'interval':<21} rank")
    for row in out["scores"]:
        name = row["model"] + (f" {row['order']}" if row["order"] is not None else "")
        interval = f"[{_num(row['ci_low'])}, {_num(row['ci_high'])}]"
        print(
            f"{name:<14} {row['metric']:<9} {_num(row['value']):>10}  {interval:<21} {row['rank']}"
        )
    print("not scored: " + ", ".join(r["model"] for r in out["not_scored"]))
    return 0


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.5f}"
