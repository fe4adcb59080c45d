"""`core.webhooks.server`: the top-level webhook_app module is found from anywhere."""

from __future__ import annotations

import webhook_app
from core.webhooks.server import APP_DIR, load_app_module


def test_load_app_module_finds_the_checkouts_webhook_app() -> None:
    module = load_app_module()
    assert module is webhook_app
    assert (APP_DIR / "webhook_app.py").is_file()
    assert callable(module.create_app())
