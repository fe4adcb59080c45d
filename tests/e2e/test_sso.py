"""Single sign-on end to end: Chromium, the dashboard's `st.login`, a real OIDC provider.

`sso_dashboard` (one per module) starts `oidc-provider-mock` (a real OpenID Connect
provider: discovery, authorization form, token endpoint, signed ID tokens) and a second
dashboard process over the `product`'s database, in a directory of its own whose
`.streamlit/secrets.toml` configures `[auth]` for that provider. Nothing is mocked on
our side: the browser clicks "Sign in with Keycloak", types the subject on the
provider's own form, and Streamlit's /oauth2callback exchanges the code.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.fixtures.browser import (
    ROOT,
    Product,
    _free_port,
    _start,
    _wait_ok,
    screenshot,
    wait_idle,
)

pytestmark = pytest.mark.browser

MANAGER_EMAIL = "sso-manager@example.test"
PROVIDER_BUTTON = "Sign in with Keycloak"


@dataclass
class SsoDashboard:
    """A dashboard with single sign-on configured, and the provider it trusts."""

    url: str
    provider_url: str
    product: Product


@pytest.fixture(scope="module")
def sso_dashboard(product: Product) -> Iterator[SsoDashboard]:
    """oidc-provider-mock and a dashboard whose secrets.toml points `[auth.keycloak]` at it."""
    pytest.importorskip("oidc_provider_mock", reason="pip install oidc-provider-mock")
    pytest.importorskip("authlib", reason="pip install Authlib")
    workdir = Path(tempfile.mkdtemp(prefix="wanotify-sso-"))
    provider_port, dashboard_port = _free_port(), _free_port()
    provider_url = f"http://127.0.0.1:{provider_port}"
    url = f"http://127.0.0.1:{dashboard_port}"
    shutil.copytree(ROOT / ".streamlit", workdir / ".streamlit")
    (workdir / ".streamlit" / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "{url}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
        "[auth.keycloak]\n"
        'client_id = "wanotify-e2e"\n'
        'client_secret = "e2e-client-secret"\n'
        f'server_metadata_url = "{provider_url}/.well-known/openid-configuration"\n'
    )
    env = {
        **product.env,
        "DASHBOARD_PORT": str(dashboard_port),
        "DASHBOARD_EMBEDDED_SENDER": "false",  # the product's dashboard sends
        "SSO_GROUP_RULES": "wa-buyers=buyer@default",
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        provider, log = _start(
            "oidc-provider",
            [sys.executable, "-m", "oidc_provider_mock", "--port", str(provider_port)],
            env,
            workdir,
        )
        processes.append(provider)
        _wait_ok(f"{provider_url}/.well-known/openid-configuration", provider, "provider", log, 60)
        for args in (
            (
                "users",
                "add",
                "e2e-sso-manager",
                "--role",
                "manager",
                "--password",
                product.password,
            ),
            ("users", "email", "e2e-sso-manager", MANAGER_EMAIL),
        ):
            done = product.wanotify(*args)
            assert done.returncode == 0, done.stderr
        streamlit = [
            sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "server.py"),
            "--server.headless", "true",
            "--server.port", str(dashboard_port),
            "--server.address", "127.0.0.1",
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",
        ]  # fmt: skip
        dashboard, log = _start("sso-dashboard", streamlit, env, workdir)
        processes.append(dashboard)
        _wait_ok(f"{url}/_stcore/health", dashboard, "SSO dashboard", log, 90)
        yield SsoDashboard(url, provider_url, product)
    finally:
        for proc in processes:
            proc.terminate()
        for proc in processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def tab(
    chromium: Any, sso_dashboard: SsoDashboard, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """A fresh browser context (own cookies); the provider's CDN stylesheet is not fetched."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    context.route("https://cdn.jsdelivr.net/**", lambda route: route.abort())
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed and not page.is_closed():
        with contextlib.suppress(Exception):
            screenshot(page, f"FAILED-{request.node.name}")
    context.close()


#: A manager's menu: the follow-up list (issue 15 item 1), the team's messages, analytics
#: and health, and the alerts each user chooses (item 3).
MANAGER_MENU = ["Awaiting answer", "Messages", "Analytics", "Health", "My alerts"]


def _menu(page: Any) -> list[str]:
    nav = page.locator("[data-testid='stSidebarNav']")
    return [text.strip().split("\n")[-1] for text in nav.locator("a").all_inner_texts()]


def _sign_in_at_provider(page: Any, sso: SsoDashboard, subject: str) -> None:
    """From the login page through the provider's form, back to the dashboard."""
    page.goto(sso.url)
    wait_idle(page)
    page.get_by_role("button", name=PROVIDER_BUTTON).click()
    page.wait_for_url(f"{sso.provider_url}/oauth2/authorize**")
    page.locator("input[name='sub']").fill(subject)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{sso.url}/**")
    wait_idle(page)


def _wait_for_cookie(page: Any, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(c["name"] == name for c in page.context.cookies()):
        assert time.monotonic() < deadline, f"no {name} cookie within {timeout} s"
        page.wait_for_timeout(100)


def _identity_cookies(page: Any) -> list[str]:
    return [c["name"] for c in page.context.cookies() if c["name"].startswith("_streamlit_user")]


def test_a_linked_email_signs_in_with_its_role_and_signing_out_ends_both(
    tab: Any, sso_dashboard: SsoDashboard
) -> None:
    _sign_in_at_provider(tab, sso_dashboard, MANAGER_EMAIL)
    tab.wait_for_selector("[data-testid='stSidebarNav']")
    wait_idle(tab)
    expect(tab.get_by_text("Signed in as")).to_be_visible()
    assert _menu(tab) == MANAGER_MENU  # the manager's pages
    screenshot(tab, "sso-signed-in")
    # the same server-side session as a password login: a reload resumes it from its cookie
    _wait_for_cookie(tab, "wanotify_session")
    tab.reload()
    wait_idle(tab)
    tab.wait_for_selector("[data-testid='stSidebarNav']")
    assert _menu(tab) == MANAGER_MENU
    assert _identity_cookies(tab)  # Streamlit's signed identity cookie (HttpOnly)
    identity = [c for c in tab.context.cookies() if c["name"].startswith("_streamlit_user")]
    assert all(c["httpOnly"] for c in identity)
    tab.get_by_role("button", name="Log out").click()
    # st.logout: Streamlit clears its cookie and sends the browser to the provider's
    # end_session_endpoint, which (this provider) asks to confirm, then comes back.
    tab.wait_for_url(f"{sso_dashboard.provider_url}/oauth2/end_session**")
    tab.get_by_role("button").first.click()
    tab.wait_for_url(f"{sso_dashboard.url}/**")
    wait_idle(tab)
    expect(tab.get_by_role("button", name=PROVIDER_BUTTON)).to_be_visible()
    assert tab.locator("[data-testid='stSidebarNav']").count() == 0
    assert not _identity_cookies(tab)
    tab.reload()  # nothing left to sign in with
    wait_idle(tab)
    expect(tab.get_by_label("Username")).to_be_visible()
    assert tab.locator("[data-testid='stSidebarNav']").count() == 0


def test_an_unknown_email_is_refused_and_no_account_is_made(
    tab: Any, sso_dashboard: SsoDashboard
) -> None:
    listed_before = sso_dashboard.product.wanotify("users", "list").stdout
    _sign_in_at_provider(tab, sso_dashboard, "stranger@elsewhere.test")
    alert = tab.get_by_role("alert").filter(has_text="has no wanotify account")
    expect(alert).to_be_visible()
    shown = alert.inner_text().replace("\u2060", "")  # md_escape's invisible word joiners
    assert shown.startswith("stranger@elsewhere.test has no wanotify account")
    screenshot(tab, "sso-refused")
    assert tab.locator("[data-testid='stSidebarNav']").count() == 0
    expect(tab.get_by_label("Username")).to_be_visible()  # the password form stays
    assert sso_dashboard.product.wanotify("users", "list").stdout == listed_before


def test_a_group_rule_lets_a_new_buyer_in_as_a_buyer(tab: Any, sso_dashboard: SsoDashboard) -> None:
    claims = {"email": "new-buyer@example.test", "groups": ["staff", "wa-buyers"]}
    httpx.put(f"{sso_dashboard.provider_url}/users/new-buyer", json=claims).raise_for_status()
    _sign_in_at_provider(tab, sso_dashboard, "new-buyer")
    tab.wait_for_selector("[data-testid='stSidebarNav']")
    wait_idle(tab)
    assert _menu(tab) == ["Send PO notice", "Bulk send (CSV)", "Awaiting answer", "My alerts"]
    listed = [
        line.split() for line in sso_dashboard.product.wanotify("users", "list").stdout.splitlines()
    ]
    assert ["new-buyer@example.test", "buyer", "default", "new-buyer@example.test"] in listed


def test_a_local_account_still_logs_in_with_its_password(
    tab: Any, sso_dashboard: SsoDashboard
) -> None:
    tab.goto(sso_dashboard.url)
    wait_idle(tab)
    expect(tab.get_by_role("button", name=PROVIDER_BUTTON)).to_be_visible()
    tab.get_by_label("Username").fill("e2e-admin")
    tab.get_by_role("textbox", name="Password").fill(sso_dashboard.product.password)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_selector("[data-testid='stSidebarNav']")
    wait_idle(tab)
    assert "Settings" in _menu(tab)
    assert not _identity_cookies(tab)
