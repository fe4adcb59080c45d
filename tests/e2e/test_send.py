"""Sending one PO notice in a real browser, in sandbox mode, until the supplier reads it."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlmodel import Session, col, select

from core.consent import withdraw
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier
from tests.fixtures.browser import Product, log_in, screenshot, type_into, wait_idle

pytestmark = pytest.mark.browser


def _messages(product: Product, po_number: str) -> list[WhatsAppMessage]:
    with Session(product.engine()) as session:
        return list(
            session.exec(
                select(WhatsAppMessage).where(col(WhatsAppMessage.po_number) == po_number)
            ).all()
        )


def _wait_for_status(page: Any, status: str) -> None:
    """Wait (without reloading: the page updates itself) until the status line says it."""
    page.wait_for_function(
        """(status) => [...document.querySelectorAll("[data-testid='stMarkdownContainer']")]
            .map((e) => e.innerText.trim())
            .some((text) => text.startsWith("Status:") && text.endsWith(status))""",
        arg=status,
        timeout=90_000,
    )


def test_a_buyer_sends_a_po_notice_once_and_sees_it_read(page: Any, product: Product) -> None:
    log_in(page, product, "buyer")
    screenshot(page, "send-empty")
    type_into(page, "Supplier name", "Ferretería <b>Gómez</b>")
    type_into(page, "WhatsApp number", "+34 612 345 678")
    page.get_by_text("The supplier agreed to receive WhatsApp messages from us").click()
    wait_idle(page)
    type_into(page, "PO number", "PO-E2E-0001")
    type_into(page, "Total amount", "1.234,50")
    preview = page.locator("[data-testid='wa-preview']")
    expect(preview).to_contain_text("1.234,50", timeout=30_000)  # the page updates itself
    expect(preview).to_contain_text("PO-E2E-0001")
    expect(preview).to_contain_text("Ferretería <b>Gómez</b>")  # shown as typed, never run
    expect(page.get_by_text("Ready to send to +34612345678")).to_be_visible()
    screenshot(page, "send-ready")

    send = page.get_by_role("button", name="Send to supplier")
    send.dblclick()  # one send, whether the browser delivers one click or two
    expect(page.get_by_text("PO-E2E-0001 to +34612345678")).to_be_visible(timeout=30_000)
    assert len(_messages(product, "PO-E2E-0001")) == 1
    send.click()  # and once more after the rerun: still one message
    expect(page.get_by_text("nothing was sent twice")).to_be_visible(timeout=30_000)
    assert len(_messages(product, "PO-E2E-0001")) == 1
    _wait_for_status(page, "read")
    screenshot(page, "send-read")
    (message,) = _messages(product, "PO-E2E-0001")
    assert message.status == "read" and message.read_at is not None
    assert message.created_by == "e2e-buyer"


def test_invalid_values_are_flagged_and_nothing_is_sent(page: Any, product: Product) -> None:
    log_in(page, product, "buyer")
    type_into(page, "Supplier name", "Lácteos Ruiz")
    type_into(page, "WhatsApp number", "+34 612")
    type_into(page, "PO number", "PO-E2E-BAD")
    type_into(page, "Total amount", "abc")
    warning = page.locator("[data-testid='stAlertContainer']", has_text="Fix before sending")
    expect(warning).to_contain_text("too short", timeout=30_000)
    expect(warning).to_contain_text("'abc' is not an amount")
    expect(page.get_by_role("button", name="Send to supplier")).to_be_disabled()
    screenshot(page, "send-invalid")
    assert _messages(product, "PO-E2E-BAD") == []


def test_an_opted_out_supplier_is_shown_as_not_sendable_with_the_reason(
    page: Any, product: Product
) -> None:
    """Issue 12 item 1: a supplier who replied BAJA is refused on the send page, with
    why, before anything is sent; ticking consent there cannot override it."""
    with Session(product.engine()) as session:
        supplier = Supplier(
            tenant_id="default", name="Baja Ltd", phone_e164="+34612990001", opted_in=True
        )
        session.add(supplier)
        session.flush()
        withdraw(session, supplier, source="reply", by="+34612990001", evidence="BAJA")
        session.commit()
    log_in(page, product, "buyer")
    type_into(page, "Supplier name", "Baja Ltd")
    type_into(page, "WhatsApp number", "612 99 00 01")
    type_into(page, "PO number", "PO-E2E-OUT")
    type_into(page, "Total amount", "10")
    refusal = page.locator("[data-testid='stAlertContainer']", has_text="opted out")
    expect(refusal.first).to_contain_text("Baja Ltd opted out of WhatsApp messages")
    expect(refusal.first).to_contain_text("a reply with a stop word")
    expect(page.get_by_text("The supplier agreed to receive WhatsApp messages")).to_have_count(0)
    expect(page.get_by_role("button", name="Send to supplier")).to_be_disabled()
    screenshot(page, "send-opted-out")
    assert _messages(product, "PO-E2E-OUT") == []
