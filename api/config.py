"""Settings, read once from the environment into a frozen dataclass.

Every field names its environment variable in its metadata; the README documents each
one (a test checks that).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


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
            "secret that signs report links (`POST /v1/report-links`); unset turns them off",
        ),
    )
    log_level: str = field(default="INFO", metadata=_env("PATHCREDIT_LOG_LEVEL", "logging level"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read every field from its variable; unset or empty keeps the default."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f.metadata["env"], "")
            if raw == "":
                continue
            values[f.name] = _convert(f.name, raw, f.default)
        return cls(**values)

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
