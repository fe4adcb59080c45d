"""The dashboard and the mode (AppTest): a partial live configuration serves nothing, demo
logins only in sandbox mode, the mode on every page, refused webhooks on the Health page."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.users import add_user
from core.webhooks.rejections import Tally, record_rejections
from tests.dashboard.pages import dashboard_env, page, person, texts
from tests.fixtures.live import set_live_env

__all__ = ["dashboard_env"]

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
HEALTH = "dashboard.views.health"
UNREACHABLE_API = "http://127.0.0.1:9"  # live, but the API probe fails at once


def _log_in(username: str, password: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input[0].set_value(username)
    at.text_input[1].set_value(password)
    return at.button[0].click().run()


def test_a_partial_live_configuration_serves_nothing_but_the_line(
    dashboard_env: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(engine, "buyer", "demo-password", "buyer", "default", is_demo=True)
    monkeypatch.setenv("WHATSAPP_APP_SECRET", "only-the-secret")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "wanotify cannot start" in texts(at)
    assert at.code[0].value.startswith(
        "incomplete live WhatsApp configuration (WHATSAPP_APP_SECRET set): missing "
        "WHATSAPP_ACCESS_TOKEN"
    )
    assert "only-the-secret" not in texts(at) + at.code[0].value
    assert len(at.text_input) == 0  # no login form, no page


@pytest.mark.parametrize("sandbox", [True, False], ids=["sandbox", "live"])
def test_demo_logins_work_only_in_sandbox_mode(
    dashboard_env: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, sandbox: bool
) -> None:
    add_user(engine, "buyer", "demo-password", "buyer", "default", is_demo=True)
    if not sandbox:
        set_live_env(monkeypatch, WHATSAPP_API_BASE_URL=UNREACHABLE_API)
    at = _log_in("buyer", "demo-password")
    assert not at.exception
    shown = texts(at)
    assert ("Signed in as" in shown) is sandbox
    assert ("demo users" in shown) is (sandbox and "Signed in as" not in shown)


def test_live_mode_is_shown_on_every_page(
    dashboard_env: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_live_env(monkeypatch, WHATSAPP_API_BASE_URL=UNREACHABLE_API)
    add_user(engine, "ana", "a-long-enough-password", "manager", "default")
    at = _log_in("ana", "a-long-enough-password")
    assert not at.exception
    assert "Live mode" in texts(at) and "Sandbox mode" not in texts(at)


def test_health_names_refused_signatures_and_what_to_check(
    dashboard_env: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_live_env(monkeypatch, WHATSAPP_API_BASE_URL=UNREACHABLE_API)
    quiet = page(HEALTH, person("manager")).run()
    assert "Live mode" in texts(quiet) and "Webhooks are being refused" not in texts(quiet)
    at = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    record_rejections(engine, {"bad_signature": Tally(37, at, at)}, None)
    loud = page(HEALTH, person("manager")).run()
    assert not loud.exception
    errors = [e.value for e in loud.error if "Webhooks are being refused" in e.value]
    assert len(errors) == 1
    assert "37 deliveries refused for a bad signature" in errors[0]
    assert "WHATSAPP_APP_SECRET" in errors[0]
