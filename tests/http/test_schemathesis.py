"""Schemathesis against the live app, as an outsider runs it: the `st` command with the
committed openapi.yaml and schemathesis.toml, every check and every phase (examples,
coverage, fuzzing, stateful along the spec's links).

The app is served over HTTP on 127.0.0.1 with a real database that holds a few
journeys and a valid API key. The run must end with no failure and no error. Rules the
spec cannot state are applied by ``tests/schemathesis_hooks.py``; what the config turns
off is turned off per operation with its reason written there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from api import store
from api.app import create_app
from api.config import Settings
from tests.browser import serve
from tests.conftest import with_database
from tests.http.test_reports import JOURNEYS, journey_record

ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = 6


@dataclass(frozen=True)
class Live:
    url: str
    key: str


@pytest.fixture(scope="module")
def live(admin_url: str, template_db: str) -> Iterator[Live]:
    """The app on a free port over a database of its own, seeded with journeys."""
    name = f"{template_db.removesuffix('_template')}_fuzz"
    store.copy_database(admin_url, name, template_db)
    url = with_database(admin_url, name)
    with psycopg.connect(url) as conn:
        workspace = store.create_workspace(conn, "fuzz")
        key = store.create_api_key(conn, workspace.workspace_id)
    # one key stands for every client here: request budgets off
    budgets = {"key_reads": 0, "key_writes": 0, "workspace_reads": 0, "workspace_writes": 0}
    conf = Settings(
        database_url=url, pool_size=4, secret_key="fuzz-secret", max_runs=1000, **budgets
    )
    app = create_app(conf)
    headers = {"Authorization": f"Bearer {key}"}
    records = [journey_record(i + 1, *j) for i, j in enumerate(JOURNEYS)]
    seeded = app.test_client().post("/v1/journeys", json={"journeys": records}, headers=headers)
    assert seeded.status_code == 200, seeded.get_data(True)
    try:
        with serve(app) as base:
            yield Live(base, key)
    finally:
        # Runs the fuzzing started go on in threads of this process: let them end
        # before their database does (else they reopen a pool on a dropped database).
        for thread in threading.enumerate():
            if thread.name.startswith("run-") and thread.name != "run-heartbeat":
                thread.join(timeout=300)
        app.extensions["pathcredit.db"].close()
        store.drop_database(admin_url, name)


@pytest.mark.slow
def test_every_check_and_phase_passes(live: Live) -> None:
    st = Path(sys.executable).with_name("st")
    argv = [
        str(st), "run", "openapi.yaml",
        "--url", live.url,
        "--header", f"Authorization: Bearer {live.key}",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", "1",
        "--no-color",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    report = (
        done.stdout[done.stdout.find("= FAILURES =") :] if "= FAILURES =" in done.stdout else ""
    )
    assert done.returncode == 0, (report or done.stdout)[:30000] + done.stderr[-2000:]
    assert "No issues found" in done.stdout or " passed" in done.stdout, done.stdout[-3000:]
