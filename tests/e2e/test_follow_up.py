"""Awaiting answer in Chromium (issue 15 items 1-2): a buyer opens the page, picks a PO
notice nobody confirmed, sends a reminder, and the embedded sender takes it to the
sandbox; the supplier's hostile reply is shown as text, loading nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlmodel import col, select

from core.db import session_scope
from core.models.events import InboundMessage
from core.models.messages import WhatsAppMessage
from tests.fixtures.browser import Product, log_in, screenshot, type_into, wait_idle
from tests.fixtures.consent import consenting_supplier

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = "+34699400001"
NAME = "Follow-up Distribuciones E2E"
REPLY = "[ver](https://evil.example/x) ![p](https://evil.example/p.png) <b>¿plazo?</b>"


def _seed(product: Product) -> str:
    """A PO notice delivered 30 hours ago with a text reply and no confirmation."""
    engine = product.engine()
    supplier_id = consenting_supplier(engine, PHONE, name=NAME)
    at = datetime.now(UTC) - timedelta(hours=30)
    with session_scope(engine) as session:
        notice = WhatsAppMessage(
            tenant_id="default", idempotency_key="e2e:follow-up:1", recipient_phone=PHONE,
            request_payload={}, status="delivered", template_name="po_notification",
            template_language="es", template_parameters={"supplier_name": NAME},
            po_number="PO-E2E-FOLLOW", supplier_id=supplier_id,
            whatsapp_message_id="wamid.e2e.follow.1", created_at=at, updated_at=at,
            sent_at=at, delivered_at=at,
        )  # fmt: skip
        session.add(notice)
        session.flush()
        session.add(
            InboundMessage(
                tenant_id="default", wamid="wamid.e2e.follow.in", from_wa_id=PHONE[1:],
                supplier_id=supplier_id, message_type="text", text=REPLY,
                context_wamid="wamid.e2e.follow.1", context_message_id=notice.id,
                at=at + timedelta(hours=1), received_at=at + timedelta(hours=1),
            )
        )  # fmt: skip
        return notice.id


def test_a_buyer_sends_a_reminder_from_awaiting_answer(page: Any, product: Product) -> None:
    _seed(product)
    log_in(page, product, "buyer")
    page.locator("[data-testid='stSidebarNav'] a", has_text="Awaiting answer").click()
    wait_idle(page)
    type_into(page, "Supplier", "Distribuciones E2E")
    grid = page.locator("[class*='st-key-follow_up_table_'] [data-testid='stDataFrame']")
    expect(grid).to_be_visible()
    row = grid.locator("[role=row]", has_text="PO-E2E-FOLLOW")
    # the grid draws its rows after the script run ends (its component loads and parses
    # the table in the browser): on a loaded machine that takes more than expect's 5 s
    expect(row).to_have_count(1, timeout=30_000)
    assert "evil.example" in row.inner_text()  # the reply, kept as its characters
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the first row's selection cell
    wait_idle(page)
    button = page.get_by_role("button", name="Send a reminder to 1 supplier")
    expect(button).to_be_enabled()
    button.click()
    wait_idle(page)
    expect(page.locator("[data-testid='stAlert']", has_text="Reminder queued")).to_be_visible()
    screenshot(page, "follow-up-reminder-sent")
    hrefs = page.eval_on_selector_all("[data-testid='stMain'] a", "els => els.map(e => e.href)")
    assert not [h for h in hrefs if "evil" in h], hrefs
    assert page.locator("img[src*='evil']").count() == 0

    engine = product.engine()
    deadline = time.monotonic() + 60
    reminder = None
    while time.monotonic() < deadline:  # the embedded sender takes it to the sandbox
        with session_scope(engine) as session:
            reminder = session.execute(
                select(WhatsAppMessage).where(
                    col(WhatsAppMessage.po_number) == "PO-E2E-FOLLOW",
                    col(WhatsAppMessage.template_name) == "po_reminder",
                )
            ).scalar_one_or_none()
            if reminder is not None and reminder.whatsapp_message_id:
                break
        time.sleep(0.2)
    assert reminder is not None and reminder.whatsapp_message_id, "the reminder was not sent"
    assert reminder.idempotency_key == f"reminder:PO-E2E-FOLLOW:{PHONE}:1"
    assert reminder.created_by == "e2e-buyer"

    # The list now counts the reminder against the PO's cap. A reload resumes the session
    # from its cookie (set by a request of the page's own after logging in) in a new
    # Streamlit session: the filters are gone, so the PO is looked for again by supplier
    # (the product is shared by every browser test: other rows may come first).
    _wait_for_session_cookie(page)
    page.reload()
    wait_idle(page)
    expect(page.get_by_role("heading", name="Awaiting answer")).to_be_visible(timeout=30_000)
    type_into(page, "Supplier", "Distribuciones E2E")
    row = page.locator("[class*='st-key-follow_up_table_'] [role=row]", has_text="PO-E2E-FOLLOW")
    expect(row).to_contain_text("1 of 2", timeout=30_000)


def _wait_for_session_cookie(page: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(c["name"] == "wanotify_session" for c in page.context.cookies()):
        assert time.monotonic() < deadline, f"no session cookie within {timeout} s"
        page.wait_for_timeout(100)
