"""The webhook app uvicorn serves (`uvicorn webhook_app:app`, `wanotify webhook`).

Everything is in `core.webhooks.app`; this module only builds the app from the
environment, at start-up, so importing it is free. To mount the same routes inside
another Starlette or FastAPI app, use `core.webhooks.app.embedded_app()`.
"""

from __future__ import annotations

from core.webhooks.app import (
    HEALTH_PATH,
    METRICS_PATH,
    PO_EVENTS_PATH,
    WEBHOOK_PATH,
    EmbeddedWebhooks,
    WebhookApp,
    create_app,
    embedded_app,
)

__all__ = [
    "HEALTH_PATH",
    "METRICS_PATH",
    "PO_EVENTS_PATH",
    "WEBHOOK_PATH",
    "EmbeddedWebhooks",
    "WebhookApp",
    "app",
    "create_app",
    "embedded_app",
]

app = create_app()
