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
            "secret that signs report links (`POST /v1/report-links`); unset turns them off, "
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
