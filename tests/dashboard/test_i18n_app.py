"""The dashboard in Spanish (AppTest): the login form, the menu and sidebar, the picker,
and the choice kept on the user row for the next session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.i18n import set_locale
from core.user_locale import choose_language, chosen_language
from core.users import add_user, get_user
from dashboard.language import CHOICE_KEY
from tests.dashboard.pages import dashboard_env, texts
from tests.dashboard.test_app import PASSWORD, app

__all__ = ["dashboard_env"]


@pytest.fixture(autouse=True)
def english_after() -> Iterator[None]:
    yield
    set_locale("en")


def _log_in(at: AppTest, username: str) -> AppTest:
    at.text_input[0].set_value(username)
    at.text_input[1].set_value(PASSWORD)
    return at.button[0].click().run()


def test_the_login_form_and_pages_read_in_the_chosen_language(
    dashboard_env: str, engine: Engine
) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    at = app()
    at.session_state[CHOICE_KEY] = "es"
    at.run()
    assert not at.exception
    assert at.text_input[0].label == "Usuario" and at.text_input[1].label == "Contraseña"
    assert at.button[0].label == "Iniciar sesión"
    assert "Avisos de órdenes de compra a proveedores por WhatsApp" in texts(at)
    _log_in(at, "nobody")
    assert "Usuario o contraseña incorrectos" in texts(at)
    _log_in(at, "ana")
    assert not at.exception
    shown = texts(at)
    assert "Sesión iniciada como ana · comprador · acme" in shown
    assert at.sidebar.button[0].label == "Cerrar sesión"
    ana = get_user(engine, "ana")
    assert ana is not None and chosen_language(engine, ana.id) == "es"  # picked at login


def test_the_picker_switches_language_and_remembers_it_on_the_user(
    dashboard_env: str, engine: Engine
) -> None:
    add_user(engine, "ana", PASSWORD, "admin", "default")
    user = get_user(engine, "ana")
    assert user is not None and chosen_language(engine, user.id) is None
    at = _log_in(app().run(), "ana")
    assert "Signed in as" in texts(at)
    at.sidebar.selectbox[0].select("es").run()
    assert not at.exception
    assert "Sesión iniciada como" in texts(at)
    assert chosen_language(engine, user.id) == "es"
    fresh = _log_in(app().run(), "ana")  # a new session: the stored choice applies
    assert "Sesión iniciada como" in texts(fresh)
    fresh.sidebar.selectbox[0].select("en").run()
    assert "Signed in as" in texts(fresh) and chosen_language(engine, user.id) == "en"


def test_only_known_languages_are_stored(dashboard_env: str, engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "admin", "default")
    user = get_user(engine, "ana")
    assert user is not None
    with pytest.raises(ValueError, match="not a dashboard language"):
        choose_language(engine, user.id, "<script>")
    choose_language(engine, user.id, None)
    assert chosen_language(engine, user.id) is None
