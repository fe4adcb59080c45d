"""The sandbox's `POST /{waba}/message_templates`: Meta's refusals, the PENDING answer,
the review after a delay and its signed `message_template_status_update` webhook."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from core.sandbox import SandboxServer
from core.settings import SANDBOX_TOKEN, SANDBOX_WABA_ID
from tests.fixtures.sandbox import WebhookReceiver

PATH = f"/v25.0/{SANDBOX_WABA_ID}/message_templates"
HEADERS = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}


def template(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "po_chaser",
        "language": "es",
        "category": "UTILITY",
        "parameter_format": "NAMED",
        "components": [
            {
                "type": "BODY",
                "text": "Hola {{supplier_name}}, el pedido {{po_number}} sigue pendiente.",
                "example": {
                    "body_text_named_params": [
                        {"param_name": "supplier_name", "example": "Harinas"},
                        {"param_name": "po_number", "example": "PO-1"},
                    ]
                },
            },
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Confirmar"}]},
        ],
    }
    body.update(changes)
    return body


def post(sandbox: SandboxServer, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(sandbox.url + PATH, json=body, headers=HEADERS, timeout=10, **kwargs)


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == 100 and error["type"] == "OAuthException"
    assert error["fbtrace_id"] and error["is_transient"] is False
    return error


def with_body_text(text: str) -> dict[str, Any]:
    body = template()
    body["components"][0]["text"] = text
    return body


@pytest.mark.parametrize(
    ("body", "subcode", "words"),
    [
        (template(name="PO Reminder"), None, "lowercase"),
        (template(category="TRANSACTIONAL"), None, "category"),
        (with_body_text("{{supplier_name}}, el pedido {{po_number}} sigue pendiente."),
         2388299, "start or end"),
        (with_body_text("Hola " + "x" * 1030 + " {{supplier_name}} y {{po_number}} fin"),
         2388040, "1024"),
        (with_body_text("Hola {{supplier_name}}, pedido {{po_number}}, ref {{ref}} ok."),
         2388043, "sample"),
        (with_body_text("Hola {{1}}, el pedido sigue pendiente."), 2388072, "format"),
    ],
)  # fmt: skip
def test_malformed_templates_are_refused_with_metas_shape(
    sandbox: SandboxServer, body: dict[str, Any], subcode: int | None, words: str
) -> None:
    error = error_of(post(sandbox, body))
    assert error.get("error_subcode") == subcode
    assert words in error["error_user_msg"]
    assert "error_user_title" in error and "error_data" not in error


def test_footer_and_button_limits_and_bad_json(sandbox: SandboxServer) -> None:
    footer = template()
    footer["components"].append({"type": "FOOTER", "text": "Ref {{po_number}}"})
    assert error_of(post(sandbox, footer))["error_subcode"] == 2388073
    buttons = template()
    buttons["components"][1]["buttons"] = [{"type": "URL", "text": "x", "url": "https://a"}] * 3
    assert "URL" in error_of(post(sandbox, buttons))["error_user_msg"]
    raw = httpx.post(sandbox.url + PATH, content=b"{nope", headers=HEADERS, timeout=10)
    assert "JSON" in error_of(raw)["error_user_msg"]
    denied = httpx.post(sandbox.url + PATH, json=template(), timeout=10)
    assert denied.status_code == 401 and denied.json()["error"]["code"] == 190
    other = httpx.post(
        sandbox.url + "/v25.0/123/message_templates", json=template(), headers=HEADERS, timeout=10
    )
    assert other.json()["error"]["code"] == 100 and other.json()["error"]["error_subcode"] == 33


def test_a_valid_template_is_pending_then_approved_by_signed_webhook(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.configure(webhook_url=webhook_receiver.url, template_review_s=3600)
    answer = post(sandbox, template())
    assert answer.status_code == 200, answer.text
    created = answer.json()
    assert created["status"] == "PENDING" and created["category"] == "UTILITY"
    listed = httpx.get(
        sandbox.url + f"/v25.0/{SANDBOX_WABA_ID}/message_templates",
        params={"name": "po_chaser", "fields": "name,status,parameter_format"},
        headers=HEADERS,
        timeout=10,
    ).json()["data"]
    assert listed == [
        {"name": "po_chaser", "status": "PENDING", "parameter_format": "NAMED", "id": created["id"]}
    ]
    assert webhook_receiver.accepted() == []  # still under review
    sandbox.configure(template_review_s=0)  # a shorter delay applies to pending ones too
    assert webhook_receiver.wait_for(lambda r: len(r.accepted()) == 1)
    (hook,) = webhook_receiver.accepted()
    assert hook.signature_ok()
    change = hook.json["entry"][0]["changes"][0]
    assert change["field"] == "message_template_status_update"
    assert change["value"] == {
        "event": "APPROVED",
        "message_template_id": int(created["id"]),
        "message_template_name": "po_chaser",
        "message_template_language": "es",
        "reason": "NONE",
    }
    duplicate = error_of(post(sandbox, template()))
    assert duplicate["error_subcode"] == 2388024
    assert "Spanish" in duplicate["error_user_msg"]
    assert post(sandbox, template(language="en")).status_code == 200  # another language


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"text": "Hola {{supplier_name}}, 20% de descuento en {{po_number}} hoy."},
         "INCORRECT_CATEGORY"),
        ({"text": "Hola {{supplier_name}} {{po_number}} ya."}, "INVALID_FORMAT"),
    ],
)  # fmt: skip
def test_the_review_rejects_with_metas_reasons(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver, changes: dict[str, str], reason: str
) -> None:
    sandbox.configure(webhook_url=webhook_receiver.url, template_review_s=0.05)
    body = copy.deepcopy(template())
    body["components"][0]["text"] = changes["text"]
    assert post(sandbox, body).status_code == 200
    assert webhook_receiver.wait_for(lambda r: len(r.accepted()) == 1)
    value = webhook_receiver.accepted()[0].values()[0]
    assert (value["event"], value["reason"]) == ("REJECTED", reason)
    listed = httpx.get(
        sandbox.url + f"/v25.0/{SANDBOX_WABA_ID}/message_templates",
        params={"name": "po_chaser", "fields": "status,rejected_reason"},
        headers=HEADERS,
        timeout=10,
    ).json()["data"]
    assert listed[0]["status"] == "REJECTED" and listed[0]["rejected_reason"] == reason


def test_a_reset_forgets_created_templates_and_their_reviews(sandbox: SandboxServer) -> None:
    sandbox.configure(template_review_s=0.05)
    assert post(sandbox, template()).status_code == 200
    sandbox.reset()
    assert post(sandbox, template()).status_code == 200  # not a duplicate any more
