"""Idempotency keys: the same business intent always yields the same key, so it sends once."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def po_notice_key(po_number: str, recipient_e164: str, template_name: str) -> str:
    """The key of "notify this supplier of this PO with this template": one send, ever."""
    return f"po:{po_number.strip()}:{recipient_e164}:{template_name}"


def content_key(recipient_e164: str, content: Any) -> str:
    """A key from what is sent, for callers that bring no key of their own (seed API)."""
    digest = hashlib.sha256(
        json.dumps([recipient_e164, content], sort_keys=True, default=str).encode()
    ).hexdigest()
    return f"content:{digest[:40]}"


def resend_key(message_id: str, attempt: int) -> str:
    """The key of a deliberate resend of `message_id` by a person (the n-th such resend)."""
    return f"resend:{message_id}:{attempt}"
