"""wanotify core: every rule of sending PO notices over WhatsApp and tracking them.

The dashboard, the webhook app, the worker and the CLI are thin layers over this package.
The seed system's interface (`WhatsAppBusinessService`, its schemas and repositories,
`core.service`) can be imported from here too; it is loaded on first use, so importing
any other part of `core` stays cheap.
"""

from __future__ import annotations

from typing import Any

#: Names re-exported from `core.service` (loaded on first access).
_SEED_API = frozenset(
    {
        "BulkSendResponse",
        "DeliveryStats",
        "HealthCheckResponse",
        "MessagePageResponse",
        "SendWhatsAppMessageRequest",
        "SendWhatsAppMessageResponse",
        "TemplateMessage",
        "WhatsAppBusinessService",
        "WhatsAppMessageRepository",
        "WhatsAppMessageResponse",
        "WhatsAppTemplateRepository",
        "WhatsAppTemplateResponse",
        "WhatsAppWebhookPayload",
    }
)


def __getattr__(name: str) -> Any:
    """`from core import WhatsAppBusinessService` (and its siblings), loaded lazily."""
    if name in _SEED_API:
        from core import service

        return getattr(service, name)
    if name == "WhatsAppService":
        from core.notify import WhatsAppService

        return WhatsAppService
    raise AttributeError(f"module 'core' has no attribute {name!r}")
