"""dashboard/app.py and login.py (AppTest): nothing before login, then the role's pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core import clock
from core.settings import get_settings
from core.users import add_user, remove_user, set_active, set_role
from tests.dashboard.pages import dashboard_env, texts

__all__ = ["dashboard_env"]

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PASSWORD = "a-long-enough-password"


def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60)


def _log_in(at: AppTest, username: str, password: str = PASSWORD) -> AppTest:
    at.text_input[0].set_value(username)
    at.text_input[1].set_value(password)
    return at.button[0].click().run()


def test_a_fresh_install_says_how_to_create_the_first_user(
    dashboard_env: str, engine: Engine
) -> None:
    at = app().run()
    assert not at.exception
    assert "wanotify users add admin --role admin" in texts(at)
    assert "demo users" not in texts(at)  # no demo accounts exist
    assert "Send a PO notice" not in texts(at)


def test_a_wrong_password_shows_nothing_but_the_form(dashboard_env: str, engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "default")
    at = _log_in(app().run(), "ana", "wrong-password!")
    assert "Wrong username or password" in texts(at)
    assert "Signed in as" not in texts(at)
    at = _log_in(at, "nobody")
    assert "Wrong username or password" in texts(at)  # unknown users read the same


def test_a_buyer_lands_on_the_send_page_of_their_tenant(dashboard_env: str, engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    at = _log_in(app().run(), "ana")
    assert not at.exception
    shown = texts(at)
    assert "Signed in as ana · buyer · acme" in shown
    assert "Send a PO notice" in shown


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_other_roles_log_in_without_errors(dashboard_env: str, engine: Engine, role: str) -> None:
    add_user(engine, "bo", PASSWORD, role, "default")
    at = _log_in(app().run(), "bo")
    assert not at.exception
    assert f"· {role} ·" in texts(at)
    if role == "manager":
        assert "Send a PO notice" not in texts(at)


def test_demo_users_are_announced_only_in_sandbox_mode_when_they_exist(
    dashboard_env: str, engine: Engine
) -> None:
    add_user(engine, "buyer", "demo-password", "buyer", "default", is_demo=True)
    at = app().run()
    assert "demo users" in texts(at)


@pytest.mark.parametrize("change", ["disable", "remove"])
def test_disabling_or_removing_a_user_ends_their_session_at_the_next_click(
    dashboard_env: str, engine: Engine, change: str
) -> None:
    add_user(engine, "ana", PASSWORD, "admin", "default")
    at = _log_in(app().run(), "ana")
    assert "Signed in as" in texts(at)
    set_active(engine, "ana", False) if change == "disable" else remove_user(engine, "ana")
    at.run()  # the next click
    assert not at.exception
    assert "Your session has ended: sign in again" in texts(at)
    assert "Signed in as" not in texts(at) and len(at.text_input) == 2  # the login form


def test_a_role_change_applies_at_the_next_click(dashboard_env: str, engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "default")
    at = _log_in(app().run(), "ana")
    assert "Send a PO notice" in texts(at)
    set_role(engine, "ana", "manager")
    at.run()
    assert not at.exception
    assert "· manager ·" in texts(at) and "Send a PO notice" not in texts(at)


def test_an_idle_session_ends_after_dashboard_idle_minutes(
    dashboard_env: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD_IDLE_MINUTES", "30")
    get_settings.cache_clear()
    add_user(engine, "ana", PASSWORD, "buyer", "default")
    start = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    with clock.frozen(start) as move:
        at = _log_in(app().run(), "ana")
        move(start + timedelta(minutes=29))
        at.run()  # a click within the idle time keeps the session and restarts the count
        assert "Signed in as" in texts(at)
        move(start + timedelta(minutes=58))
        at.run()
        assert "Signed in as" in texts(at)
        move(start + timedelta(minutes=88))
        at.run()
    assert "Signed out after 30 min without activity: sign in again" in texts(at)
    assert "Signed in as" not in texts(at)
