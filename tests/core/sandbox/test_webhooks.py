"""Signed webhooks back to a real receiver: statuses, faults, retries, replies, templates."""

from __future__ import annotations

import socket
from collections import Counter

from core.sandbox import SandboxServer
from core.settings import SANDBOX_PHONE_NUMBER_ID, SANDBOX_WABA_ID
from tests.core.sandbox.helpers import MESSAGES_PATH, client, error_code, po_notification, text
from tests.fixtures.sandbox import WebhookReceiver

FAST = {"time_scale": 0.01, "duplicate_rate": 0.0, "reorder_rate": 0.0, "reply_rate": 0.0}


def _statuses_of(receiver: WebhookReceiver, wamid: str) -> list[str]:
    return [s["status"] for s in receiver.statuses() if s["id"] == wamid]


def _send(sandbox: SandboxServer, body: dict) -> str:
    with client(sandbox.url) as http:
        response = http.post(MESSAGES_PATH, json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["messages"][0]["id"])


def test_statuses_are_signed_and_shaped_like_metas(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.configure(webhook_url=webhook_receiver.url, batch_rate=0.0, **FAST)
    wamid = _send(sandbox, po_notification("+5215512345678", opaque="our-id-1"))
    assert webhook_receiver.wait_for(lambda r: "read" in _statuses_of(r, wamid))
    assert sorted(_statuses_of(webhook_receiver, wamid)) == ["delivered", "read", "sent"]
    for post in webhook_receiver.received:
        assert post.signature_ok()
        assert not post.signature_ok("another-secret")
        assert post.headers["content-type"] == "application/json"
        body = post.json
        assert body["object"] == "whatsapp_business_account"
        [entry] = body["entry"]
        assert entry["id"] == SANDBOX_WABA_ID
        [change] = entry["changes"]
        assert change["field"] == "messages"
        assert change["value"]["messaging_product"] == "whatsapp"
        assert change["value"]["metadata"] == {
            "display_phone_number": "34910000000",
            "phone_number_id": SANDBOX_PHONE_NUMBER_ID,
        }
    by_status = {s["status"]: s for s in webhook_receiver.statuses()}
    sent, delivered, read = by_status["sent"], by_status["delivered"], by_status["read"]
    for status in (sent, delivered, read):
        assert status["recipient_id"] == "5215512345678"  # the wa_id, not the number dialled
        assert status["biz_opaque_callback_data"] == "our-id-1"
        assert status["timestamp"].isdigit()
    pricing = {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
    assert sent["pricing"] == pricing
    assert delivered["pricing"] == pricing
    assert "pricing" not in read
    assert int(sent["timestamp"]) <= int(delivered["timestamp"]) <= int(read["timestamp"])
    assert sandbox.wait_for_webhooks()["posted"] == 3


def test_free_form_text_is_priced_as_free_service(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.inbound("+34612345678", text="Hola")
    sandbox.configure(webhook_url=webhook_receiver.url, **FAST)
    wamid = _send(sandbox, text("+34612345678"))
    assert webhook_receiver.wait_for(lambda r: "delivered" in _statuses_of(r, wamid))
    sent = next(s for s in webhook_receiver.statuses() if s["id"] == wamid)
    assert sent["pricing"] == {
        "billable": False,
        "pricing_model": "PMP",
        "category": "service",
        "type": "free_customer_service",
    }
    assert "biz_opaque_callback_data" not in sent


def test_duplicates_reordering_and_batching_are_deterministic_per_seed(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    faults = {
        "webhook_url": webhook_receiver.url,
        "time_scale": 0.01,
        "duplicate_rate": 0.4,
        "reorder_rate": 0.6,
        "batch_rate": 1.0,
        "reply_rate": 0.0,
    }

    def run(seed: int) -> Counter[tuple[str, str]]:
        sandbox.reset(seed=seed)
        webhook_receiver.received.clear()
        sandbox.configure(**faults)
        for i in range(20):
            _send(sandbox, po_notification(f"+3460000{i:04d}", opaque=f"m{i}"))
        counters = sandbox.wait_for_webhooks()
        assert counters["pending"] == 0 and counters["failed"] == 0
        return Counter(
            (s["biz_opaque_callback_data"], s["status"]) for s in webhook_receiver.statuses()
        )

    first = run(seed=5)
    counters = sandbox.stats()["webhooks"]
    assert counters["duplicates_planned"] > 0 and counters["reordered_planned"] > 0
    assert any(count > 1 for count in first.values())  # some events came twice
    skipped = [m for (m, status) in first if status == "read" and (m, "delivered") not in first]
    assert skipped  # delivered never came for some read messages; read carries pricing then
    for status in webhook_receiver.statuses():
        if status["biz_opaque_callback_data"] in skipped and status["status"] == "read":
            assert status["pricing"]["category"] == "utility"
    assert counters["batched"] > 0  # several statuses in one POST
    assert any(
        len(v.get("statuses", [])) > 1 for r in webhook_receiver.accepted() for v in r.values()
    )
    assert run(seed=5) == first  # the same seed gives the same events
    assert counters["statuses"] == sum(first.values())


def test_out_of_order_delivered_keeps_its_earlier_timestamp(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.configure(
        webhook_url=webhook_receiver.url,
        time_scale=0.01,
        duplicate_rate=0.0,
        reorder_rate=1.0,
        batch_rate=0.0,
        reply_rate=0.0,
    )
    wamids = [_send(sandbox, po_notification(f"+3460001{i:04d}")) for i in range(12)]
    sandbox.wait_for_webhooks()
    by_id = {w: [s for s in webhook_receiver.statuses() if s["id"] == w] for w in wamids}
    words = {w: [s["status"] for s in seq] for w, seq in by_id.items()}
    # Classified by what arrived, not by arrival order alone: posts a few milliseconds
    # apart (time_scale 0.01) travel concurrently and may land in either order.
    both = [w for w in wamids if {"delivered", "read"} <= set(words[w])]
    late = [w for w in both if words[w][-1] == "delivered"]
    skipped = [w for w in wamids if "read" in words[w] and "delivered" not in words[w]]
    assert late and skipped  # both kinds of reordering happened
    for w in both:  # a delivered posted after read still carries its earlier time
        stamps = {s["status"]: int(s["timestamp"]) for s in by_id[w]}
        assert stamps["delivered"] <= stamps["read"]


def test_failed_posts_are_retried_with_the_same_bytes(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.configure(webhook_url=webhook_receiver.url, batch_rate=0.0, **FAST)
    webhook_receiver.fail_next(2, status=500)
    wamid = _send(sandbox, po_notification())
    assert webhook_receiver.wait_for(lambda r: "read" in _statuses_of(r, wamid))
    counters = sandbox.wait_for_webhooks()
    answers: dict[bytes, list[int]] = {}
    for post in webhook_receiver.received:
        answers.setdefault(post.body, []).append(post.answered)
    refused = {body: seq for body, seq in answers.items() if 500 in seq}
    assert refused  # the refused POSTs came again, byte for byte, until answered 200
    assert all(seq[-1] == 200 and seq.count(200) == 1 for seq in refused.values())
    assert sum(seq.count(500) for seq in refused.values()) == 2
    assert counters["retries"] == 2 and counters["failed"] == 0
    assert counters["attempts"] == counters["posted"] + 2
    assert sorted(_statuses_of(webhook_receiver, wamid)) == ["delivered", "read", "sent"]


def test_a_receiver_that_is_down_never_breaks_the_sandbox(sandbox: SandboxServer) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}/webhook"
    sandbox.configure(webhook_url=dead_url, webhook_max_attempts=3, batch_rate=0.0, **FAST)
    _send(sandbox, po_notification())
    counters = sandbox.wait_for_webhooks()
    assert counters["posted"] == 0
    assert counters["failed"] == 3  # sent, delivered, read: each given up after 3 tries
    assert counters["attempts"] == 9
    assert counters["last_error"]
    _send(sandbox, po_notification("+34612345600"))  # still serving


def test_magic_undeliverable_and_paused_fail_by_webhook(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.configure(webhook_url=webhook_receiver.url, **FAST)
    undeliverable = _send(sandbox, po_notification("+34600000000"))
    with client(sandbox.url) as http:
        held = http.post(MESSAGES_PATH, json=po_notification("+34600000132")).json()
    assert held["messages"][0]["message_status"] == "held_for_quality_assessment"
    paused = held["messages"][0]["id"]
    sandbox.wait_for_webhooks()
    assert _statuses_of(webhook_receiver, undeliverable) == ["failed"]
    assert _statuses_of(webhook_receiver, paused) == ["failed"]
    failures = {s["id"]: s for s in webhook_receiver.statuses()}
    [error] = failures[undeliverable]["errors"]
    assert error["code"] == 131026
    assert error["title"] == error["message"] == "Message undeliverable"
    assert error["error_data"]["details"]
    assert failures[paused]["errors"][0]["code"] == 132015
    assert "pricing" not in failures[undeliverable]


def test_magic_silent_number_gets_no_webhook(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.configure(webhook_url=webhook_receiver.url, **FAST)
    _send(sandbox, po_notification("+34600000099"))
    counters = sandbox.wait_for_webhooks()
    assert counters["attempts"] == 0 and webhook_receiver.received == []


def test_supplier_taps_a_quick_reply_and_opens_the_window(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.configure(webhook_url=webhook_receiver.url, pair_burst=45, **FAST)
    with client(sandbox.url) as http:
        assert error_code(http.post(MESSAGES_PATH, json=text("+34600000200"))) == 131047
    confirm = _send(sandbox, po_notification("+34600000200", payload="ack:PO-1"))
    reject = _send(sandbox, po_notification("+34600000201", language="en", payload=None))
    assert webhook_receiver.wait_for(lambda r: len(r.inbound()) == 2)
    replies = {v["messages"][0]["context"]["id"]: v for v in webhook_receiver.inbound()}
    value = replies[confirm]
    message = value["messages"][0]
    assert message["type"] == "button"
    assert message["button"] == {"payload": "ack:PO-1", "text": "Confirmar pedido"}
    assert message["from"] == "34600000200"
    assert message["context"] == {"from": "34910000000", "id": confirm}
    assert message["id"].startswith("wamid.") and message["timestamp"].isdigit()
    assert value["contacts"][0]["wa_id"] == "34600000200"
    assert value["contacts"][0]["profile"]["name"]
    # no payload was sent with the button: Meta gives the label as payload
    assert replies[reject]["messages"][0]["button"] == {"payload": "Reject", "text": "Reject"}
    with client(sandbox.url) as http:  # the reply opened the 24 h window
        assert http.post(MESSAGES_PATH, json=text("+34600000200")).status_code == 200
    assert sandbox.stats()["inbound"] == 2


def test_supplier_text_reply_by_magic_number(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.configure(webhook_url=webhook_receiver.url, **FAST)
    wamid = _send(sandbox, po_notification("+34600000202"))
    assert webhook_receiver.wait_for(lambda r: len(r.inbound()) == 1)
    [value] = webhook_receiver.inbound()
    assert value["messages"][0]["type"] == "text"
    assert value["messages"][0]["text"]["body"]
    assert value["messages"][0]["context"]["id"] == wamid


def test_reply_rate_makes_some_suppliers_answer(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.configure(webhook_url=webhook_receiver.url, **{**FAST, "reply_rate": 0.5})
    for i in range(20):
        _send(sandbox, po_notification(f"+3461100{i:04d}", payload=f"ack:{i}"))
    sandbox.wait_for_webhooks()
    replies = webhook_receiver.inbound()
    assert 0 < len(replies) < 20
    for value in replies:
        button = value["messages"][0]["button"]
        assert button["text"] in ("Confirmar pedido", "Rechazar")


def test_admin_inbound_posts_a_signed_message(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.configure(webhook_url=webhook_receiver.url, **FAST)
    wamid = _send(sandbox, po_notification("+34612345678", payload="ack:PO-9"))
    answer = sandbox.inbound(
        "+34612345678", button_index=0, context_id=wamid, name="Harinas Martín"
    )
    assert answer["posting"] is True
    assert webhook_receiver.wait_for(lambda r: len(r.inbound()) == 1)
    [value] = webhook_receiver.inbound()
    assert value["messages"] == answer["value"]["messages"]
    assert value["metadata"]["phone_number_id"] == SANDBOX_PHONE_NUMBER_ID
    assert value["contacts"] == [{"profile": {"name": "Harinas Martín"}, "wa_id": "34612345678"}]
    assert value["messages"][0]["button"] == {"payload": "ack:PO-9", "text": "Confirmar pedido"}
    post = next(r for r in webhook_receiver.accepted() if r.values()[0].get("messages"))
    assert post.signature_ok()


def test_template_status_change_posts_the_update_and_holds_sends(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.configure(webhook_url=webhook_receiver.url, **FAST)
    sandbox.set_template_status("po_notification", "es", "PAUSED", reason="LOW_QUALITY")
    assert webhook_receiver.wait_for(lambda r: len(r.accepted()) == 1)
    [post] = webhook_receiver.accepted()
    assert post.signature_ok()
    change = post.json["entry"][0]["changes"][0]
    assert change["field"] == "message_template_status_update"
    assert change["value"]["event"] == "PAUSED"
    assert change["value"]["message_template_name"] == "po_notification"
    assert change["value"]["message_template_language"] == "es"
    with client(sandbox.url) as http:
        assert error_code(http.post(MESSAGES_PATH, json=po_notification())) == 132015
        sandbox.set_template_status("po_notification", "es", "REINSTATED")
        assert http.post(MESSAGES_PATH, json=po_notification()).status_code == 200


def test_webhooks_disabled_posts_nothing(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.configure(webhook_url=webhook_receiver.url, webhooks_enabled=False, **FAST)
    _send(sandbox, po_notification())
    assert sandbox.wait_for_webhooks()["attempts"] == 0
    assert webhook_receiver.received == []
