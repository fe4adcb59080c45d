"""Sign in once (issue 12 item 3), in a real browser against the real dashboard server.

A sign-in survives a reload and opens in a second tab; its cookie is HttpOnly (no page
script sees it) and SameSite=Strict; signing out in one tab ends the other at its next
click and deletes the cookie; a session idle longer than DASHBOARD_IDLE_MINUTES ends
(its last activity is moved back in the database rather than waiting an hour).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from core.login_guard.server_sessions import COOKIE_NAME, SIGNED_OUT
from core.login_guard.session import idle_text
from core.models.dashboard_sessions import DashboardSession
from core.users import get_user
from tests.fixtures.browser import Product, log_in, wait_idle

pytestmark = pytest.mark.browser

TABLE = DashboardSession.__table__  # type: ignore[attr-defined]
SIGNED_IN = "Signed in as"


def _signed_in(page: Any) -> None:
    expect(page.get_by_text(SIGNED_IN)).to_be_visible()
    expect(page.get_by_role("button", name="Log in")).to_have_count(0)


def _signed_out(page: Any) -> None:
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.get_by_text(SIGNED_IN)).to_have_count(0)


def _session_cookie(page: Any) -> dict[str, Any] | None:
    cookies = [c for c in page.context.cookies() if c["name"] == COOKIE_NAME]
    return cookies[0] if cookies else None


def _wait_cookie(page: Any, *, present: bool) -> dict[str, Any] | None:
    """The session cookie once it is there (or gone): the page sets and deletes it with a
    request of its own right after signing in or out."""
    for _ in range(100):
        cookie = _session_cookie(page)
        if (cookie is not None) == present:
            return cookie
        page.wait_for_timeout(100)
    return _session_cookie(page)


def _go(page: Any, link: str) -> None:
    """A click: open a page from the sidebar."""
    page.locator("[data-testid='stSidebarNav'] a", has_text=link).click()
    wait_idle(page)


def test_a_reload_and_a_second_tab_stay_signed_in_with_an_httponly_cookie(
    page: Any, product: Product
) -> None:
    log_in(page, product, "buyer")
    cookie = _wait_cookie(page, present=True)
    assert cookie is not None
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain http on 127.0.0.1: Secure is set behind TLS
    assert COOKIE_NAME not in page.evaluate("document.cookie")  # scripts cannot read it

    page.goto(f"{product.dashboard_url}/bulk")
    wait_idle(page)
    _signed_in(page)
    expect(page.get_by_role("heading", name="Bulk send from CSV")).to_be_visible()
    page.reload()
    wait_idle(page)
    _signed_in(page)

    second = page.context.new_page()
    second.goto(product.dashboard_url)
    wait_idle(second)
    _signed_in(second)
    second.close()


def test_signing_out_in_one_tab_ends_the_other_at_its_next_click(
    page: Any, product: Product
) -> None:
    log_in(page, product, "buyer")
    other = page.context.new_page()
    assert _wait_cookie(page, present=True)
    other.goto(product.dashboard_url)
    wait_idle(other)
    _signed_in(other)

    page.get_by_role("button", name="Log out").click()
    wait_idle(page)
    _signed_out(page)
    assert _wait_cookie(page, present=False) is None  # the sign-in page deletes it too

    _go(other, "Bulk send")
    _signed_out(other)
    expect(other.get_by_text(SIGNED_OUT)).to_be_visible()
    other.reload()
    wait_idle(other)
    _signed_out(other)
    page.reload()
    wait_idle(page)
    _signed_out(page)


def test_a_session_idle_too_long_ends_and_a_reload_does_not_revive_it(
    page: Any, product: Product
) -> None:
    log_in(page, product, "manager")
    assert _wait_cookie(page, present=True)
    engine = product.engine()
    user = get_user(engine, "e2e-manager")
    assert user is not None
    idle = timedelta(minutes=60)  # DASHBOARD_IDLE_MINUTES' default, which the product runs
    with engine.begin() as conn:  # as if the last click was an hour ago
        moved = conn.execute(
            update(TABLE)
            .where(TABLE.c.user_id == user.id, TABLE.c.revoked_at.is_(None))
            .values(last_seen_at=datetime.now(UTC) - idle)  # the server's wall clock
        )
    assert moved.rowcount >= 1
    _go(page, "Messages")
    _signed_out(page)
    expect(page.get_by_text(idle_text(idle))).to_be_visible()
    page.reload()
    wait_idle(page)
    _signed_out(page)


def test_disabling_a_user_ends_their_open_sessions(page: Any, product: Product) -> None:
    name = "e2e-session-disabled"
    added = product.wanotify(
        "users", "add", name, "--role", "buyer", "--password", product.password
    )
    assert added.returncode == 0, added.stderr
    page.goto(product.dashboard_url)
    wait_idle(page)
    page.get_by_label("Username").fill(name)
    page.get_by_role("textbox", name="Password").fill(product.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("[data-testid='stSidebarNav']")
    wait_idle(page)
    assert _wait_cookie(page, present=True)
    disabled = product.wanotify("users", "disable", name)  # an admin, from a terminal
    assert disabled.returncode == 0, disabled.stderr
    _go(page, "Bulk send")
    _signed_out(page)
    page.reload()
    wait_idle(page)
    _signed_out(page)
