"""The work a run will take, estimated before it runs, to decide what may run in a
request's thread.

The unit is one unique path handled once by one model. Most models are linear in
unique paths. The Shapley values of the Markov-chain game (``shapley``) solve one small
chain per coalition of players (the states present: channels, or channels by stage):
every one of the 2^n coalitions up to ``max_exact_players``, else ``n_samples``
permutations of n coalitions each; a solve costs about n units. ``shapley_rate`` sums
over its 2^n player sets. Markov removal effects solve the chain once per player.
``data_driven`` fits its conversion model once, and once per fold of its held-out
scores, each fit a few Newton steps over the unique paths and its weights.
Bootstrap intervals run every model once per replicate.

On the machine of the figures in the README, one unit took 50 to 150 ns: a budget of
2 x 10^8 units is 10 to 30 s of one core.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attribution import PathSet
from attribution.models import Model


@dataclass(frozen=True)
class Estimate:
    """A run's estimated work and what it was made of."""

    unique_paths: int
    players: int
    replicates: int
    work: int


def players(paths: PathSet) -> int:
    """The players of the Shapley games: the states some touch is in."""
    return int(paths.state_present.sum())


def model_work(name: str, model: Model, unique_paths: int, n: int) -> int:
    """Units of one model's one pass over ``unique_paths`` paths with ``n`` players."""
    if name == "shapley":
        exact = n <= int(getattr(model, "max_exact_players", 0))
        coalitions = (1 << n) if exact else int(getattr(model, "n_samples", 1)) * n
        return unique_paths + coalitions * n
    if name == "shapley_rate":
        return unique_paths + (1 << min(n, 64)) * n
    if name == "data_driven":
        # Newton fits of the full data and of each fold, over about 4 weights per
        # player (more with pairwise terms), plus each converting path's game
        weights = 4 * n + (n * n // 2 if getattr(model, "pairwise", False) else 0)
        fits = 1 + int(getattr(model, "n_folds", 0))
        return unique_paths * fits * (8 + 3 * weights)
    if name == "markov":
        order = getattr(model, "order", 1)
        if order == "auto":  # every candidate fitted on every fold, then the chosen one
            orders = tuple(getattr(model, "auto_orders", (1,)))
            folds = int(getattr(model, "n_folds", 1)) + 1
            return folds * sum(unique_paths * int(o) + n * n for o in orders)
        return unique_paths * int(order) + n * n
    return unique_paths


def estimate(
    built: Mapping[str, Model], confidence: Mapping[str, Any] | None, paths: PathSet
) -> Estimate:
    """The work of running every model of ``built`` over ``paths`` (unique paths), with
    bootstrap replicates when ``confidence`` asks for intervals."""
    unique, n = paths.n_paths, players(paths)
    replicates = 1 if confidence is None else int(confidence["replicates"])
    work = replicates * sum(model_work(name, m, unique, n) for name, m in built.items())
    return Estimate(unique, n, replicates, work)
