"""Holdout validation of the predicting models on a workspace's own data.

The selection is read as a run reads it (date range, filters, channel groups,
repeat collapsing, workspace defaults), and :func:`attribution.holdout.validate`
scores Markov orders and the data-driven model on it. The work is k fits of the
data-driven model over the unique paths, in the request's thread, so the number of
unique paths times folds is capped: over :data:`MAX_PATH_FOLDS` the request is
refused before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from attribution import InvalidParameter
from attribution.data_driven import DataDriven
from attribution.holdout import CONSTRAINTS, Validation, validate

from .. import store
from ..store import runs
from .errors import FieldError, InvalidInput
from .runs import build_model
from .selection import Selection, load_selection, selection_from, selection_warnings

MAX_PATH_FOLDS = 2_500_000
"""Most unique paths x folds a validation reads. On the machine of BENCHMARKS.md, 10^6
journeys at 5 folds took 7 s of CPU without stages (203k unique paths) and 28 s with 5
stages (294k); the cap is about 1.7 times the latter."""

DEFAULTS = {"n_folds": 5, "seed": 0, "orders": [1, 2, 3, 4], "level": 0.95}
ARGS = {"n_folds": "n_folds", "seed": "random_state", "level": "level"}


@dataclass(frozen=True)
class ValidationPlan:
    """What a validation reads and how it folds, every option checked."""

    selection: Selection
    n_folds: int
    seed: int | None
    orders: tuple[int, ...]
    level: float
    data_driven: DataDriven


def plan_validation(data: Mapping[str, Any], defaults: Mapping[str, Any]) -> ValidationPlan:
    """Merge a loaded request with the defaults; raise InvalidInput on a bad option."""
    merged = {**DEFAULTS, **{k: data[k] for k in DEFAULTS if k in data}}
    for key, arg in ARGS.items():
        param = CONSTRAINTS[arg]
        if not param.accepts(merged[key]):
            detail = f"{key}={merged[key]!r} is not allowed: {key} must be {param.describe()}"
            raise InvalidInput(detail, [FieldError(f"/{key}", detail)])
    options = {**(defaults.get("options") or {}).get("data_driven", {})}
    options.update(data.get("data_driven") or {})
    options.update((data.get("options") or {}).get("data_driven") or {})
    model = cast(DataDriven, build_model("data_driven", options))
    return ValidationPlan(
        selection=selection_from(data, defaults),
        n_folds=merged["n_folds"],
        seed=merged["seed"],
        orders=tuple(merged["orders"]),
        level=merged["level"],
        data_driven=model,
    )


def run_validation(db: store.Database, workspace_id: int, plan: ValidationPlan) -> dict[str, Any]:
    """Read the selection, check the cap, validate; the result as the API returns it."""
    with db.transaction() as conn:
        version = runs.data_version(conn, workspace_id)
        paths = load_selection(conn, workspace_id, plan.selection, version=version)
        notes = selection_warnings(conn, workspace_id, plan.selection, need_times=False)
    work = paths.n_paths * plan.n_folds
    if work > MAX_PATH_FOLDS:
        detail = (
            f"The selection has {paths.n_paths:,} unique paths; with {plan.n_folds} folds that "
            f"is {work:,} path-folds, over the {MAX_PATH_FOLDS:,} a validation reads. Narrow "
            "the date range or filters, or use fewer folds."
        )
        raise InvalidInput(detail, [FieldError("/n_folds", detail)])
    try:
        result = validate(
            paths,
            n_folds=plan.n_folds,
            random_state=plan.seed,
            orders=plan.orders,
            data_driven=plan.data_driven,
            level=plan.level,
        )
    except InvalidParameter as e:
        raise InvalidInput(str(e), [FieldError(f"/{e.name}", str(e))]) from None
    return _out(result, plan, paths.n_paths, notes)


def _out(
    result: Validation, plan: ValidationPlan, unique_paths: int, notes: list[str]
) -> dict[str, Any]:
    return {
        "parameters": {
            **plan.selection.parameters(),
            "n_folds": plan.n_folds,
            "seed": plan.seed,
            "orders": list(plan.orders),
            "level": plan.level,
            "data_driven": {
                "alpha": plan.data_driven.alpha,
                "repeats": plan.data_driven.repeats,
                "position": plan.data_driven.position,
                "pairwise": plan.data_driven.pairwise,
            },
        },
        "journeys": result.journeys,
        "unique_paths": unique_paths,
        "interval": (
            f"pooled score +- t(k - 1) x sd of the {plan.n_folds} fold scores / sqrt(k), "
            f"level {plan.level:g}; folds share training journeys, so it is indicative"
        ),
        "scores": result.rows(),
        "not_scored": [{"model": m, "reason": r} for m, r in result.not_scored.items()],
        "warnings": notes,
    }
