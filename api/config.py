"""Settings, read once from the environment into a frozen dataclass.

Every field names its environment variable in its metadata; the README documents each
one (a test checks that).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
SECRET_FILE = "secret_key"
LOG_FORMATS = ("json", "text")


def _env(name: str, help: str) -> dict[str, str]:
    return {"env": name, "help": help}


@dataclass(frozen=True)
class Settings:
    """Service configuration. ``Settings.from_env(os.environ)`` in production; tests
    build one directly."""

    database_url: str | None = field(
        default=None,
        metadata=_env("DATABASE_URL", "libpq URI of the database; unset starts the embedded one"),
    )
    data_dir: Path = field(
        default=Path(".data"),
        metadata=_env("PATHCREDIT_DATA_DIR", "where the embedded PostgreSQL keeps its data"),
    )
    host: str = field(default="127.0.0.1", metadata=_env("PATHCREDIT_HOST", "address to bind"))
    port: int = field(default=8000, metadata=_env("PATHCREDIT_PORT", "port to bind"))
    workers: int = field(default=2, metadata=_env("PATHCREDIT_WORKERS", "gunicorn workers"))
    pool_size: int = field(
        default=4, metadata=_env("PATHCREDIT_POOL_SIZE", "database connections per worker")
    )
    max_batch: int = field(
        default=10_000,
        metadata=_env("PATHCREDIT_MAX_BATCH", "journeys or paths per JSON request"),
    )
    max_request_bytes: int = field(
        default=32 * MiB,
        metadata=_env("PATHCREDIT_MAX_REQUEST_BYTES", "largest JSON request body"),
    )
    max_bulk_bytes: int = field(
        default=4096 * MiB,
        metadata=_env("PATHCREDIT_MAX_BULK_BYTES", "largest bulk upload body"),
    )
    max_errors: int = field(
        default=100,
        metadata=_env("PATHCREDIT_MAX_ERRORS", "bad records listed in one bulk error"),
    )
    held_events: int = field(
        default=2_000_000,
        metadata=_env(
            "PATHCREDIT_HELD_EVENTS",
            "events one write of events holds in memory to derive journeys from (about "
            "0.5 GB a million); people with an event past those have theirs read back",
        ),
    )
    rederive_inline_events: int = field(
        default=100_000,
        metadata=_env(
            "PATHCREDIT_REDERIVE_INLINE_EVENTS",
            "largest workspace (in events) whose journeys a change of event rules derives "
            "again in the request; a larger one is derived again by a background job",
        ),
    )
    run_timeout_seconds: int = field(
        default=60,
        metadata=_env(
            "PATHCREDIT_RUN_TIMEOUT_SECONDS",
            "longest a synchronous attribution run may take before a 503 (async runs have none)",
        ),
    )
    secret_key: str | None = field(
        default=None,
        metadata=_env(
            "PATHCREDIT_SECRET_KEY",
            "secret that signs report links (`POST /v1/report-links`) and saved reports' table "
            "links; unset turns them off, "
            "except under `pathcredit serve`, which keeps a generated one in the data directory",
        ),
    )
    log_level: str = field(default="INFO", metadata=_env("PATHCREDIT_LOG_LEVEL", "logging level"))
    log_format: str = field(
        default="json",
        metadata=_env(
            "PATHCREDIT_LOG_FORMAT",
            "`json` (one JSON object per line) or `text` (plain lines for a terminal)",
        ),
    )
    metrics_token: str | None = field(
        default=None,
        metadata=_env(
            "PATHCREDIT_METRICS_TOKEN",
            "bearer token `GET /metrics` requires; unset turns /metrics off (404)",
        ),
    )

    rate_window_seconds: int = field(
        default=60,
        metadata=_env(
            "PATHCREDIT_RATE_WINDOW_SECONDS",
            "length of the fixed window the request rate limits count in",
        ),
    )
    key_reads: int = field(
        default=1200,
        metadata=_env(
            "PATHCREDIT_KEY_READS",
            "GET requests one API key may make per window; 0 turns this limit off",
        ),
    )
    key_writes: int = field(
        default=600,
        metadata=_env(
            "PATHCREDIT_KEY_WRITES",
            "POST, PUT, PATCH and DELETE requests one API key may make per window; 0 is off",
        ),
    )
    workspace_reads: int = field(
        default=2400,
        metadata=_env(
            "PATHCREDIT_WORKSPACE_READS",
            "GET requests all keys of one workspace may make per window; 0 is off",
        ),
    )
    workspace_writes: int = field(
        default=1200,
        metadata=_env(
            "PATHCREDIT_WORKSPACE_WRITES",
            "writes all keys of one workspace may make per window; 0 is off",
        ),
    )
    rebucket_inline_journeys: int = field(
        default=100_000,
        metadata=_env(
            "PATHCREDIT_REBUCKET_INLINE_JOURNEYS",
            "journeys up to which a time zone change re-buckets within its request; a "
            "larger workspace's change runs as a job of the queue",
        ),
    )
    max_runs: int = field(
        default=4,
        metadata=_env(
            "PATHCREDIT_MAX_RUNS",
            "attribution runs of one workspace unfinished at once (synchronous, queued "
            "and running background runs); 0 is no limit",
        ),
    )
    sync_work_budget: int = field(
        default=200_000_000,
        metadata=_env(
            "PATHCREDIT_SYNC_WORK_BUDGET",
            "estimated work (unique paths, models, replicates, Shapley coalitions) a "
            "synchronous run may take; above it, POST /v1/attribution/runs",
        ),
    )
    head_timeout_seconds: int = field(
        default=10,
        metadata=_env(
            "PATHCREDIT_HEAD_TIMEOUT_SECONDS",
            "time a request's head (and a body of at most 64 KiB) has to arrive; then 408",
        ),
    )
    body_idle_seconds: int = field(
        default=10,
        metadata=_env(
            "PATHCREDIT_BODY_IDLE_SECONDS",
            "longest wait for the next bytes of a larger request body; then 408",
        ),
    )
    body_min_rate: int = field(
        default=4096,
        metadata=_env(
            "PATHCREDIT_BODY_MIN_RATE",
            "bytes per second a larger request body must average once it has taken "
            "PATHCREDIT_BODY_IDLE_SECONDS; slower gets 408",
        ),
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read every field from its variable; unset or empty keeps the default."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f.metadata["env"], "")
            if raw == "":
                continue
            values[f.name] = _convert(f.name, raw, f.default)
        settings = cls(**values)
        if settings.log_format not in LOG_FORMATS:
            raise ValueError(
                f"setting log_format must be one of {', '.join(LOG_FORMATS)}, "
                f"got {settings.log_format!r}"
            )
        return settings

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Environment variable -> what it sets."""
        return {f.metadata["env"]: f.metadata["help"] for f in fields(cls)}


def _convert(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"setting {name} must be an integer, got {raw!r}") from None
    if isinstance(default, Path):
        return Path(raw)
    return raw


def with_secret_key(settings: Settings) -> Settings:
    """Settings whose secret key is set: the configured one, else the one kept in
    ``<data_dir>/secret_key``, generated on first use.

    Kept in a file so that report links survive restarts and every worker signs alike;
    created exclusively with mode 0600, so two processes starting together agree.
    """
    if settings.secret_key:
        return settings
    path = settings.data_dir / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        kept = path.read_text(encoding="ascii").strip()
        if not kept:  # a process that created it died before writing it
            raise RuntimeError(
                f"The secret key file {path} is empty: delete it (a new key is made) or "
                "set PATHCREDIT_SECRET_KEY."
            ) from None
        return replace(settings, secret_key=kept)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        key = secrets.token_urlsafe(48)
        fh.write(key + "\n")
    return replace(settings, secret_key=key)
