"""Request builders shared by the sandbox tests: Meta-shaped send bodies."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from core.settings import SANDBOX_PHONE_NUMBER_ID, SANDBOX_TOKEN, SANDBOX_WABA_ID

VERSION = "v25.0"
MESSAGES_PATH = f"/{VERSION}/{SANDBOX_PHONE_NUMBER_ID}/messages"
TEMPLATES_PATH = f"/{VERSION}/{SANDBOX_WABA_ID}/message_templates"
AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}


def client(url: str) -> httpx.Client:
    """An httpx client for the sandbox, with the sandbox token."""
    return httpx.Client(base_url=url, headers=AUTH, timeout=30.0)


def po_notification(
    to: str = "+34612345678",
    *,
    language: str = "es",
    opaque: str | None = "msg-1",
    payload: str | None = "ack:PO-1",
    supplier: str = "Harinas Martín",
) -> dict[str, Any]:
    """A valid `po_notification` (NAMED) send body."""
    components: list[dict[str, Any]] = [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "supplier_name", "text": supplier},
                {"type": "text", "parameter_name": "po_number", "text": "PO-1"},
                {
                    "type": "currency",
                    "parameter_name": "total_amount",
                    "currency": {
                        "fallback_value": "1.234,50 €",
                        "code": "EUR",
                        "amount_1000": 1234500,
                    },
                },
            ],
        }
    ]
    if payload is not None:
        components.append(
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": "0",
                "parameters": [{"type": "payload", "payload": payload}],
            }
        )
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": "po_notification",
            "language": {"code": language},
            "components": components,
        },
    }
    if opaque is not None:
        body["biz_opaque_callback_data"] = opaque
    return body


def po_document(to: str = "+34612345678", filename: str = "PO-1.pdf") -> dict[str, Any]:
    """A valid `po_document` (DOCUMENT header, positional) send body."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": "po_document",
            "language": {"code": "es"},
            "components": [
                {
                    "type": "header",
                    "parameters": [
                        {
                            "type": "document",
                            "document": {
                                "link": "https://erp.example/PO-1.pdf",
                                "filename": filename,
                            },
                        }
                    ],
                },
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "PO-1"},
                        {"type": "text", "text": "15/01/2026"},
                    ],
                },
            ],
        },
    }


def text(to: str = "+34612345678", body: str = "¿Puede confirmar el pedido?") -> dict[str, Any]:
    """A free-form text send body."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": body, "preview_url": False},
    }


def changed(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy of `body` with the item at `path` set to `value` (or removed if ...)."""
    result = copy.deepcopy(body)
    target = result
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return result


def error_code(response: httpx.Response) -> int:
    """The Graph error code of a response, checking the body has Meta's shape."""
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code", "fbtrace_id"}
    assert error["fbtrace_id"].startswith("A")
    if error["code"] not in (190, 2500) and error["type"] == "OAuthException":
        assert error["message"].startswith(f"({'#'}{error['code']}) ")
        assert error["error_data"]["messaging_product"] == "whatsapp"
        assert error["error_data"]["details"]
    return int(error["code"])
