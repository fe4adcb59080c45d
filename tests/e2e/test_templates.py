"""Creating a template in a real browser: problems shown under their fields, then a
submission the sandbox reviews and approves, the approval reaching the database by the
real webhook app."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from core.templates import get_template
from tests.fixtures.browser import TENANT, Product, log_in, screenshot, type_into, wait_idle

pytestmark = pytest.mark.browser


def _status(product: Product, name: str) -> str | None:
    with Session(product.engine()) as session:
        row = get_template(session, TENANT, name, "es")
    return row.status if row is not None else None


def _sample(page: Any, name: str, value: str) -> None:
    field = page.get_by_label(re.compile(f"^Sample for .*{name}"))
    expect(field).to_have_count(1)
    field.fill(value)
    field.press("Enter")
    wait_idle(page)
    expect(field).to_have_value(value)


def test_an_admin_creates_a_template_and_sees_it_approved(page: Any, product: Product) -> None:
    log_in(page, product, "admin")
    page.goto(f"{product.dashboard_url}/templates")
    wait_idle(page)
    page.get_by_role("tab", name="New template").click()
    type_into(page, "Template name", "E2E Chaser")
    body = page.get_by_label("Message body", exact=True)
    body.fill("{{supplier_name}}: el pedido {{po_number}} sigue sin confirmar, <b>gracias</b>")
    body.press("Control+Enter")  # a text area commits on Ctrl+Enter
    wait_idle(page)
    expect(page.get_by_text("The name may use only lowercase letters")).to_be_visible()
    expect(page.get_by_text("The body may not start or end with a parameter")).to_be_visible()
    expect(page.get_by_role("button", name="Submit for review")).to_be_disabled()
    screenshot(page, "template-new-problems")

    type_into(page, "Template name", "e2e_chaser")
    body.fill("Hola {{supplier_name}}: el pedido {{po_number}} sigue sin confirmar, <b>gracias</b>")
    body.press("Control+Enter")
    wait_idle(page)
    _sample(page, "supplier.{0,3}name", "Harinas Martín")  # labels are escaped Markdown
    _sample(page, "po.{0,3}number", "PO-E2E-7")
    form = page.get_by_role("tabpanel", name="New template")
    preview = form.get_by_test_id("wa-preview")
    expect(preview).to_contain_text("Hola Harinas Martín: el pedido PO-E2E-7")
    expect(preview).to_contain_text("<b>gracias</b>")  # shown as typed, never run
    submit = page.get_by_role("button", name="Submit for review")
    expect(submit).to_be_enabled()
    screenshot(page, "template-new-ready")
    submit.click()
    expect(page.get_by_text("Submitted e2e_chaser (es) for review: Pending review")).to_be_visible()
    deadline = time.monotonic() + 60
    while _status(product, "e2e_chaser") != "APPROVED":  # the sandbox's webhook, applied
        assert time.monotonic() < deadline, _status(product, "e2e_chaser")
        time.sleep(0.2)
    screenshot(page, "template-new-submitted")
