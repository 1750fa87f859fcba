"""Headers every response carries, and CSV cells a spreadsheet would run as formulas."""

from __future__ import annotations

import csv
import io

import pytest
from flask.testing import FlaskClient

from api.service.tables import csv_value
from tests.helpers import journey, touch

FORMULAS = ['=HYPERLINK("http://example.com","x")', "+1+2", "-2+3", "@SUM(A1)"]


@pytest.mark.parametrize(
    ("path", "authorised", "private"),
    [
        ("/v1/channels", True, True),
        ("/v1/channels?format=csv", True, True),
        ("/v1/channels", False, True),  # a 401 problem
        ("/v1/nothing-here", True, True),  # a 404 problem
        ("/healthz", False, False),
        ("/openapi.json", False, False),
        ("/docs", False, False),
    ],
)
def test_every_response_refuses_sniffing_and_framing(
    client: FlaskClient, auth: dict[str, str], path: str, authorised: bool, private: bool
) -> None:
    response = client.get(path, headers=auth if authorised else {})
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert ("no-store" in response.headers.get("Cache-Control", "")) is private


def test_csv_text_cells_that_start_a_formula_are_neutralised(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    records = [
        journey(
            f"j{k}",
            touchpoints=[touch(channel, "2024-03-01T10:00:00Z", None)],
            converted=True,
            value=1.0,
            converted_at=None,
            customer_id=None,
        )
        for k, channel in enumerate(FORMULAS)
    ]
    response = client.post("/v1/journeys", json={"journeys": records}, headers=auth)
    assert response.status_code == 200, response.get_json()
    rows = list(
        csv.DictReader(io.StringIO(client.get("/v1/channels?format=csv", headers=auth).text))
    )
    assert sorted(r["name"] for r in rows) == sorted("'" + f for f in FORMULAS)
    as_json = client.get("/v1/channels", headers=auth).get_json()
    assert sorted(r["name"] for r in as_json) == sorted(FORMULAS)  # JSON is data, unchanged
    table = client.get("/v1/attribution/table?models=last_touch&format=csv", headers=auth).text
    channels = [r["channel"] for r in csv.DictReader(io.StringIO(table)) if r["channel"]]
    assert channels and all(c.startswith("'") for c in channels)


def test_numbers_are_written_as_numbers() -> None:
    assert csv_value(-1.5) == "-1.5"
    assert csv_value(-3) == "-3"
    assert csv_value("-1.5") == "'-1.5"  # text that looks like a formula
    assert csv_value("email") == "email"
