"""The layers point one way: http/html -> service -> store -> psycopg; anything ->
attribution, which imports no I/O. Each layer's every module is imported in a fresh
interpreter and the modules it must not pull in are looked for in ``sys.modules``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "api"

WEB = ("flask", "werkzeug", "flask_smorest", "webargs", "jinja2", "gunicorn")
SCHEMAS = ("marshmallow", "apispec")
DATABASE = ("psycopg", "psycopg_pool")
ABOVE_SERVICE = ("api.http", "api.html", "api.schemas", "api.cli", "api.app")

LAYERS: dict[str, tuple[str, ...]] = {
    # the engine: numpy, scipy and the standard library only
    "attribution": (*WEB, *SCHEMAS, *DATABASE, "yaml", "msgspec", "api"),
    # importing the package itself loads nothing heavy
    "api": (*WEB, *SCHEMAS, *DATABASE, "numpy", "api.store", "api.service"),
    "api.config": (*WEB, *SCHEMAS, *DATABASE, "numpy"),
    "api.store": (*WEB, *SCHEMAS, *ABOVE_SERVICE, "api.service", "api.problems"),
    "api.service": (*WEB, *SCHEMAS, *ABOVE_SERVICE),
    "api.problems": (*WEB, *SCHEMAS, *ABOVE_SERVICE),
    # webargs' DelimitedList is a marshmallow field; its Flask parser is not loaded
    "api.schemas": (*[w for w in WEB if w != "webargs"], *ABOVE_SERVICE[:2], *ABOVE_SERVICE[3:]),
    "api.http": ("api.cli",),
    "api.html": ("api.cli",),
}
"""Each layer, and the modules (with their submodules) it must not load."""

SQL_WORDS = ("SELECT ", "INSERT INTO", "DELETE FROM", "CREATE TABLE", "UPDATE ")


def modules_of(name: str) -> list[str]:
    """The module ``name`` and, for a package, every module below it."""
    path = ROOT.joinpath(*name.split("."))
    if not path.is_dir():
        return [name]
    found = []
    for file in sorted(path.rglob("*.py")):
        parts = file.relative_to(ROOT).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def loaded_after_import(modules: list[str]) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return list(json.loads(result.stdout))


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_layer_loads_nothing_above_it(layer: str) -> None:
    modules = [layer] if layer == "api" else modules_of(layer)
    loaded = loaded_after_import(modules)
    bad = [
        m
        for m in loaded
        for forbidden in LAYERS[layer]
        if m == forbidden or m.startswith(forbidden + ".")
    ]
    assert bad == [], f"{layer} loads {sorted(set(bad))}"


def test_every_model_module_is_checked() -> None:
    """Models register lazily: the engine's layer check imports each module file, so
    a model module that is never imported by ``attribution/__init__`` is covered too."""
    from attribution.models import MODEL_NAMES, model_class

    checked = set(modules_of("attribution"))
    for name in MODEL_NAMES:
        assert model_class(name).__module__ in checked


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_store_imports_the_database_driver() -> None:
    for path in API.rglob("*.py"):
        if "store" not in path.relative_to(API).parts:
            assert not set(DATABASE) & imports(path), path


def test_sql_lives_in_sql_and_the_store() -> None:
    for path in API.rglob("*.py"):
        if "store" in path.relative_to(API).parts:
            continue
        text = path.read_text(encoding="utf-8")
        assert not [w for w in SQL_WORDS if w in text], path
