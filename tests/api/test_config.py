"""Settings come from the environment, and every one is documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.config import Settings

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
