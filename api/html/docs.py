"""GET /docs: interactive API docs (Swagger UI) that work with no internet.

Swagger UI's built files come from the pinned ``flask-swagger-ui`` wheel and are served
from our own routes, beside our small start-up script and stylesheet (``api/html/static``),
so nothing is fetched from elsewhere when the page is viewed. Without JavaScript the
page still lists every operation, rendered here from the spec.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    send_from_directory,
    url_for,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from ..http import openapi
from ..problems import NotFound

bp = Blueprint("docs", __name__)

STATIC = Path(__file__).resolve().parent / "static"
SWAGGER_UI = Path(str(resources.files("flask_swagger_ui") / "dist"))
ASSETS = {
    "swagger-ui-bundle.js": SWAGGER_UI,
    "swagger-ui.css": SWAGGER_UI,
    "favicon-32x32.png": SWAGGER_UI,
    "docs.js": STATIC,
    "docs.css": STATIC,
}
"""Every file the page loads, and where it lives; nothing else is served."""

METHODS = ("get", "put", "post", "delete", "patch")


@bp.get("/docs/")
def slash() -> WerkzeugResponse:
    """The page is at /docs; a trailing slash leads there."""
    return redirect(url_for("docs.page"), code=308)


@bp.get("/docs")
def page() -> str:
    spec = openapi.spec_dict(current_app)
    return render_template(
        "docs.html",
        title=spec["info"]["title"],
        version=spec["info"]["version"],
        operations=operations(spec),
    )


@bp.get("/docs/assets/<name>")
def asset(name: str) -> Response:
    folder = ASSETS.get(name)
    if folder is None:
        raise NotFound(f"No docs asset named {name!r}.")
    # the bundle is large; let browsers keep it for a day
    return send_from_directory(folder, name, max_age=86_400)


def operations(spec: dict[str, Any]) -> list[dict[str, str]]:
    """(method, path, summary) of every operation, in the spec's order."""
    return [
        {"method": method.upper(), "path": path, "summary": op.get("summary", "")}
        for path, item in spec.get("paths", {}).items()
        for method, op in item.items()
        if method in METHODS
    ]
