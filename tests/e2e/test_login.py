"""Logging in to the dashboard in a real browser: the form, wrong passwords, role menus."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from core.auth import Page
from tests.fixtures.browser import Product, log_in, screenshot, wait_idle

pytestmark = pytest.mark.browser


def _menu(page: Any) -> list[str]:
    nav = page.locator("[data-testid='stSidebarNav']")
    return [text.strip().split("\n")[-1] for text in nav.locator("a").all_inner_texts()]


def test_nothing_is_shown_before_login_and_a_wrong_password_is_refused(
    page: Any, product: Product
) -> None:
    page.goto(product.dashboard_url)
    wait_idle(page)
    assert page.locator("[data-testid='stSidebarNav']").count() == 0
    screenshot(page, "login")
    page.get_by_label("Username").fill("e2e-buyer")
    page.get_by_role("textbox", name="Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    wait_idle(page)
    expect(page.get_by_text("Wrong username or password")).to_be_visible(timeout=30_000)
    assert page.locator("[data-testid='stSidebarNav']").count() == 0


def test_a_buyer_sees_only_the_send_pages(page: Any, product: Product) -> None:
    log_in(page, product, "buyer")
    assert _menu(page) == ["Send PO notice", "Bulk send (CSV)", "Awaiting answer", "My alerts"]
    expect(page.get_by_text("Signed in as")).to_be_visible()


def test_a_page_the_role_may_not_use_cannot_be_reached_by_url(page: Any, product: Product) -> None:
    page.goto(f"{product.dashboard_url}/analytics")  # a deep link to a manager's page
    wait_idle(page)
    page.get_by_label("Username").fill("e2e-buyer")
    page.get_by_role("textbox", name="Password").fill(product.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("[data-testid='stSidebarNav']")
    expect(page.get_by_role("heading", name="Send a PO notice")).to_be_visible(timeout=30_000)
    assert page.get_by_role("heading", name="Analytics").count() == 0
    assert page.locator(".js-plotly-plot").count() == 0
    assert "Analytics" not in _menu(page)


def test_a_manager_sees_analytics_messages_and_health(page: Any, product: Product) -> None:
    log_in(page, product, "manager")
    assert _menu(page) == ["Awaiting answer", "Messages", "Analytics", "Health", "My alerts"]


def test_an_admin_sees_every_page(page: Any, product: Product) -> None:
    log_in(page, product, "admin")
    assert len(_menu(page)) == len(Page)
