"""Constraints tables refuse numbers of any size with InvalidParameter, never by
overflowing: an integer too large for a float is compared as it is."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from attribution import MODEL_NAMES, InvalidParameter, get_model, model_class
from attribution.bootstrap import CONSTRAINTS as BOOTSTRAP_CONSTRAINTS
from attribution.params import Param

HUGE = 10**400


def _numbers(table: Mapping[str, Param]) -> Iterator[tuple[str, Param]]:
    return ((name, p) for name, p in table.items() if p.kind in ("int", "float"))


def _tables() -> Iterator[tuple[str, Mapping[str, Param]]]:
    for model in MODEL_NAMES:
        yield model, model_class(model)._constraints
    yield "bootstrap", BOOTSTRAP_CONSTRAINTS


PARAMS = [
    pytest.param(param, id=f"{owner}.{name}")
    for owner, table in _tables()
    for name, param in _numbers(table)
]


@pytest.mark.parametrize("param", PARAMS)
@pytest.mark.parametrize("value", [HUGE, -HUGE])
def test_huge_integers_are_out_of_range(param: Param, value: int) -> None:
    assert not param.accepts(value)


MODEL_PARAMS = [
    (model, name) for model in MODEL_NAMES for name, _ in _numbers(model_class(model)._constraints)
]


@pytest.mark.parametrize(("model", "name"), MODEL_PARAMS)
def test_models_name_the_huge_parameter(model: str, name: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        get_model(model, **{name: HUGE})
    assert info.value.name == name


def test_seeds_take_any_non_negative_integer() -> None:
    assert Param("seed").accepts(HUGE)
    assert not Param("seed").accepts(-HUGE)


def test_integers_compare_exactly_with_float_bounds() -> None:
    share = Param("float", 0.0, 1.0)
    assert share.accepts(1) and share.accepts(0) and not share.accepts(2)
    assert Param("float", 0.0, float("inf"), open_high=True).accepts(10**300)
    assert not Param("float", 0.0, float("inf"), open_high=True).accepts(10**309)
    assert not Param("float", 0.0, 1.0).accepts(float("nan"))
