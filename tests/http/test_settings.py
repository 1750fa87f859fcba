"""Workspace defaults for attribution runs: stored, shown, and applied to runs that
leave a field out."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from api.service.runs import DEFAULT_MODELS
from tests.helpers import assert_problem, pointers
from tests.http.test_attribution import SMALL, credit, ingest, run, small_journey


@pytest.fixture
def small(client: FlaskClient, auth: dict[str, str]) -> None:
    ingest(client, auth, [small_journey(*j) for j in SMALL])


def test_built_in_defaults_are_shown(client, auth) -> None:
    got = client.get("/v1/settings", headers=auth).get_json()
    assert got["models"] == list(DEFAULT_MODELS)
    assert got["lookback_days"] is None
    assert got["confidence"] is None
    assert got["channel_groups"] == {}


def test_defaults_apply_where_a_request_is_silent(client, auth, small) -> None:
    settings = {
        "models": ["last_touch", "markov"],
        "options": {"markov": {"order": 2}},
        "channel_groups": {"search": "paid", "social": "paid"},
    }
    put = client.put("/v1/settings", json=settings, headers=auth)
    assert put.status_code == 200
    assert put.get_json()["options"] == {"markov": {"order": 2}}
    out = run(client, auth)
    assert out["parameters"]["models"] == ["last_touch", "markov"]
    assert out["parameters"]["options"]["markov"]["order"] == 2
    assert credit(out["table"], "last_touch") == {"paid": 1.0, "email": 2.0}
    # a request's own fields win, key by key for options
    out = run(client, auth, models=["markov"], markov={"n_folds": 3}, channel_groups={})
    assert out["parameters"]["options"]["markov"]["order"] == 2
    assert out["parameters"]["options"]["markov"]["n_folds"] == 3
    assert set(credit(out["table"], "markov")) == {"search", "social", "email"}


def test_a_default_lookback_and_confidence_can_be_turned_off(client, auth, small) -> None:
    settings = {"lookback_days": 1, "confidence": {"replicates": 10}}
    assert client.put("/v1/settings", json=settings, headers=auth).status_code == 200
    out = run(client, auth, models=["linear"])
    assert out["parameters"]["lookback_days"] == 1
    assert out["parameters"]["confidence"]["replicates"] == 10
    assert out["table"][0]["ci_low"] is not None
    out = run(client, auth, models=["linear"], lookback_days=None, confidence=None)
    assert out["parameters"]["lookback_days"] is None
    assert out["table"][0]["ci_low"] is None


def test_put_replaces_everything(client, auth) -> None:
    client.put("/v1/settings", json={"lookback_days": 30}, headers=auth)
    got = client.put("/v1/settings", json={"collapse_repeats": True}, headers=auth).get_json()
    assert got["lookback_days"] is None
    assert got["collapse_repeats"] is True


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"options": {"markov": {"order": 0}}}, "/options/markov/order"),
        ({"options": {"markov": {"nope": 1}}}, "/options/markov/nope"),
        ({"options": {"nope": {}}}, "/options/nope"),
        ({"confidence": {"level": 2}}, "/confidence/level"),
        ({"models": ["x"]}, "/models/0"),
        ({"lookback_days": -1}, "/lookback_days"),
    ],
)
def test_invalid_settings_are_refused(client, auth, body, pointer) -> None:
    response = client.put("/v1/settings", json=body, headers=auth)
    assert pointer in pointers(assert_problem(response, 422))
    assert client.get("/v1/settings", headers=auth).get_json()["lookback_days"] is None
