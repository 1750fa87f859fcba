"""GET /docs: Swagger UI from our own routes, working offline, listing every operation."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.html import docs
from api.http.openapi import spec_dict
from tests.browser import Chromium, serve
from tests.helpers import assert_problem

ROOT = Path(__file__).resolve().parents[2]


def local_assets(html: str) -> list[str]:
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert all(u.startswith("/") for u in urls), urls
    return [u for u in urls if u.startswith("/docs/assets/")]


def test_docs_page_needs_no_key_and_loads_only_our_assets(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assets = local_assets(response.get_data(True))
    assert {a.rsplit("/", 1)[1] for a in assets} == set(docs.ASSETS)
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200 and asset.content_length and asset.content_length > 0
        asset.close()
    with client.get("/docs/assets/swagger-ui-bundle.js") as bundle:
        assert bundle.mimetype in ("text/javascript", "application/javascript")
        assert b"SwaggerUIBundle" in bundle.get_data()


def test_a_trailing_slash_leads_to_the_page(client: FlaskClient) -> None:
    response = client.get("/docs/")
    assert response.status_code == 308
    assert response.headers["Location"].endswith("/docs")
    assert client.get("/docs/", follow_redirects=True).status_code == 200


def test_unknown_asset_is_a_problem(client: FlaskClient) -> None:
    assert_problem(client.get("/docs/assets/..%2Fdocs.py"), 404)
    assert_problem(client.get("/docs/assets/swagger-ui.js"), 404)


def test_without_javascript_every_operation_is_listed(app: Flask, client: FlaskClient) -> None:
    html = client.get("/docs").get_data(True)
    operations = docs.operations(spec_dict(app))
    assert len(operations) > 20
    for op in operations:
        assert f"<code>{op['path']}</code>" in html


def test_package_ships_the_page_files() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = config["tool"]["setuptools"]["package-data"]["api"]
    assert {"html/static/**/*", "html/templates/**/*"} <= set(shipped)
    assert any("flask-swagger-ui==" in d for d in config["project"]["dependencies"])
    for name, folder in docs.ASSETS.items():
        assert (folder / name).is_file(), name


@pytest.fixture(scope="module")
def chromium() -> Chromium:
    return Chromium.get()


def test_docs_in_a_browser_lists_the_operations(app: Flask, chromium: Chromium) -> None:
    with serve(app) as base:
        dom = chromium.dump_dom(f"{base}/docs", wait_ms=15_000)
    assert 'class="swagger-ui' in dom, dom[:2000]
    spec = spec_dict(app)
    shown = set(re.findall(r'data-path="([^"]+)"', dom))
    assert shown == set(spec["paths"])
    assert dom.count('class="opblock opblock-') == len(docs.operations(spec))
    assert "Stage funnel." in dom
