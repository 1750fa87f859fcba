"""The first API key handed over in a file: private, and never seen half written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from api.cli import server
from api.cli.server import KEY_FILE, show_new_key, write_private


def test_the_key_goes_to_a_private_file_and_only_its_path_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show_new_key("default", "pc_secret", tmp_path / "data")
    path = tmp_path / "data" / KEY_FILE
    assert path.read_text() == "pc_secret\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [KEY_FILE]
    out, err = capsys.readouterr()
    assert "pc_secret" not in out + err
    assert str(path) in err


def test_the_key_file_appears_only_once_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A script (or a test) waits for the file and reads it as soon as it exists: it
    # must not find it created but still empty.
    path = tmp_path / KEY_FILE
    seen: list[bool] = []
    synced = os.fsync

    def fsync(fd: int) -> None:  # the text is written; is the file there already?
        seen.append(path.exists())
        synced(fd)

    monkeypatch.setattr(server.os, "fsync", fsync)
    show_new_key("default", "pc_secret", tmp_path)
    assert seen == [False]
    assert path.read_text() == "pc_secret\n"


def test_a_failed_write_leaves_the_file_as_it_was_and_nothing_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / KEY_FILE
    write_private(path, "first\n")

    def fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(server.os, "fsync", fsync)
    with pytest.raises(OSError, match="No space left"):
        write_private(path, "second\n")
    assert path.read_text() == "first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEY_FILE]
