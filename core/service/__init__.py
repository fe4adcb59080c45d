"""The seed system's Python interface: async service, schemas and repositories.

wanotify replaces a notification service whose callers (a FastAPI/asyncio platform)
were written against `WhatsAppBusinessService(session)`, `SendWhatsAppMessageRequest`,
`WhatsAppMessageRepository` and `WhatsAppTemplateRepository`. This package gives them
those names as thin faces over `core`: every send goes through `core.notify` and the
outbox (so the sender's limits, retries and idempotency apply), statuses through the
webhook applier's order-independent fold, statistics through `core.stats`. Nothing
here is a second implementation of a rule.

Database work runs on a worker thread (`access.Database`), never on the event loop.
The caller's `session` names the database (its bind); wanotify commits its writes in
transactions of its own, so a queued message is durable once the call returns and a
rollback of the caller's session cannot half-undo it.

May import any `core` module; nothing in `core` imports this package (`core/__init__`
only re-exports its names lazily).
"""

from core.service.business import WhatsAppBusinessService
from core.service.repositories import WhatsAppMessageRepository, WhatsAppTemplateRepository
from core.service.schemas import (
    BulkSendResponse,
    DeliveryStats,
    HealthCheckResponse,
    MessagePageResponse,
    SendWhatsAppMessageRequest,
    SendWhatsAppMessageResponse,
    TemplateMessage,
    WhatsAppMessageResponse,
    WhatsAppTemplateResponse,
    WhatsAppWebhookPayload,
)

__all__ = [
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
]
