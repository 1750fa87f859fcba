"""Headless Chromium for tests that look at pages as a person would.

Debian's ``chromium`` package is used; when it is missing and we run as root with apt,
it is installed once (under a lock, so parallel test runs wait for one install). Tests
skip, saying why, only when it cannot be had. The app is served by werkzeug on
127.0.0.1 in a thread, with the real database, and every browser run gets a fresh
profile and resolves no host but 127.0.0.1, so a page that tried to fetch anything
from the internet would show it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
LOCK = Path(tempfile.gettempdir()) / "pathcredit-chromium-install.lock"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # offline, whatever the machine can reach: only the test server resolves
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
TIMEOUT = 90


@cache
def install_problem() -> str | None:
    """Why Chromium cannot be had, or None once it is there (installing it if we may)."""
    if CHROMIUM.exists():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "chromium is not installed, and installing it needs root and apt-get"
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not CHROMIUM.exists():
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
                done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
                if done.returncode != 0:
                    return f"`{' '.join(command)}` failed: {done.stderr.strip()[-500:]}"
    return None if CHROMIUM.exists() else "apt-get installed no /usr/bin/chromium"


@dataclass(frozen=True)
class Chromium:
    """One headless browser binary; each call is a fresh browser with a fresh profile."""

    path: Path

    @classmethod
    def get(cls) -> Chromium:
        problem = install_problem()
        if problem is not None:
            pytest.skip(f"headless Chromium unavailable: {problem}")
        return cls(CHROMIUM)

    def dump_dom(self, url: str, *, wait_ms: int = 0) -> str:
        """The DOM after the page loaded (and after ``wait_ms`` of virtual time for scripts)."""
        extra = [f"--virtual-time-budget={wait_ms}"] if wait_ms else []
        return self._run(["--dump-dom", *extra, url])

    def screenshot(
        self, url: str, path: Path, *, width: int = 1280, height: int = 2400, wait_ms: int = 0
    ) -> Path:
        extra = [f"--virtual-time-budget={wait_ms}"] if wait_ms else []
        self._run([f"--screenshot={path}", f"--window-size={width},{height}", *extra, url])
        assert path.exists() and path.stat().st_size > 0, f"no screenshot of {url}"
        return path

    def _run(self, args: list[str]) -> str:
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            done = subprocess.run(
                [str(self.path), *FLAGS, f"--user-data-dir={profile}", *args],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free port of 127.0.0.1 in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
