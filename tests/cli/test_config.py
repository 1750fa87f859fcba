"""Settings come from the environment, and every one is documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.config import SECRET_FILE, Settings, with_secret_key

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented() -> None:
    text = README.read_text(encoding="utf-8")
    for variable in Settings.variables():
        assert f"| `{variable}` |" in text, f"{variable} is missing from the README's table"


def test_from_env() -> None:
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql:///x", "PATHCREDIT_PORT": "9000", "PATHCREDIT_HOST": ""}
    )
    assert settings.database_url == "postgresql:///x"
    assert settings.port == 9000
    assert settings.host == "127.0.0.1"


def test_bad_numbers_name_the_setting() -> None:
    with pytest.raises(ValueError, match="port"):
        Settings.from_env({"PATHCREDIT_PORT": "eighty"})


def test_a_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = with_secret_key(settings)
    assert first.secret_key and len(first.secret_key) >= 32
    kept = tmp_path / "data" / SECRET_FILE
    assert kept.stat().st_mode & 0o777 == 0o600
    assert with_secret_key(settings).secret_key == first.secret_key  # survives a restart


def test_an_empty_secret_key_file_is_an_error_not_a_blank_key(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("\n", encoding="ascii")
    with pytest.raises(RuntimeError, match="is empty"):
        with_secret_key(Settings(data_dir=tmp_path))


def test_a_configured_secret_key_wins(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="configured")
    assert with_secret_key(settings).secret_key == "configured"
    assert not (tmp_path / SECRET_FILE).exists()
