"""The pathcredit command, run in-process against the test database."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api import store
from api.cli import build_parser, main
from api.config import Settings
from tests.helpers import journey, ndjson

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(list(argv))
    return code, capsys.readouterr().out.strip().splitlines()


def test_the_package_runs_as_the_command() -> None:
    """``python -m api.cli`` is how the benchmarks start a server."""
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "spec", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: pathcredit spec")


def test_every_verb_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["serve"], ["worker"], ["migrate"], ["workspace", "create"], ["key", "create"],
                 ["key", "revoke"], ["bi-role", "create"], ["bi-role", "drop"], ["import"],
                 ["demo"], ["validate"], ["spec"]):  # fmt: skip
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args([*argv, "--help"])
        assert exit_.value.code == 0
        assert "usage: pathcredit" in capsys.readouterr().out


def test_serve_signs_report_links_with_a_kept_secret(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: list[Settings] = []
    monkeypatch.setattr("api.cli.server.serve", served.append)
    monkeypatch.setenv("PATHCREDIT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PATHCREDIT_SECRET_KEY", raising=False)
    assert main(["serve"]) == 0
    assert main(["serve"]) == 0
    capsys.readouterr()
    secret = (tmp_path / "secret_key").read_text().strip()
    assert [s.secret_key for s in served] == [secret, secret]


def test_workspace_and_keys(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "migrate")[1] == ["the schema is up to date"]
    code, out = run(capsys, "workspace", "create", "shop")
    key = out[-1]
    assert code == 0 and key.startswith("pck_")
    with psycopg.connect(env) as conn:
        assert store.authenticate(conn, key) == store.Workspace(1, "shop")
    code, out = run(capsys, "key", "create", "shop")
    second = out[-1]
    assert run(capsys, "key", "revoke", key.split("_")[1])[0] == 0
    with psycopg.connect(env) as conn:
        assert store.authenticate(conn, key) is None
        assert store.authenticate(conn, second) is not None
    assert main(["workspace", "create", "shop"]) == 1


def test_bi_roles(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "workspace", "create", "shop")
    typed, generated = (f"bi_{os.getpid()}_{uuid.uuid4().hex[:8]}" for _ in range(2))
    monkeypatch.setattr("sys.stdin", io.StringIO("typed secret\n"))
    code, typed_out = run(capsys, "bi-role", "create", "shop", typed, "--password-stdin")
    assert code == 0 and "typed secret" not in "".join(typed_out)
    code, out = run(capsys, "bi-role", "create", "shop", generated)
    assert code == 0 and out[-2] == "Its password (shown once):"
    try:
        for role, password, said in ((typed, "typed secret", typed_out), (generated, out[-1], out)):
            params = {**conninfo_to_dict(env), "user": role, "password": password}
            with psycopg.connect(make_conninfo(**params)) as bi:
                assert bi.execute("SELECT count(*) FROM runs_v1").fetchone() == (0,)
            # the connection string it prints works as it is, with the password
            url = next(line for line in said if line.startswith("Connect as: "))[12:]
            assert url.startswith(f"postgresql://{role}@")
            with psycopg.connect(url, password=password) as bi:
                assert bi.execute("SELECT current_user").fetchone() == (role,)
                assert bi.execute("SELECT count(*) FROM credit_latest_v1").fetchone() == (0,)
        assert main(["bi-role", "create", "shop", typed, "--password", "again"]) == 1
        assert main(["bi-role", "create", "nowhere", f"{typed}_x", "--password", "p"]) == 1
    finally:
        assert run(capsys, "bi-role", "drop", typed)[0] == 0
        assert run(capsys, "bi-role", "drop", generated)[0] == 0
    assert main(["bi-role", "drop", typed]) == 1
    capsys.readouterr()


def test_import_uses_the_bulk_path(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "workspace", "create", "default")
    source = tmp_path / "journeys.ndjson"
    source.write_bytes(ndjson(journey("a"), journey("b")))
    assert run(capsys, "import", str(source))[1] == [
        "2 journeys: 2 created, 0 replaced, 0 unchanged"
    ]
    assert run(capsys, "import", str(source))[1][-1].endswith("2 unchanged")
    bad = tmp_path / "bad.ndjson"
    bad.write_text(json.dumps(journey("c", value="x")) + "\n")
    assert main(["import", str(bad)]) == 1
    assert "/0/value" in capsys.readouterr().err
    # how many events to hold is a setting of event imports only, and not negative
    assert main(["import", str(source), "--hold-events", "0"]) == 2
    assert "--hold-events is for events" in capsys.readouterr().err
    assert main(["import", str(source), "--format", "segment", "--hold-events", "-1"]) == 2
    assert "must be 0 or more" in capsys.readouterr().err


def test_demo_loads_and_attributes(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "demo", "--journeys", "500")
    assert code == 0
    assert out[0].startswith("Loaded 500 generated journeys")
    assert out[-1].startswith("pck_")
    assert "The journeys are in workspace 'demo', apart from 'default'." in out
    assert any("paid_search" in line for line in out)
    code, again = run(capsys, "demo", "--journeys", "500")
    assert code == 0
    assert again[-1].startswith("It existed already; another key for it: ")
    assert again[-1].endswith("key create demo")


def test_validate_prints_held_out_scores(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The demo's journeys, two folds: a row per predicting model and metric."""
    run(capsys, "demo", "--journeys", "400")
    code, out = run(capsys, "validate", "--workspace", "demo", "--folds", "2", "--orders", "1", "2")
    assert code == 0, out
    assert out[0].endswith("2 folds")
    rows = out[2:-1]
    assert len(rows) == 9
    for model in ("markov 1", "markov 2", "data_driven"):
        assert {r.split()[-5] for r in rows if r.startswith(model)} == {"log_loss", "brier", "auc"}
    assert out[-1].startswith("not scored: first_touch")
    assert main(["validate", "--workspace", "demo", "--folds", "1"]) == 1
    assert "/n_folds" in capsys.readouterr().err


def test_spec_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "openapi.yaml"
    assert main(["spec", "--output", str(target)]) == 0
    assert main(["spec", "--output", str(target), "--check"]) == 0
    target.write_text("stale")
    assert main(["spec", "--output", str(target), "--check"]) == 1


def test_messages_name_the_command_as_the_user_can_type_it(tmp_path: Path) -> None:
    """`make run` leaves `.venv` unactivated: a message telling the user to run
    `pathcredit ...` must then name `.venv/bin/pathcredit`, and the bare name only when
    PATH finds this very script."""
    script = Path(sys.executable).with_name("pathcredit")
    code = "import sys; from api.cli import command_name; print(command_name())"
    argv = [sys.executable, "-c", code]
    bare_path = {**os.environ, "PATH": "/usr/bin:/bin"}
    relative = subprocess.run(argv, capture_output=True, text=True, env=bare_path, cwd=ROOT)
    assert relative.stdout.strip() == str(script.resolve().relative_to(ROOT))
    elsewhere = subprocess.run(argv, capture_output=True, text=True, env=bare_path, cwd=tmp_path)
    assert elsewhere.stdout.strip() == str(script.resolve())
    with_venv = {**os.environ, "PATH": f"{script.parent}:/usr/bin:/bin"}
    found = subprocess.run(argv, capture_output=True, text=True, env=with_venv, cwd=tmp_path)
    assert found.stdout.strip() == "pathcredit"


def test_a_worker_ends_when_migrations_are_pending(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        (latest,) = conn.execute("SELECT max(name) FROM schema_migrations").fetchone() or (None,)
        conn.execute("DELETE FROM schema_migrations WHERE name = %s", [latest])
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "worker"],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": database_url},
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "pending migrations: 1; run" in result.stderr


def test_a_worker_log_leaves_out_the_queue_recovery_chatter() -> None:
    from api.cli.worker import quiet_maintenance

    def record(name: str, level: int, message: str) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, message, None, None)

    chatter = "Starting job recover_stalled_jobs[3](timestamp=1796588355)"
    assert not quiet_maintenance(record("procrastinate.worker", logging.INFO, chatter))
    assert quiet_maintenance(record("procrastinate.worker", logging.WARNING, chatter))
    run_job = "Starting job attribution_run[4](run_id='5f0c')"
    assert quiet_maintenance(record("procrastinate.worker", logging.INFO, run_job))
    assert quiet_maintenance(record("pathcredit.worker", logging.INFO, chatter))
