"""dashboard/sso_login.py on the login page (AppTest): a half-made `[auth]` fails closed in
one line and local accounts keep working; a complete one offers the provider's button.

The real sign-in through a provider is tested in Chromium: tests/e2e/test_sso.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.users import add_user
from tests.dashboard.pages import dashboard_env, texts

__all__ = ["dashboard_env"]

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PASSWORD = "a-long-enough-password"
COMPLETE: dict[str, Any] = {
    "redirect_uri": "https://wanotify.acme.example/oauth2callback",
    "cookie_secret": "c" * 40,
    "keycloak": {
        "client_id": "wanotify",
        "client_secret": "not-shown-anywhere",
        "server_metadata_url": "https://sso.acme.example/realms/acme/.well-known/openid-configuration",
    },
}


def _app(auth: dict[str, Any]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = auth
    return at


def _buttons(at: AppTest) -> list[str]:
    return [str(b.label).replace("\u2060", "") for b in at.button]


def test_a_complete_auth_section_offers_its_provider_beside_the_password_form(
    dashboard_env: str, engine: Engine
) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "default")
    at = _app(COMPLETE).run()
    assert not at.exception and not at.error
    assert "Sign in with Keycloak" in _buttons(at)
    assert len(at.text_input) == 2  # username and password


def test_a_half_made_auth_section_shows_one_line_and_local_logins_still_work(
    dashboard_env: str, engine: Engine
) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "default")
    half = {
        **COMPLETE,
        "keycloak": {"client_id": "wanotify", "client_secret": "not-shown-anywhere"},
    }
    at = _app(half).run()
    assert not at.exception
    errors = [e.value.replace("\u2060", "").replace("\\", "") for e in at.error]
    assert errors == ["Single sign-on: [auth.keycloak] server_metadata_url is missing"]
    assert not any(label.startswith("Sign in with") for label in _buttons(at))
    assert "not-shown-anywhere" not in texts(at)
    at.text_input[0].set_value("ana")
    at.text_input[1].set_value(PASSWORD)
    at = next(b for b in at.button if "Log in" in str(b.label)).click().run()
    assert not at.exception
    assert "Signed in as" in texts(at)
