"""POST /v1/attribution/validate end to end: journeys in, held-out scores out, checked
against a hand-worked holdout; bad options and an over-large selection are 422."""

from __future__ import annotations

import math
from typing import Any

import pytest
from flask.testing import FlaskClient

from attribution import MODEL_NAMES
from tests.helpers import assert_problem, journey, pointers, touch


def journeys(channels: list[str], converted: bool, count: int, day: int) -> list[dict[str, Any]]:
    stamp = f"2024-03-{day:02d}T1{{}}:00:00Z"
    return [
        journey(
            f"{'-'.join(channels)}-{converted}-{day}-{k}",
            customer_id=f"c-{day}-{k}",
            touchpoints=[touch(c, stamp.format(i), None) for i, c in enumerate(channels)],
            converted=converted,
            value=10.0 if converted else 0.0,
            converted_at=stamp.format(8) if converted else None,
        )
        for k in range(count)
    ]


@pytest.fixture
def even(client: FlaskClient, auth: dict[str, str]) -> None:
    """a: 2 converting, 2 not; b > a: the same; b: 4 not (day 1); and 3 journeys of c
    on day 9, outside the range the tests select."""
    batch = (
        journeys(["a"], True, 2, 1)
        + journeys(["a"], False, 2, 1)
        + journeys(["b", "a"], True, 2, 1)
        + journeys(["b", "a"], False, 2, 1)
        + journeys(["b"], False, 4, 1)
        + journeys(["c"], True, 3, 9)
    )
    response = client.post("/v1/journeys", json={"journeys": batch}, headers=auth)
    assert response.status_code == 200, response.get_json()


def validate(client: FlaskClient, auth: dict[str, str], **body: Any) -> Any:
    return client.post("/v1/attribution/validate", json=body, headers=auth)


def test_scores_worked_by_hand(client, auth, even) -> None:
    """Two folds take half of every path's journeys; order 1 predicts (2 + 2.5/7) / 5
    after a and (2.5/7) / 3 after b from either training half (see
    tests/attribution/test_holdout.py)."""
    response = validate(client, auth, n_folds=2, date_from="2024-03-01", date_to="2024-03-02")
    assert response.status_code == 200, response.get_json()
    out = response.get_json()
    assert out["journeys"] == 12
    assert out["unique_paths"] == 3
    rows = {(r["model"], r["order"], r["metric"]): r for r in out["scores"]}
    pa, pb = (2 + 2.5 / 7) / 5, (2.5 / 7) / 3
    loss = -(2 * math.log(pa) + 2 * math.log(1 - pa) + 2 * math.log(1 - pb)) / 6
    one = rows[("markov", 1, "log_loss")]
    assert one["value"] == pytest.approx(loss, rel=1e-12)
    assert one["folds"] == [pytest.approx(loss, rel=1e-12)] * 2
    assert rows[("markov", 1, "auc")]["value"] == pytest.approx(0.75, rel=1e-12)
    dd = rows[("data_driven", None, "log_loss")]
    assert dd["ci_low"] <= dd["value"] <= dd["ci_high"]
    listed = {r["model"] for r in out["not_scored"]} | {"markov", "data_driven"}
    assert listed == set(MODEL_NAMES)
    assert out["parameters"]["n_folds"] == 2


def test_orders_and_fit_options_are_used(client, auth, even) -> None:
    body = {"orders": [2], "data_driven": {"alpha": 3.0, "position": False}}
    out = validate(client, auth, **body).get_json()
    assert {(r["model"], r["order"]) for r in out["scores"]} == {
        ("markov", 2),
        ("data_driven", None),
    }
    assert out["parameters"]["data_driven"]["alpha"] == 3.0
    assert out["parameters"]["data_driven"]["position"] is False
    assert out["journeys"] == 15
    # the shape runs take: options under "options"; it wins over the older spelling
    older = body["data_driven"]
    shaped = {"orders": [2], "options": {"data_driven": {"alpha": 2.0}}, "data_driven": older}
    again = validate(client, auth, **shaped).get_json()
    assert "parameters" in again, again
    assert again["parameters"]["data_driven"]["alpha"] == 2.0
    assert again["parameters"]["data_driven"]["position"] is False  # from the older spelling


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"n_folds": 1}, "/n_folds"),
        ({"n_folds": 11}, "/n_folds"),
        ({"level": 1.5}, "/level"),
        ({"orders": [5]}, "/orders/0"),
        ({"data_driven": {"alpha": 0}}, "/data_driven/alpha"),
        ({"data_driven": {"shrink": 1}}, "/data_driven/shrink"),
        ({"options": {"data_driven": {"alpha": 0}}}, "/options/data_driven/alpha"),
    ],
)
def test_bad_options_are_invalid_input(client, auth, even, body, pointer) -> None:
    problem = assert_problem(validate(client, auth, **body), 422)
    assert pointer in pointers(problem)


def test_a_selection_over_the_cap_is_refused(client, auth, even, monkeypatch) -> None:
    from api.service import validation

    monkeypatch.setattr(validation, "MAX_PATH_FOLDS", 10)
    problem = assert_problem(validate(client, auth, n_folds=5), 422)
    assert pointers(problem) == ["/n_folds"]
    assert "4 unique paths" in problem["detail"]


def test_an_empty_selection_scores_nothing(client, auth) -> None:
    """No journeys: every score is undefined (null), not zero, and nothing is ranked."""
    response = validate(client, auth)
    assert response.status_code == 200, response.get_json()
    out = response.get_json()
    assert out["journeys"] == 0
    assert {r["value"] for r in out["scores"]} == {None}
    assert {r["rank"] for r in out["scores"]} == {None}
