"""Every model against the known truth of a simulated world, for conversions and value.

:mod:`attribution.worlds` draws journeys and works out what each channel caused; this
module runs every registered model on the same journeys, aggregated to unique paths,
and scores its channel credit against the truth. ``bench/truth.py`` prints the scores
with bootstrap intervals; the test suite runs the same scoring at a small size.

Scores
------
For a credit vector against the true one (conversions, or value):

- **error**: total absolute share error, ``sum over channels of |model share - true
  share|`` in percentage points (0 is perfect, 200 the most wrong possible);
- **worst**: the channel with the largest share error, and that error, signed
  (positive: the model gives it too much);
- **tau**: Kendall's tau-b between the model's channel credit and the truth (1: the
  same ranking; NaN when either side is constant).

The true value credit is defined as the true conversion credit is: the value of the
conversions a channel caused (value generated minus value with the channel switched
off, same draws), scaled to the total value.

A clock for time decay
----------------------
The worlds have no clock: when a touch happens carries nothing beyond its place in
the journey. ``time_decay`` needs touch times, so every path is given one touch a day
(:data:`TOUCH_SPACING_SECONDS`), the last touch on the day of the conversion; time
decay then weighs a touch ``k`` touches before the last ``2 ** (-k / half-life in
days)``. Every journey of a unique path has the same times, so aggregation loses
nothing. The other models ignore times.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import kendalltau

from .models import MODEL_NAMES, get_model
from .paths import PathSet
from .worlds import Simulation

__all__ = [
    "MODELS",
    "TOUCH_SPACING_SECONDS",
    "ModelScore",
    "Score",
    "clocked",
    "score",
    "score_models",
]

FloatArray = NDArray[np.float64]

MARKOV_ORDERS = (1, 2, 3, 4)
MODELS: Mapping[str, tuple[str, dict[str, Any]]] = {
    label: spec
    for name in MODEL_NAMES
    for label, spec in (
        [(f"markov_{k}", ("markov", {"order": k})) for k in MARKOV_ORDERS]
        if name == "markov"
        else [(name, (name, {}))]
    )
}
"""Label -> (registered name, options): every registered model at its defaults, and
Markov at each order."""

TOUCH_SPACING_SECONDS = 86_400.0
"""Time between consecutive touches of a path on the clock given for time decay."""


@dataclass(frozen=True)
class Score:
    """How far one credit vector is from the truth (see the module docstring)."""

    error: float
    worst: str
    worst_error: float
    tau: float


@dataclass(frozen=True)
class ModelScore:
    """A model's scores for conversion and value credit, and its time in seconds."""

    conversions: Score
    value: Score
    seconds: float


def score(names: Sequence[str], credit: ArrayLike, truth: ArrayLike) -> Score:
    """Share error, worst channel and rank agreement of ``credit`` against ``truth``."""
    c, t = np.asarray(credit, np.float64), np.asarray(truth, np.float64)
    model_share = c / c.sum() if c.sum() else c
    true_share = t / t.sum() if t.sum() else t
    gap = 100.0 * (model_share - true_share)
    worst = int(np.argmax(np.abs(gap)))
    tau = _tau(c, t)
    return Score(float(np.abs(gap).sum()), names[worst], float(gap[worst]), tau)


def _tau(credit: FloatArray, truth: FloatArray) -> float:
    if np.ptp(credit) == 0 or np.ptp(truth) == 0:
        return float("nan")  # a constant side has no ranking to agree with
    return float(kendalltau(credit, truth).statistic)


def clocked(paths: PathSet) -> PathSet:
    """``paths`` with one touch a day, each path's last touch at time 0."""
    last = paths.offsets[1:] - 1
    steps_before_last = last[paths.path_index] - np.arange(len(paths.tokens))
    return replace(paths, times=-TOUCH_SPACING_SECONDS * steps_before_last.astype(np.float64))


def channel_credit(
    label: str, paths: PathSet, names: Sequence[str]
) -> tuple[FloatArray, FloatArray]:
    """The model's (conversion, value) credit per channel, in the order of ``names``."""
    name, options = MODELS[label]
    model = get_model(name, **options)
    # the credit alone: data_driven's held-out scores are not compared with the truth
    credit = getattr(model, "attribute_replicate", model.attribute)(paths)
    conv, value = credit.by_channel()
    out = np.zeros((2, len(names)))
    for k, channel in enumerate(credit.channel_names):
        out[:, names.index(channel)] = conv[k], value[k]
    return out[0], out[1]


def score_models(
    sim: Simulation, labels: Sequence[str], weights: ArrayLike | None = None
) -> dict[str, ModelScore]:
    """Score each model of ``labels`` on ``sim``'s journeys, each counted ``weights[i]``
    times (a bootstrap resample; once each without)."""
    names = list(sim.world.channel_names)
    paths = sim.to_pathset() if weights is None else sim.reweighted(weights)
    paths = clocked(paths)
    truth, value_truth = sim.true_credit(weights), sim.true_value_credit(weights)
    out = {}
    for label in labels:
        started = time.perf_counter()
        conv, value = channel_credit(label, paths, names)
        seconds = time.perf_counter() - started
        out[label] = ModelScore(
            score(names, conv, truth), score(names, value, value_truth), seconds
        )
    return out
