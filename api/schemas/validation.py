"""Marshmallow schemas of the holdout validation (``POST /v1/attribution/validate``)."""

from __future__ import annotations

from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from attribution.holdout import CONSTRAINTS
from attribution.markov import ORDERS

from .attribution import DataDrivenOptions, param_schema
from .common import StrictInteger
from .selection import SelectionIn


class ValidateIn(SelectionIn):
    """A holdout: the data selection as a run takes it, folds, seed and the options of
    the data-driven model's fit. Absent selection fields take the workspace defaults."""

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "n_folds": 5,
        "seed": 0,
        "date_from": "2024-03-01",
        "date_to": "2024-03-31",
        "options": {"data_driven": {"alpha": 1.0, "pairwise": False}},
    }

    n_folds = StrictInteger(
        metadata={
            "description": "Folds the journeys are dealt to, default 5.",
            **param_schema(CONSTRAINTS["n_folds"]),
        }
    )
    seed = StrictInteger(
        allow_none=True,
        metadata={
            "description": "Seed of the fold assignment, default 0; null draws a fresh one.",
            **param_schema(CONSTRAINTS["random_state"]),
        },
    )
    orders = fields.List(
        StrictInteger(validate=validate.OneOf(ORDERS)),
        validate=validate.Length(min=1, max=len(ORDERS)),
        metadata={"description": "Markov orders scored, default [1, 2, 3, 4]."},
    )
    level = fields.Float(
        metadata={
            "description": "Level of the intervals across folds, default 0.95.",
            **param_schema(CONSTRAINTS["level"]),
        }
    )
    options = fields.Nested(
        ma.Schema.from_dict(
            {"data_driven": fields.Nested(DataDrivenOptions)}, name="ValidateOptionsIn"
        ),
        metadata={
            "description": 'Options per model, as a run takes them: `{"data_driven": {...}}` '
            "(its fit options are the ones scored)."
        },
    )
    data_driven = fields.Nested(
        DataDrivenOptions,
        metadata={
            "description": "Older spelling of `options.data_driven`; where both name an "
            "option, `options.data_driven` wins.",
            "deprecated": True,
        },
    )


class ScoreRow(ma.Schema):
    """One model's held-out score on one metric."""

    model = fields.String(required=True, metadata={"description": "markov or data_driven."})
    order = fields.Integer(
        required=True, allow_none=True, metadata={"description": "Markov order; null otherwise."}
    )
    metric = fields.String(
        required=True,
        metadata={"description": "log_loss and brier (lower is better), auc (higher is better)."},
    )
    value = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Pooled over every held-out journey; null if undefined."},
    )
    ci_low = fields.Float(required=True, allow_none=True)
    ci_high = fields.Float(required=True, allow_none=True)
    folds = fields.List(
        fields.Float(allow_none=True),
        required=True,
        metadata={"description": "The score on each fold."},
    )
    rank = fields.Integer(
        required=True, allow_none=True, metadata={"description": "1 is the best on this metric."}
    )


class NotScored(ma.Schema):
    model = fields.String(required=True)
    reason = fields.String(required=True)


class ValidationOut(ma.Schema):
    """Held-out scores of every model that predicts conversion, and the others named."""

    parameters = fields.Dict(
        required=True, metadata={"description": "Every effective selection and fold setting."}
    )
    journeys = fields.Float(required=True, metadata={"description": "Journeys dealt to folds."})
    unique_paths = fields.Integer(required=True)
    interval = fields.String(required=True, metadata={"description": "How intervals are made."})
    scores = fields.List(fields.Nested(ScoreRow), required=True)
    not_scored = fields.List(fields.Nested(NotScored), required=True)
    warnings = fields.List(fields.String(), required=True)
