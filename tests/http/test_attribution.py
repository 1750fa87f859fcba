"""Attribution runs end to end over HTTP: ingest journeys, run every model, check the
numbers against hand-worked expectations and an independent Markov solve."""

from __future__ import annotations

import csv
import io
import itertools
import json
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from attribution import MODEL_NAMES, ROW_COLUMNS
from tests.helpers import assert_problem, journey, pointers, touch

DAY = "2024-03-0{}T{}:00:00Z"

# (journey id, channels, converted, value): channels touch on consecutive hours of day 1
SMALL = [
    ("j1", ["search", "email"], True, 100.0),
    ("j2", ["social", "search"], True, 50.0),
    ("j3", ["search"], False, 0.0),
    ("j4", ["social", "email"], False, 0.0),
    ("j5", ["email"], True, 30.0),
]


def small_journey(
    jid: str, channels: list[str], converted: bool, value: float, **kw: Any
) -> dict[str, Any]:
    touches = [touch(c, DAY.format(1, 10 + i), None) for i, c in enumerate(channels)]
    return journey(
        jid,
        touchpoints=touches,
        converted=converted,
        value=value,
        converted_at=DAY.format(1, 20) if converted else None,
        **kw,
    )


def ingest(client: FlaskClient, auth: dict[str, str], journeys: list[dict[str, Any]]) -> None:
    response = client.post("/v1/journeys", json={"journeys": journeys}, headers=auth)
    assert response.status_code == 200, response.get_json()


@pytest.fixture
def small(client: FlaskClient, auth: dict[str, str]) -> None:
    ingest(client, auth, [small_journey(*j) for j in SMALL])


def credit(table: list[dict[str, Any]], model: str, field: str = "conversions") -> dict[str, float]:
    return {
        r["channel"]: r[field] for r in table if r["model"] == model and r["dimension"] == "channel"
    }


def run(client: FlaskClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/v1/attribution", json=body, headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_every_model_runs_and_sums_to_totals(client, auth, small) -> None:
    out = run(client, auth, models=list(MODEL_NAMES))
    assert out["status"] == "succeeded"
    assert out["progress"] == {"done": len(MODEL_NAMES), "total": len(MODEL_NAMES)}
    assert out["totals"] == {
        "journeys": 5.0,
        "conversions": 3.0,
        "value": 180.0,
        "conversion_rate": 0.6,
    }
    assert set(out["warnings"]) == set(MODEL_NAMES)
    for row in out["table"]:
        assert list(row) == list(ROW_COLUMNS)
    for model in MODEL_NAMES:
        conv = credit(out["table"], model)
        value = credit(out["table"], model, "value")
        assert sum(conv.values()) == pytest.approx(3.0), model
        assert sum(value.values()) == pytest.approx(180.0), model


def test_heuristics_by_hand(client, auth, small) -> None:
    table = run(client, auth, models=["first_touch", "last_touch", "linear"])["table"]
    assert credit(table, "first_touch") == {"search": 1.0, "social": 1.0, "email": 1.0}
    assert credit(table, "last_touch") == pytest.approx(
        {"search": 1.0, "social": 0.0, "email": 2.0}
    )
    assert credit(table, "last_touch", "value") == pytest.approx(
        {"search": 50.0, "social": 0.0, "email": 130.0}
    )
    assert credit(table, "linear") == pytest.approx({"search": 1.0, "social": 0.5, "email": 1.5})
    assert credit(table, "linear", "value") == pytest.approx(
        {"search": 75.0, "social": 25.0, "email": 80.0}
    )


def markov_reference(paths: list[tuple[list[str], bool]]) -> dict[str, float]:
    """First-order removal-effect credit by a dense solve written out here."""
    channels = sorted({c for p, _ in paths for c in p})
    states = ["start", *channels, "conv", "null"]
    index = {s: i for i, s in enumerate(states)}
    counts = np.zeros((len(states), len(states)))
    for path, converted in paths:
        walk = ["start", *path, "conv" if converted else "null"]
        for a, b in itertools.pairwise(walk):
            counts[index[a], index[b]] += 1

    def p_conversion(removed: str | None) -> float:
        q = counts.copy()
        if removed is not None:
            r = index[removed]
            q[:, index["null"]] += q[:, r]
            q[:, r] = 0
            q[r, :] = 0
        rows = q.sum(axis=1, keepdims=True)
        p = np.divide(q, rows, out=np.zeros_like(q), where=rows > 0)
        transient = [index["start"], *(index[c] for c in channels)]
        a = np.eye(len(transient)) - p[np.ix_(transient, transient)]
        b = p[transient, index["conv"]]
        return float(np.linalg.solve(a, b)[0])

    base = p_conversion(None)
    effects = {c: 1 - p_conversion(c) / base for c in channels}
    total = sum(converted for _, converted in paths)
    scale = total / sum(effects.values())
    return {c: e * scale for c, e in effects.items()}


def test_markov_against_an_independent_solve(client, auth, small) -> None:
    table = run(client, auth, models=["markov"])["table"]
    expected = markov_reference([(c, conv) for _, c, conv, _ in SMALL])
    assert credit(table, "markov") == pytest.approx(expected, rel=1e-9)
    effects = {r["channel"]: r["removal_effect"] for r in table if r["dimension"] == "channel"}
    assert all(e is not None and e >= 0 for e in effects.values())


def test_csv_and_json_tables_carry_the_same_rows(client, auth, small) -> None:
    out = run(client, auth, models=["linear", "markov"])
    url = f"/v1/attribution/runs/{out['run_id']}/table"
    as_json = client.get(url, headers=auth).get_json()
    as_csv = client.get(url, headers={**auth, "Accept": "text/csv"})
    assert as_csv.mimetype == "text/csv"
    text = as_csv.get_data(as_text=True)
    assert text.startswith(",".join(ROW_COLUMNS) + "\r\n")
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert as_json == out["table"]
    assert len(parsed) == len(as_json)
    for a, b in zip(parsed, as_json, strict=True):
        for column in ROW_COLUMNS:
            if b[column] is None:
                assert a[column] == ""
            elif isinstance(b[column], float):
                assert float(a[column]) == b[column]
            else:
                assert a[column] == b[column]
    assert client.get(url + "?format=csv", headers=auth).get_data() == as_csv.get_data()


def test_runs_are_listed_newest_first_and_paged(client, auth, small) -> None:
    ids = [run(client, auth, models=["last_touch"])["run_id"] for _ in range(3)]
    first = client.get("/v1/attribution/runs?limit=2", headers=auth).get_json()
    assert [r["run_id"] for r in first["runs"]] == ids[::-1][:2]
    assert "table" not in first["runs"][0]
    second = client.get(
        f"/v1/attribution/runs?limit=2&cursor={first['next_cursor']}", headers=auth
    ).get_json()
    assert [r["run_id"] for r in second["runs"]] == ids[:1]
    assert second["next_cursor"] is None


def test_a_run_is_stored(client, auth, small) -> None:
    out = run(client, auth, models=["markov"], markov={"order": 2})
    got = client.get(f"/v1/attribution/runs/{out['run_id']}", headers=auth).get_json()
    assert got == out
    assert got["parameters"]["options"]["markov"]["order"] == 2


def test_engine_errors_point_at_the_option(client, auth, small) -> None:
    response = client.post(
        "/v1/attribution", json={"models": ["markov"], "markov": {"order": 9}}, headers=auth
    )
    body = assert_problem(response, 422)
    assert pointers(body) == ["/markov/order"]
    response = client.post(
        "/v1/attribution",
        json={"models": ["markov"], "confidence": {"replicates": 1}},
        headers=auth,
    )
    assert pointers(assert_problem(response, 422)) == ["/confidence/replicates"]


def test_options_take_one_shape_in_the_body_the_run_and_the_settings(client, auth, small) -> None:
    """`options` keyed by model is the shape of the run body, of the run's echoed
    parameters, of `/v1/settings` and of the table URL; the older top-level spelling
    gives the same run, and where both name an option, `options` wins."""
    options = {"markov": {"order": 2}}
    new = run(client, auth, models=["markov"], options=options)
    old = run(client, auth, models=["markov"], markov={"order": 2})
    assert new["parameters"]["options"] == old["parameters"]["options"]
    assert new["parameters"]["options"]["markov"]["order"] == 2
    assert new["table"] == old["table"]
    put = client.put("/v1/settings", json={"options": new["parameters"]["options"]}, headers=auth)
    assert put.status_code == 200, put.get_json()
    query = {"models": "markov", "options": json.dumps(options), "format": "json"}
    table = client.get("/v1/attribution/table", query_string=query, headers=auth)
    assert table.get_json() == new["table"]
    bad = {"models": ["markov"], "options": {"markov": {"order": 9}}}
    assert pointers(
        assert_problem(client.post("/v1/attribution", json=bad, headers=auth), 422)
    ) == ["/options/markov/order"]
    mixed = {"models": ["markov"], "options": options, "markov": {"order": 1, "n_folds": 3}}
    both = run(client, auth, **mixed)["parameters"]["options"]["markov"]
    assert (both["order"], both["n_folds"]) == (2, 3)  # `options` wins where both say
    client.put("/v1/settings", json={}, headers=auth)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"models": ["nope"]}, "/models/0"),
        ({"models": []}, "/models"),
        ({"markov": {"orders": 1}}, "/markov/orders"),
        ({"bogus": 1}, "/bogus"),
        ({"date_from": "2024-02-01", "date_to": "2024-01-01"}, "/date_to"),
        ({"lookback_days": 0}, "/lookback_days"),
        ({"filters": {"device": 3}}, "/filters/device"),
        ({"channel_groups": {"a": 1}}, "/channel_groups/a/value"),
        ({"filters": {"attributes": {"plan": ["a\u0000"]}}}, "/filters/attributes"),
        ({"filters": {"campaign": "\u0000"}}, "/filters/campaign"),
    ],
)
def test_invalid_requests_are_problems(client, auth, body, pointer) -> None:
    response = client.post("/v1/attribution", json=body, headers=auth)
    assert pointer in pointers(assert_problem(response, 422))


def test_missing_runs_are_404(client, auth) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    for suffix in ("", "/table", "/journeys"):
        assert_problem(client.get(f"/v1/attribution/runs/{missing}{suffix}", headers=auth), 404)
    assert_problem(client.get("/v1/attribution/runs/not-a-uuid", headers=auth), 404)


def test_runs_need_a_key(client) -> None:
    assert_problem(client.post("/v1/attribution", json={}), 401)
    assert_problem(client.get("/v1/attribution/runs"), 401)


def test_option_schemas_cover_every_model_and_option() -> None:
    import dataclasses

    from api.schemas.attribution import OPTION_SCHEMAS
    from attribution import model_class

    assert set(OPTION_SCHEMAS) == set(MODEL_NAMES)
    for name, schema in OPTION_SCHEMAS.items():
        fields = {f.name for f in dataclasses.fields(model_class(name))}
        assert set(schema().fields) == fields, name


@pytest.mark.parametrize("method", ["poisson", "multinomial"])
def test_intervals_over_an_empty_selection(client, auth, method) -> None:
    """No journey selected: the run succeeds with nothing to credit, whatever the
    resampling (multinomial resampling of no paths answered 500)."""
    body = {"models": ["linear", "markov"], "confidence": {"method": method, "replicates": 10}}
    response = client.post("/v1/attribution", json=body, headers=auth)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "succeeded"


def test_data_driven_runs_with_intervals(client, auth, small) -> None:
    """The data-driven model end to end: every converting journey shared out exactly
    (3 conversions, 180 in value), and bootstrap intervals around each channel."""
    body = {
        "models": ["data_driven"],
        "options": {"data_driven": {"alpha": 0.5, "n_folds": 2}},
        "confidence": {"replicates": 20, "seed": 3},
    }
    out = run(client, auth, **body)
    assert out["parameters"]["options"]["data_driven"]["alpha"] == 0.5
    conv = credit(out["table"], "data_driven")
    value = credit(out["table"], "data_driven", "value")
    assert sum(conv.values()) == pytest.approx(3.0, rel=1e-12)
    assert sum(value.values()) == pytest.approx(180.0, rel=1e-12)
    for row in out["table"]:
        assert row["ci_low"] <= row["conversions"] + 1e-9
        assert row["conversions"] <= row["ci_high"] + 1e-9
