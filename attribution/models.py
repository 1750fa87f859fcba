"""The registry of attribution models, by the names the API and the CLI use.

Models are imported lazily so that importing :mod:`attribution` stays cheap.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any, Protocol

from .exceptions import InvalidParameter, UnknownModel
from .paths import PathSet
from .result import Credit

REGISTRY: Mapping[str, str] = {
    "first_touch": "attribution.heuristics:FirstTouch",
    "last_touch": "attribution.heuristics:LastTouch",
    "linear": "attribution.heuristics:Linear",
    "position_based": "attribution.heuristics:PositionBased",
    "time_decay": "attribution.heuristics:TimeDecay",
    "markov": "attribution.markov:Markov",
    "shapley": "attribution.shapley:Shapley",
    "shapley_simple": "attribution.shapley:ShapleySimple",
    "shapley_rate": "attribution.shapley:ShapleyRate",
    "shapley_ordered": "attribution.shapley:ShapleyOrdered",
    "data_driven": "attribution.data_driven:DataDriven",
}
"""Model name -> ``module:Class``. Every class is a frozen dataclass of hyper-parameters."""

MODEL_NAMES: tuple[str, ...] = tuple(REGISTRY)


class Model(Protocol):
    """What every model is: hyper-parameters and one verb."""

    name: str

    def attribute(self, paths: PathSet) -> Credit: ...


def model_class(name: str) -> type[Any]:
    """The class registered under ``name``."""
    try:
        target = REGISTRY[name]
    except KeyError:
        raise UnknownModel(
            f"model={name!r} is not allowed: model must be one of {', '.join(MODEL_NAMES)}"
        ) from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def get_model(name: str, /, **options: Any) -> Model:
    """Build the model ``name`` with ``options``; unknown options raise InvalidParameter."""
    cls = model_class(name)
    # fields() leaves out ClassVars such as ``name`` and ``_constraints``, which
    # ``__dataclass_fields__`` lists too and the constructor would refuse
    allowed = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    for key in options:
        if key not in allowed:
            raise InvalidParameter(
                f"{name}.{key}",
                options[key],
                f"one of the options of {name}: " + (", ".join(sorted(allowed)) or "(none)"),
            )
    return cls(**options)  # type: ignore[no-any-return]
