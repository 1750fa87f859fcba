"""The layers point one way: views -> store -> psycopg; attribution imports no I/O."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "api"
STORE = API / "store"
FORBIDDEN_IN_ENGINE = ("flask", "marshmallow", "psycopg", "psycopg_pool", "werkzeug", "yaml", "api")
SQL_WORDS = ("SELECT ", "INSERT INTO", "DELETE FROM", "CREATE TABLE", "UPDATE ")


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_attribution_imports_no_io_or_web_library() -> None:
    code = (
        "import sys, attribution, attribution.synthetic\n"
        f"bad = [m for m in {FORBIDDEN_IN_ENGINE!r} if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_views_never_import_psycopg() -> None:
    for path in API.glob("*.py"):
        assert "psycopg" not in imports(path), path.name


def test_store_never_imports_flask() -> None:
    for path in STORE.glob("*.py"):
        assert not {"flask", "werkzeug", "flask_smorest"} & imports(path), path.name


def test_sql_lives_in_sql_and_the_store() -> None:
    for path in API.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not [w for w in SQL_WORDS if w in text], path.name
