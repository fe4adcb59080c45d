"""dashboard/app.py and login.py (AppTest): nothing before login, then the role's pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.users import add_user
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
    assert "Signed in as **ana** · buyer · acme" in shown
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
