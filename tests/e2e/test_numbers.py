"""The Numbers tab of Settings in a real browser: an admin adds a number (the sandbox
plays it), tests the connection and sees Meta's health; a token typed with no
WANOTIFY_SECRET_KEY is refused (fail closed) and never shown; the number is removed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from core.numbers.admin import list_numbers
from core.settings import load_settings
from tests.fixtures.browser import Product, log_in, screenshot, wait_idle

pytestmark = pytest.mark.browser

NUMBER = "2000077"
TOKEN = "EAAG-e2e-never-shown-123"


def _numbers_tab(page: Any, product: Product) -> None:
    page.goto(f"{product.dashboard_url}/settings")
    wait_idle(page)
    page.get_by_role("tab", name="Numbers").click()
    wait_idle(page)


def _add(page: Any, token: str = "") -> None:
    page.get_by_label("Phone number ID", exact=True).fill(NUMBER)
    page.get_by_label("WhatsApp Business Account ID", exact=True).fill("3000077")
    page.get_by_label("Display name (optional)", exact=True).fill("<b>E2E</b> Norte")
    token_field = page.get_by_label("Access token", exact=True)
    assert token_field.get_attribute("type") == "password"
    token_field.fill(token)
    page.get_by_role("button", name="Add number").click()
    wait_idle(page)


def test_an_admin_adds_tests_and_removes_a_number(page: Any, product: Product) -> None:
    httpx.post(f"{product.sandbox_url}/_sandbox/numbers", timeout=10, json={
        "phone_number_id": NUMBER, "waba_id": "3000077", "verified_name": "Norte E2E",
        "quality_rating": "YELLOW", "messaging_limit_tier": "TIER_10K",
    }).raise_for_status()  # fmt: skip
    log_in(page, product, "admin")
    _numbers_tab(page, product)
    table = page.locator(".st-key-numbers_grid [data-testid='stDataFrame']")
    expect(table).to_contain_text("environment")  # the WHATSAPP_* number, the default

    _add(page, TOKEN)  # the e2e product has no WANOTIFY_SECRET_KEY: refused, not stored
    expect(page.get_by_text("WANOTIFY_SECRET_KEY is not set")).to_be_visible()
    assert TOKEN not in page.content()
    _add(page)  # sandbox mode: no token means the sandbox's own
    expect(table).to_contain_text(NUMBER)
    expect(table).to_contain_text("<b>E2E</b> Norte")  # outside text shown as text

    page.get_by_role("button", name="Test connection").click()
    wait_idle(page)
    expect(table).to_contain_text("TIER_10K")
    expect(table).to_contain_text("Norte E2E")  # Meta's verified name replaces ours
    expect(page.get_by_text("Status: Connected")).to_be_visible()
    screenshot(page, "settings-numbers")
    settings = load_settings()
    (stored,) = [n for n in list_numbers(product.engine(), settings) if n.phone_number_id == NUMBER]
    assert (stored.quality_rating, stored.messaging_tier) == ("YELLOW", "TIER_10K")

    page.get_by_text("Yes, stop sending from it").click()
    wait_idle(page)
    page.get_by_role("button", name="Remove").click()
    wait_idle(page)
    expect(table).not_to_contain_text(NUMBER)
    assert TOKEN not in page.content()
