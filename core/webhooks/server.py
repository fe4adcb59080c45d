"""Serving the webhook app with uvicorn (what `wanotify webhook` and `make run` call)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import uvicorn

from core.settings import Settings

#: The checkout's root, where the top-level `webhook_app.py` lives.
APP_DIR = Path(__file__).resolve().parents[2]


def load_app_module() -> ModuleType:
    """Import the top-level `webhook_app` module (its folder is not an installed package)."""
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    return importlib.import_module("webhook_app")


def run_webhook_app(settings: Settings, *, workers: int = 1) -> None:
    """Serve the webhook app on settings.webhook_host:webhook_port until interrupted.

    With one worker the app runs in this process with `settings`. With several, each
    worker process builds its own app from the environment (uvicorn imports it anew), so
    the settings must come from the environment or `.env`; PostgreSQL is then the
    sensible database, though SQLite stays correct (its writers take turns).
    """
    common = {
        "host": settings.webhook_host,
        "port": settings.webhook_port,
        # At Meta's peak an access-log line per event costs more than the event itself.
        "access_log": False,
        "proxy_headers": False,
        "timeout_graceful_shutdown": 15,
        "log_level": "info",
    }
    if workers <= 1:
        app = load_app_module().create_app(settings)
        uvicorn.Server(uvicorn.Config(app, **common)).run()  # type: ignore[arg-type]
        return
    uvicorn.run(
        "webhook_app:create_app",
        factory=True,
        workers=workers,
        app_dir=str(APP_DIR),
        **common,  # type: ignore[arg-type]
    )
