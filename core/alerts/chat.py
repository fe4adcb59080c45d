"""Posting an alert to a Slack-compatible incoming webhook (`{"text": ...}`).

The URL is a secret (whoever has it can post to the channel): errors name the channel
(`tenant:acme`, `global`) and the HTTP status, never the URL.
"""

from __future__ import annotations

import httpx

from core.alerts.render import AlertText, chat_payload
from core.alerts.smtp import DeliveryError

TIMEOUT = 10.0


def post_chat(url: str, target: str, text: AlertText, *, timeout: float = TIMEOUT) -> None:
    """Post one alert to the chat webhook at `url`; raise DeliveryError unless it took it."""
    try:
        response = httpx.post(url, json=chat_payload(text), timeout=timeout)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"chat webhook {target}: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"chat webhook {target} answered HTTP {response.status_code}")
