"""Webhooks are matched by the business number they name (`metadata.phone_number_id`):
an event for a number we do not know is held, never applied to another tenant's
message, and a status naming another number than its message's is not applied."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, text

from core.numbers.admin import add_number
from core.settings import SANDBOX_PHONE_NUMBER_ID, load_settings
from core.webhooks.health import read_health
from tests.core.webhooks.helpers import (
    T0,
    add_message,
    add_supplier,
    apply_all,
    body_of,
    envelope,
    inbound_message,
    journal,
    message_row,
    status,
    timeline,
    value,
)

B_NUMBER = "2000002"  # tenant globex's own number
STRANGER = "9999999"  # a number nobody registered


def _as(number: str, doc_value: dict[str, Any]) -> bytes:
    doc_value["metadata"] = {"display_phone_number": "34910000002", "phone_number_id": number}
    return body_of(envelope(doc_value))


def _sent_from(engine: Engine, message_id: str, number: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE whatsapp_messages SET phone_number_id = :n WHERE id = :i"),
            {"n": number, "i": message_id},
        )


@pytest.fixture
def two_tenants(engine: Engine) -> Engine:
    """`default` sends from the environment's number, `globex` from B_NUMBER."""
    add_number(
        engine, load_settings(), tenant_id="globex", phone_number_id=B_NUMBER, access_token=None
    )
    return engine


def test_a_status_for_a_number_we_do_not_know_is_held_not_applied(two_tenants: Engine) -> None:
    mid = add_message(two_tenants, wamid="wamid.A1")
    _sent_from(two_tenants, mid, SANDBOX_PHONE_NUMBER_ID)
    journal(two_tenants, _as(STRANGER, value(statuses=[status("wamid.A1", "delivered", T0)])))
    report = apply_all(two_tenants)
    assert report.statuses.wrong_number == 1 and report.statuses.applied == 0
    assert message_row(two_tenants, mid)["status"] == "accepted"
    [event] = timeline(two_tenants, "wamid.A1")
    assert (event["state"], event["message_id"], event["tenant_id"]) == ("unknown_num", None, None)
    health = read_health(two_tenants)
    assert health.unknown_number == 1 and health.needs_attention
    assert any("number we do not know" in cause for cause in health.causes())


def test_a_status_naming_another_number_than_its_messages_is_not_applied(
    two_tenants: Engine,
) -> None:
    mine = add_message(two_tenants, wamid="wamid.A2", message_id=None)
    _sent_from(two_tenants, mine, SANDBOX_PHONE_NUMBER_ID)
    theirs = add_message(two_tenants, wamid="wamid.B2", tenant="globex")
    _sent_from(two_tenants, theirs, B_NUMBER)
    journal(
        two_tenants,
        # B's number claims A's message (by wamid and by callback data): both refused
        _as(B_NUMBER, value(statuses=[status("wamid.A2", "read", T0)])),
        _as(B_NUMBER, value(statuses=[status("wamid.X", "failed", T0, callback=mine)])),
        # and B's own status is applied
        _as(B_NUMBER, value(statuses=[status("wamid.B2", "delivered", T0)])),
    )
    report = apply_all(two_tenants)
    assert report.statuses.wrong_number == 2
    assert message_row(two_tenants, mine)["status"] == "accepted"
    assert message_row(two_tenants, mine)["whatsapp_message_id"] == "wamid.A2"
    assert message_row(two_tenants, theirs)["status"] == "delivered"
    assert {e["state"] for e in timeline(two_tenants, "wamid.A2")} == {"other_number"}
    assert read_health(two_tenants).other_number == 2


def test_a_held_status_is_checked_again_when_its_message_appears(two_tenants: Engine) -> None:
    journal(two_tenants, _as(B_NUMBER, value(statuses=[status("wamid.LATE", "sent", T0)])))
    assert apply_all(two_tenants).statuses.held == 1  # no message yet
    mid = add_message(two_tenants, wamid="wamid.LATE")
    _sent_from(two_tenants, mid, SANDBOX_PHONE_NUMBER_ID)  # ...and it is not B's
    apply_all(two_tenants)
    assert message_row(two_tenants, mid)["status"] == "accepted"


def test_replies_to_a_number_we_do_not_know_are_held_in_their_receipt(
    two_tenants: Engine,
) -> None:
    add_supplier(two_tenants, "+34612345678")
    reply = inbound_message("wamid.IN1", "34612345678", "text", text={"body": "hola"})
    journal(two_tenants, _as(STRANGER, value(messages=[reply])))
    report = apply_all(two_tenants)
    assert report.inbound.held == 1 and report.inbound.stored == 0
    with two_tenants.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM inbound_messages")).scalar_one() == 0
        note = conn.execute(text("SELECT apply_error FROM webhook_receipts")).scalar_one()
    assert "9999999" in note
    health = read_health(two_tenants)
    assert health.held_replies == 1 and health.rejected_signatures.count == 0
    assert any("replies to a WhatsApp number we do not know" in c for c in health.causes())


def test_a_reply_to_a_tenants_number_stays_in_that_tenant(two_tenants: Engine) -> None:
    add_supplier(two_tenants, "+34612345678", tenant="default")
    theirs = add_supplier(two_tenants, "+34612345678", tenant="globex")
    notice = add_message(two_tenants, wamid="wamid.A5", tenant="default")
    _sent_from(two_tenants, notice, SANDBOX_PHONE_NUMBER_ID)
    # to globex's number, quoting default's notice: globex's reply, not linked to it
    reply = inbound_message(
        "wamid.IN5", "34612345678", "text", context="wamid.A5", text={"body": "ok"}
    )
    journal(two_tenants, _as(B_NUMBER, value(messages=[reply])))
    apply_all(two_tenants)
    with two_tenants.connect() as conn:
        row = conn.execute(
            text("SELECT tenant_id, supplier_id, context_message_id FROM inbound_messages")
        ).one()
    assert tuple(row) == ("globex", theirs, None)
