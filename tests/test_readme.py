"""The README's walk-through, run top to bottom as a reader runs it.

Every ``sh`` block from "A walk through with curl" up to "API docs" runs, in order and
as written, in one ``bash`` against the app served over HTTP on a real PostgreSQL, from
a directory laid out as the repository's top (``examples/`` and ``.venv``), with
``KEY`` and ``API`` exported as the first block tells the reader to and
``DATABASE_URL`` set for the ``.venv/bin/pathcredit`` commands. The ``# ...`` lines
after a command are its documented output: the command's output must be exactly that,
whitespace aside, with ``...`` and ``…`` matching anything, and the test's server
address and database read as those ``make run`` gives (``http://127.0.0.1:8000``,
``/pathcredit?host=<repository>/.data/pg``). A command without documented output
must exit 0 and get no HTTP error. A block after ``<!-- not run: reason -->`` is
skipped; the test lists those reasons. ``curl`` is the stand-in of
``tests/readme_curl.py``, so the test needs no curl.

No job worker runs beside the app: the one background run the walk-through starts
stays queued, and no later step reads it.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from psycopg.conninfo import conninfo_to_dict

from api import store
from api.config import Settings
from api.store import bi
from tests.browser import serve

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START, END = "## A walk through with curl", "### API docs"
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
NOT_RUN = re.compile(r"^<!-- not run: (.+) -->$")
HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
WILDCARD = re.compile(r"\.\.\.|…")
PSQL = re.compile(r"(^|\s)psql\s")
README_API = "http://127.0.0.1:8000"
ROLES = ("bi_acme", "bi_sheets")  # cluster-wide: one walk-through at a time holds them
LOCK = Path(tempfile.gettempdir()) / "pathcredit-readme-walk-through.lock"
# the blocks the README marks as not run, and why; a new one must be added here
NOT_RUN_REASONS = {
    "needs a workspace of over 100,000 events",
    "needs a PostgreSQL of your own at db.internal",
}


@dataclass(frozen=True)
class Step:
    """One command of a block and the output the README documents for it."""

    line: int
    command: str
    expected: tuple[str, ...]


@dataclass(frozen=True)
class Block:
    line: int
    lines: tuple[str, ...]
    not_run: str | None


def walk_through() -> list[Block]:
    """The ``sh`` blocks between the walk-through's first heading and its end."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start, end = lines.index(START), lines.index(END)
    blocks: list[Block] = []
    i = start
    while i < end:
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, info = fence.groups()
        close = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        if info == "sh":
            body = tuple(line[len(indent) :] for line in lines[i + 1 : close])
            before = next((line for line in reversed(lines[start:i]) if line.strip()), "")
            marked = NOT_RUN.match(before.strip())
            blocks.append(Block(i + 2, body, marked.group(1) if marked else None))
        i = close + 1
    return blocks


def steps(block: Block) -> list[Step]:
    """The block's commands, each with the ``#`` lines after it (its documented output).

    A command runs on while bash cannot parse it whole (an open quote, a pipe, a
    trailing backslash) and through a here-document's end."""
    found: list[Step] = []
    command: list[str] = []
    first = 0
    lines = list(block.lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        if not command and line.lstrip().startswith("#"):
            assert found, f"README line {block.line + i}: output before any command"
            last = found[-1]
            output = line.lstrip()[1:].removeprefix(" ")
            found[-1] = Step(last.line, last.command, (*last.expected, output))
        elif command or line.strip():
            if not command:
                first = block.line + i
            command.append(line)
            heredoc = HEREDOC.search(line)
            if heredoc:
                while lines[i].strip() != heredoc.group(1):
                    i += 1
                    command.append(lines[i])
            if not line.endswith("\\") and parses("\n".join(command)):
                found.append(Step(first, "\n".join(command), ()))
                command = []
        i += 1
    assert not command, f"README line {first}: a command that never ends"
    return found


def parses(command: str) -> bool:
    done = subprocess.run(["bash", "-n"], input=command, capture_output=True, text=True)
    return done.returncode == 0


def matches(expected: tuple[str, ...], actual: str) -> bool:
    """Whether ``actual`` is the documented output, whitespace aside, ``...`` and ``…``
    standing for anything."""
    pattern = ".*?".join(re.escape(part) for part in WILDCARD.split(squeeze("\n".join(expected))))
    return re.fullmatch(pattern, squeeze(actual), re.DOTALL) is not None


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def first_block_exports(block: Block) -> dict[str, str]:
    """What the walk-through's first block tells the reader to export."""
    exports = {}
    for line in block.lines:
        name, _, value = line.split("#")[0].strip().removeprefix("export ").partition("=")
        exports[name] = value
    return exports


def script(runnable: list[Step], key: str, api: str) -> str:
    """One bash session for every step, each step's output and exit status fenced by
    markers, so that variables set by one block reach the next as in a terminal."""
    out = ["exec 2>&1", f"export KEY='{key}'", f"export API='{api}'"]
    for number, step in enumerate(runnable):
        out.append(f"printf '\\n@@step {number}@@\\n'")
        out.append(f"echo '@@step {number}' >>\"$PATHCREDIT_README_STATUSES\"")
        out.append(step.command)
        out.append(f"printf '\\n@@exit {number} %s@@\\n' \"$?\"")
    return "\n".join(out) + "\n"


def as_readme(text: str, api: str, database_url: str) -> str:
    """Output as the README's ``make run`` shows it: the server on port 8000, and the
    embedded database ``pathcredit`` in the repository's ``.data/pg``."""
    text = text.replace(api, README_API)
    params = conninfo_to_dict(database_url)
    text = text.replace(f"/{params['dbname']}?", "/pathcredit?")
    host = str(params.get("host", ""))
    if host.startswith("/"):
        text = text.replace(f"host={host}&", f"host={ROOT / '.data' / 'pg'}&")
    return text


def outputs(text: str) -> dict[int, tuple[str, int]]:
    found = re.finditer(r"@@step (\d+)@@\n(.*?)\n@@exit \1 (\d+)@@", text, re.DOTALL)
    return {int(m.group(1)): (m.group(2), int(m.group(3))) for m in found}


def statuses(path: Path) -> dict[int, list[int]]:
    """HTTP statuses the curl stand-in got, by step."""
    found: dict[int, list[int]] = {}
    step = -1
    for line in path.read_text().splitlines():
        if line.startswith("@@step "):
            step = int(line.split()[1])
            continue
        found.setdefault(step, []).append(int(line))
    return found


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, pool_size=4, secret_key="readme-secret")


@pytest.fixture
def default_key(conn: psycopg.Connection) -> str:
    """The ``default`` workspace's key, as ``make run`` prints it."""
    workspace = store.create_workspace(conn, "default")
    key = store.create_api_key(conn, workspace.workspace_id)
    conn.commit()
    return key


@pytest.fixture
def top(tmp_path: Path) -> Path:
    """A directory laid out as the repository's top, for a reader's relative paths."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    bin_dir = tmp_path / "stand-ins"
    bin_dir.mkdir()
    curl = bin_dir / "curl"
    curl.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "tests" / "readme_curl.py"}" "$@"\n'
    )
    curl.chmod(0o755)
    return tmp_path


@pytest.fixture
def bi_roles(conn: psycopg.Connection) -> Iterator[None]:
    """The walk-through's BI roles are the cluster's: one test run holds them at a time."""
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        drop_roles(conn)
        try:
            yield
        finally:
            drop_roles(conn)


def drop_roles(conn: psycopg.Connection) -> None:
    for role in ROLES:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
            bi.drop_bi_role(conn, role)
            conn.commit()


def test_the_walk_through_gives_its_documented_output(
    app: Flask, database_url: str, default_key: str, top: Path, bi_roles: None
) -> None:
    blocks = walk_through()
    exports = first_block_exports(blocks[0])
    assert set(exports) == {"KEY", "API"} and exports["API"] == README_API, exports
    assert {b.not_run for b in blocks if b.not_run} == NOT_RUN_REASONS
    runnable = [step for block in blocks[1:] if not block.not_run for step in steps(block)]
    status_log = top / "statuses.log"
    status_log.touch()
    env = {
        **with_stand_ins(top),
        "DATABASE_URL": database_url,
        "PATHCREDIT_README_STATUSES": str(status_log),
    }
    with serve(app) as api:
        done = subprocess.run(
            ["bash"],
            input=script(runnable, default_key, api),
            cwd=top,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    results = outputs(as_readme(done.stdout, api, database_url))
    failures = report(runnable, results, statuses(status_log))
    assert not failures, f"{len(failures)} of {len(runnable)} steps:\n\n" + "\n".join(failures)


def with_stand_ins(top: Path) -> dict[str, str]:
    """The environment with the stand-ins first on PATH."""
    return {**os.environ, "PATH": f"{top / 'stand-ins'}{os.pathsep}{os.environ['PATH']}"}


def report(
    runnable: list[Step], results: dict[int, tuple[str, int]], http: dict[int, list[int]]
) -> list[str]:
    """Every step that went wrong, with its README line, command, and both outputs."""
    failures = []
    for number, step in enumerate(runnable):
        if PSQL.search(step.command) and shutil.which("psql") is None:
            warnings.warn(
                f"README line {step.line} not checked: psql is not installed", stacklevel=1
            )
            continue
        output, code = results.get(number, ("(did not run)", -1))
        wrong = check(step, output, code, http.get(number, []))
        if wrong:
            documented = "\n".join(f"# {line}" for line in step.expected)
            failures.append(
                f"README line {step.line}: {', '.join(wrong)}\n{step.command}\n"
                f"--- documented\n{documented}\n--- got\n{output.strip()[:3000]}\n"
            )
    return failures


def check(step: Step, output: str, code: int, http: list[int]) -> list[str]:
    """What is wrong with a step's outcome: its exit status, its output against the
    documented one, and, when none is documented, an HTTP error it got."""
    wrong = [] if code == 0 else [f"exit status {code}"]
    if step.expected and not matches(step.expected, output):
        wrong.append("output differs")
    errors = [status for status in http if status >= 400]
    if not step.expected and errors:
        wrong.append(f"HTTP {errors} without a documented output")
    return wrong


# the stand-in's flags, each way the walk-through uses them; every call is idempotent
CURL_CALLS = (
    "curl -s $API/readyz",
    'curl -s -i $API/v1/stages -H "Authorization: Bearer $KEY"',
    'curl -s -D - -o /dev/null "$API/v1/channels?format=csv" -H "Authorization: Bearer $KEY"',
    "curl -s -o /dev/null -w '%{http_code}\\n' $API/v1/journeys/nowhere"
    ' -H "Authorization: Bearer $KEY"',
    'curl -s -i -X DELETE $API/v1/journeys/nowhere -H "Authorization: Bearer $KEY"',
    'curl -s -X PUT $API/v1/stages -H "Authorization: Bearer $KEY"'
    ' -H \'Content-Type: application/json\' -d \'{"stages": [{"name": "awareness"}]}\'',
    'curl -s $API/v1/journeys/bulk -H "Authorization: Bearer $KEY"'
    " -H 'Content-Type: application/x-ndjson' --data-binary @bad.ndjson",
    "curl -s $API/v1/events -u \"$KEY:\" -H 'Content-Type: application/json' -d '{\"batch\": []}'",
    'curl -s -i $API/v1/journeys -H "Authorization: Bearer $KEY" -d \'{"journeys": []}\'',
    "curl -s -i $API/docs",
)
VARYING = re.compile(
    r"^(Date|X-Request-ID|RateLimit-Remaining|RateLimit-Reset): .*\r?\n", re.M | re.I
)


def test_the_curl_stand_in_answers_as_curl_does(app: Flask, default_key: str, top: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: the stand-in is compared with it where it is")
    (top / "bad.ndjson").write_text('{"journey_id": "x"}\n')
    stand_in = with_stand_ins(top)
    with serve(app) as api:
        for call in CURL_CALLS:
            said = []
            for env in (stand_in, os.environ):
                done = subprocess.run(
                    ["bash", "-c", call],
                    cwd=top,
                    env={**env, "KEY": default_key, "API": api},
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                said.append((done.returncode, VARYING.sub("", done.stdout)))
            assert said[0] == said[1], call
