"""Sending one PO notice in a real browser, in sandbox mode, until the supplier reads it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, col, select

from core.models.messages import WhatsAppMessage
from tests.fixtures.browser import Product, log_in, screenshot, wait_idle

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
    page.get_by_label("Supplier name").fill("Ferretería <b>Gómez</b>")
    page.get_by_label("WhatsApp number").fill("+34 612 345 678")
    page.get_by_label("PO number").fill("PO-E2E-0001")
    page.get_by_label("Total amount").fill("1.234,50")
    page.get_by_label("Total amount").press("Enter")
    wait_idle(page)
    preview = page.locator("[data-testid='wa-preview']")
    preview.wait_for()
    text = preview.inner_text()
    assert "PO-E2E-0001" in text and "1.234,50" in text
    assert "Ferretería <b>Gómez</b>" in text  # shown as typed, never run as HTML
    assert page.get_by_text("Ready to send to +34612345678").is_visible()
    screenshot(page, "send-ready")

    send = page.get_by_role("button", name="Send to supplier")
    send.dblclick()
    wait_idle(page)
    send.click()  # and once more after the rerun: still one message
    wait_idle(page)
    assert len(_messages(product, "PO-E2E-0001")) == 1
    assert page.get_by_text("nothing was sent twice").is_visible()
    _wait_for_status(page, "read")
    screenshot(page, "send-read")
    (message,) = _messages(product, "PO-E2E-0001")
    assert message.status == "read" and message.read_at is not None
    assert message.created_by == "e2e-buyer"


def test_invalid_values_are_flagged_and_nothing_is_sent(page: Any, product: Product) -> None:
    log_in(page, product, "buyer")
    page.get_by_label("Supplier name").fill("Lácteos Ruiz")
    page.get_by_label("WhatsApp number").fill("+34 612")
    page.get_by_label("PO number").fill("PO-E2E-BAD")
    page.get_by_label("Total amount").fill("abc")
    page.get_by_label("Total amount").press("Enter")
    wait_idle(page)
    warning = page.get_by_text("Fix before sending")
    warning.wait_for()
    body = page.locator("[data-testid='stAlertContainer']").all_inner_texts()
    joined = "\n".join(body)
    assert "too short" in joined and "abc" in joined
    assert page.get_by_role("button", name="Send to supplier").is_disabled()
    screenshot(page, "send-invalid")
    assert _messages(product, "PO-E2E-BAD") == []
