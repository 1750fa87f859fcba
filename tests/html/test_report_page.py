"""GET /report and signed report links, over HTTP (the browser test is in test_browser)."""

from __future__ import annotations

import re
import struct
import time
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.config import Settings
from api.service import signing
from api.service.selection import Selection
from tests.browser import Chromium, serve
from tests.helpers import assert_problem
from tests.http import test_spend as spend_case
from tests.http.test_reports import JOURNEYS, ingest, journey_record

SECRET = "test-secret-0123456789abcdef"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, pool_size=2, secret_key=SECRET)


@pytest.fixture
def journeys(client: FlaskClient, auth: dict[str, str]) -> None:
    ingest(client, auth, [journey_record(i + 1, *j) for i, j in enumerate(JOURNEYS)])


class Numbers(HTMLParser):
    """Every element's ``data-*`` attributes, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[dict[str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        data = {k[5:]: v or "" for k, v in attrs if k.startswith("data-")}
        if data:
            self.items.append(data)


def parse(html: str) -> Numbers:
    parser = Numbers()
    parser.feed(html)
    return parser


def test_report_page_with_an_api_key(client, auth, journeys):
    response = client.get("/report", headers=auth)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    html = response.get_data(True)
    page = parse(html)
    assert "script" not in page.tags and "link" not in page.tags
    assert not re.search(r"(src|href)=\"?https?:", html)
    for section in ("funnel", "flow", "credit", "dropoff", "effects"):
        assert f'class="chart {section}"' in html
    assert "Effects are not additive" in html  # a reader must not sum them to 100%
    kpis = {d["kpi"]: d["value"] for d in page.items if "kpi" in d}
    assert float(kpis["journeys"]) == 10 and float(kpis["conversions"]) == 4
    assert float(kpis["looping_share"]) == pytest.approx(0.2)


def metric(page: Numbers, name: str, *keys: str) -> dict[Any, float]:
    """The numbers a chart shows for one metric, keyed by their data attributes (a
    cell with no number, shown as a dash, has no value)."""
    out = {}
    for d in page.items:
        if d.get("metric") == name and "value" in d:
            key = tuple(d[k] for k in keys)
            out[key[0] if len(key) == 1 else key] = float(d["value"])
    return out


def test_report_numbers_match_the_reports(client, auth, journeys):
    page = parse(client.get("/report", headers=auth).get_data(True))
    funnel = client.get("/v1/reports/funnel", headers=auth).get_json()
    rates = metric(page, "funnel.cumulative_rate", "stage")
    assert rates == pytest.approx({r["stage"]: r["cumulative_rate"] for r in funnel})
    dropped = metric(page, "funnel.dropped_out", "stage")
    assert dropped == {r["stage"]: r["dropped_out"] for r in funnel}
    effects = client.get("/v1/reports/stage-removal-effects", headers=auth).get_json()
    shown = metric(page, "stage.removal_effect", "stage")
    assert shown == pytest.approx({r["stage"]: r["removal_effect"] for r in effects})
    worst = client.get("/v1/reports/dropoff", headers=auth).get_json()
    assert metric(page, "dropoff.rate", "rank") == pytest.approx(
        {str(r["rank"]): r["rate"] for r in worst}
    )
    table = client.get(
        "/v1/attribution/table", query_string={"models": "markov"}, headers=auth
    ).get_json()
    markov = {r["channel"]: r["conversions"] for r in table if r["dimension"] == "channel"}
    credit = metric(page, "credit.conversions", "model", "channel")
    assert {c: v for (m, c), v in credit.items() if m == "markov"} == pytest.approx(markov)
    nodes = metric(page, "flow.node", "node")
    assert nodes["Converted"] == 4 and nodes["Dropped out"] == 6 and nodes["All journeys"] == 10


def test_report_shows_the_selection(client, auth, journeys):
    query = {"date_from": "2025-01-06", "device": "mobile", "models": ["linear", "markov"]}
    html = client.get("/report", query_string=query, headers=auth).get_data(True)
    assert "2025-01-06" in html and "mobile" in html
    kpis = {d["kpi"]: d["value"] for d in parse(html).items if "kpi" in d}
    assert float(kpis["journeys"]) == 2  # j7 and j9


def test_report_of_an_empty_workspace(client, auth):
    response = client.get("/report", headers=auth)
    assert response.status_code == 200
    assert "No journeys in this selection" in response.get_data(True)
    notices = notices_of(response.get_data(True))
    assert notices == ["The selection is empty: the workspace holds no journeys or paths yet."]


def test_report_shows_what_the_selection_left_out_and_the_models_warnings(client, auth, journeys):
    """The same notes as the JSON reports' Pathcredit-Warning headers, and a model's own
    warning named by its model."""
    empty = {"date_from": "2030-01-01", "date_to": "2030-01-31"}
    page = client.get("/report", query_string=empty, headers=auth).get_data(True)
    funnel = client.get("/v1/reports/funnel", query_string=empty, headers=auth)
    selection_notes = funnel.headers.getlist("Pathcredit-Warning")
    assert selection_notes and selection_notes[0].startswith("The selection is empty")
    assert notices_of(page) == selection_notes
    # j1 alone: every journey converts, which each model warns about
    only_j1 = {"date_from": "2025-01-01", "date_to": "2025-01-01", "models": ["last_touch"]}
    page = client.get("/report", query_string=only_j1, headers=auth).get_data(True)
    run = client.post(
        "/v1/attribution",
        json={**only_j1, "models": ["last_touch"]},
        headers=auth,
    ).get_json()
    assert run["warnings"]["last_touch"]
    assert notices_of(page) == [f"last touch: {n}" for n in run["warnings"]["last_touch"]]


def notices_of(html: str) -> list[str]:
    import html as entities
    import re

    found = re.findall(r'<div class="notice">(.*?)</div>', html, flags=re.S)
    return [entities.unescape(n) for n in found]


def test_report_needs_a_key_or_a_link(client):
    body = assert_problem(client.get("/report"), 401)
    assert "POST /v1/report-links" in body["detail"]  # says how to get a link
    assert_problem(client.get("/report", headers={"Authorization": "Bearer nope"}), 401)


def test_signed_link_opens_the_report_without_a_key(client, auth, journeys):
    response = client.post(
        "/v1/report-links",
        json={"date_to": "2025-01-05", "models": ["last_touch"], "expires_in": 600},
        headers=auth,
    )
    assert response.status_code == 200, response.get_data(True)
    link = response.get_json()
    assert link["url"].startswith("http://localhost/report?token=")
    page = client.get(link["url"])
    assert page.status_code == 200
    html = page.get_data(True)
    assert "Referrer-Policy" in page.headers and "acme" in html and "last touch" in html
    kpis = {d["kpi"]: d["value"] for d in parse(html).items if "kpi" in d}
    assert float(kpis["journeys"]) == 5


def test_signed_link_cannot_be_changed_or_widened(client, auth, journeys):
    link = client.post("/v1/report-links", json={}, headers=auth).get_json()
    token = link["token"]
    payload, signature = token.split(".")
    assert_problem(client.get("/report", query_string={"token": payload + ".AAAA"}), 401)
    other = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    assert_problem(client.get("/report", query_string={"token": f"{other}.{signature}"}), 401)
    assert_problem(client.get("/report", query_string={"token": "garbage"}), 401)
    widened = {"token": token, "date_from": "2020-01-01"}
    assert_problem(client.get("/report", query_string=widened), 422)


def test_a_link_has_one_spelling(client, auth, journeys):
    """Base64 decoding ignores stray characters and the last character's unused bits:
    neither may give the same link another token."""
    token = client.post("/v1/report-links", json={}, headers=auth).get_json()["token"]
    assert client.get("/report", query_string={"token": token}).status_code == 200
    payload, signature = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    twin = alphabet[last ^ 1]  # a 32-byte signature leaves the last character's low bits
    spellings = [
        f"{payload}.{signature[:-1]}{twin}",
        f"{payload}.{signature[:5]}!{signature[5:]}",
        f"{payload}.{signature}=",
        f"{payload}.{signature} ",
    ]
    for spelling in spellings:
        assert_problem(client.get("/report", query_string={"token": spelling}), 401)


def test_expired_link(app: Flask, client, workspace):
    link = signing.Link(
        workspace.workspace_id, workspace.name, Selection(), ("linear",), int(time.time()) - 1
    )
    body = assert_problem(
        client.get("/report", query_string={"token": signing.sign(SECRET, link)}), 401
    )
    assert "expired" in body["detail"]


def test_links_are_off_without_a_secret(app: Flask, client, auth):
    app.extensions["pathcredit.settings"] = Settings(database_url="unused")
    assert_problem(client.post("/v1/report-links", json={}, headers=auth), 503)
    assert_problem(client.get("/report", query_string={"token": "a.b"}), 401)


def test_link_parameters_are_validated(client, auth):
    for body in ({"expires_in": 10}, {"models": ["time_decay"]}, {"nope": 1}):
        assert_problem(client.post("/v1/report-links", json=body, headers=auth), 422)


def test_selection_round_trips_through_a_token():
    selection = Selection(
        date_from=date(2025, 1, 1),
        attributes={"plan": "pro"},
        device="mobile",
        channel_groups={"a": "b"},
        collapse_repeats=True,
        lookback_days=30,
    )
    link = signing.Link(1, "w", selection, ("markov",), int(time.time()) + 60)
    assert signing.verify(SECRET, signing.sign(SECRET, link), time.time()) == link
    with pytest.raises(signing.LinkError):
        signing.verify("another secret", signing.sign(SECRET, link), time.time())


@pytest.fixture(scope="module")
def chromium() -> Chromium:
    return Chromium.get()


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_report_in_a_browser_shows_the_api_numbers(
    app: Flask, client, auth, journeys, chromium: Chromium, tmp_path: Path
):
    token = client.post("/v1/report-links", json={}, headers=auth).get_json()["token"]
    with serve(app) as base:
        url = f"{base}/report?token={token}"
        shot = chromium.screenshot(url, tmp_path / "report.png")
        dom = chromium.dump_dom(url)
    assert png_size(shot) == (1280, 2400)
    assert shot.stat().st_size > 50_000  # charts and text, not a blank page
    page = parse(dom)
    charts = re.findall(r'<svg class="chart (\w+)"', dom)
    assert charts == ["funnel", "flow", "credit", "dropoff", "effects"]
    funnel = client.get("/v1/reports/funnel", headers=auth).get_json()
    reached = {r["stage"]: r["moved_on"] for r in funnel}
    assert metric(page, "funnel.moved_on", "stage") == reached
    roles = client.get("/v1/attribution/table?models=linear", headers=auth).get_json()
    linear = {r["channel"]: r["conversions"] for r in roles if r["dimension"] == "channel"}
    credit = metric(page, "credit.conversions", "model", "channel")
    assert {c: v for (m, c), v in credit.items() if m == "linear"} == pytest.approx(linear)
    assert re.search(r'data-kpi="conversions"[^>]*>4<', dom)


# ----------------------------------------------------------------- spend, ROAS, last touch
SPEND_QUERY = {**spend_case.RANGE, "models": spend_case.MODELS}


@pytest.fixture
def spent(client, auth) -> None:
    """The hand-worked journeys and spend of tests/http/test_spend.py."""
    ingest(client, auth, spend_case.JOURNEYS)
    assert spend_case.put_spend(client, auth, spend_case.SPEND).status_code == 200


def check_costs(page: Numbers, models: list[str]) -> None:
    """Cost per conversion, ROAS and spend as worked by hand in test_spend."""
    cpa = metric(page, "spend.cost_per_conversion", "model", "channel")
    roas = metric(page, "spend.roas", "model", "channel")
    for model in models:
        for channel, (_, _, _, want_cpa, want_roas) in spend_case.EXPECTED[model].items():
            if want_cpa is None:
                assert (model, channel) not in cpa  # shown as a dash, with no value
            else:
                assert cpa[(model, channel)] == pytest.approx(want_cpa)
            assert roas[(model, channel)] == pytest.approx(want_roas)
    spend = metric(page, "spend.spend", "channel")
    assert spend == pytest.approx({"search": 160.0, "email": 60.0, "display": 30.0})


def check_comparison(page: Numbers, models: list[str]) -> None:
    diffs = metric(page, "compare.conversions_diff", "model", "channel")
    want = {
        (m, c): conv - last
        for m in models
        for c, (conv, last, _, _) in spend_case.COMPARISON[m].items()
    }
    assert diffs == pytest.approx(want)
    assert metric(page, "compare.last_touch", "channel") == {"search": 1.0, "email": 2.0}


def test_report_shows_costs_roas_and_last_touch(client, auth, spent):
    html = client.get("/report", query_string=SPEND_QUERY, headers=auth).get_data(True)
    page = parse(html)
    check_costs(page, spend_case.MODELS)
    check_comparison(page, ["first_touch", "linear"])
    assert '<strong id="currency">USD</strong>' in html
    # shares and values are written on the bars, as the attribution table has them
    query = {**spend_case.RANGE, "models": ",".join(spend_case.MODELS)}
    table = client.get("/v1/attribution/table", query_string=query, headers=auth).get_json()
    rows = {(r["model"], r["channel"]): r for r in table if r["dimension"] == "channel"}
    touched = {k: r for k, r in rows.items() if k[1] != "display"}
    shares = metric(page, "credit.share", "model", "channel")
    assert shares == pytest.approx({k: r["share"] for k, r in touched.items()})
    values = metric(page, "credit.value", "model", "channel")
    assert values == pytest.approx({k: r["value"] for k, r in touched.items()})
    assert re.search(r'data-metric="credit.share"[^>]*>50.0%<', html)


def test_report_computes_last_touch_it_does_not_show(client, auth, spent):
    query = {**spend_case.RANGE, "models": ["first_touch", "linear"]}
    page = parse(client.get("/report", query_string=query, headers=auth).get_data(True))
    check_comparison(page, ["first_touch", "linear"])
    check_costs(page, ["first_touch", "linear"])


def test_report_without_spend_says_how_to_send_it(client, auth, journeys):
    html = client.get("/report", headers=auth).get_data(True)
    assert "PUT /v1/spend" in html
    assert not metric(parse(html), "spend.roas", "model", "channel")


def test_report_costs_in_a_browser(
    app: Flask, client, auth, spent, chromium: Chromium, tmp_path: Path
):
    body = {**spend_case.RANGE, "models": spend_case.MODELS}
    token = client.post("/v1/report-links", json=body, headers=auth).get_json()["token"]
    with serve(app) as base:
        url = f"{base}/report?token={token}"
        shot = chromium.screenshot(url, tmp_path / "costs.png", height=4000)
        dom = chromium.dump_dom(url)
    assert png_size(shot) == (1280, 4000)
    page = parse(dom)
    check_costs(page, spend_case.MODELS)
    check_comparison(page, ["first_touch", "linear"])
    assert re.search(r'data-metric="credit.value"[^>]*>value 160<', dom)
    assert re.search(r'id="currency">USD<', dom)


def test_narrow_credit_panels_still_write_share_and_value(client, auth, spent):
    models = ["first_touch", "last_touch", "linear", "position_based", "markov", "shapley"]
    query = {**spend_case.RANGE, "models": models}
    page = parse(client.get("/report", query_string=query, headers=auth).get_data(True))
    table = client.get(
        "/v1/attribution/table",
        query_string={**spend_case.RANGE, "models": ",".join(models)},
        headers=auth,
    ).get_json()
    touched = {
        (r["model"], r["channel"]): r
        for r in table
        if r["dimension"] == "channel" and r["channel"] != "display"
    }
    values = metric(page, "credit.value", "model", "channel")
    assert values == pytest.approx({k: r["value"] for k, r in touched.items()})
    shares = metric(page, "credit.share", "model", "channel")
    assert shares == pytest.approx({k: r["share"] for k, r in touched.items()})


def test_a_link_too_long_for_a_url_is_refused(client, auth):
    """A token over what the server's request line carries would make a dead link."""
    groups = {f"channel_{i:04d}_with_a_long_name": f"group_{i:04d}_long_name" for i in range(300)}
    response = client.post("/v1/report-links", json={"channel_groups": groups}, headers=auth)
    body = assert_problem(response, 422)
    assert body["errors"] == [
        {"pointer": "/channel_groups", "detail": "Too large to carry in a link."}
    ]
    small = dict(list(groups.items())[:3])
    ok = client.post("/v1/report-links", json={"channel_groups": small}, headers=auth)
    assert ok.status_code == 200
