"""Serving with gunicorn from inside ``pathcredit serve``.

The application is built in each worker after the fork (``preload_app`` off), so no
database connection crosses a fork. Workers inherit the BLAS pin of
:mod:`api.cli` through the environment, before numpy loads in them.
"""

from __future__ import annotations

from flask import Flask
from gunicorn.app.base import BaseApplication

from ..config import Settings


class Server(BaseApplication):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        options = {
            "bind": f"{self.settings.host}:{self.settings.port}",
            "workers": self.settings.workers,
            "worker_class": "gthread",
            "threads": self.settings.pool_size,
            # Bulk uploads of millions of journeys take longer than the default 30 s.
            "timeout": 900,
            "graceful_timeout": 10,
            "preload_app": False,
            "accesslog": "-",
            "loglevel": self.settings.log_level.lower(),
            "proc_name": "pathcredit",
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from ..app import create_app

        return create_app(self.settings)


def serve(settings: Settings) -> None:
    Server(settings).run()
