"""The dashboard speaks the browser's language (Accept-Language) until the user picks one,
and the pick follows them to their next session, in real Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fixtures.browser import Product, screenshot, wait_idle

pytestmark = pytest.mark.browser


@pytest.fixture
def spanish_page(chromium: Any, product: Product) -> Iterator[Any]:
    """A page in a browser set to Spanish (Spain): it sends Accept-Language: es-ES."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, locale="es-ES")
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def _log_in(page: Any, product: Product, username: str, labels: tuple[str, str, str]) -> None:
    page.goto(product.dashboard_url)
    wait_idle(page)
    user_label, password_label, button = labels
    page.get_by_label(user_label).fill(username)
    page.get_by_role("textbox", name=password_label).fill(product.password)
    page.get_by_role("button", name=button).click()
    page.wait_for_selector("[data-testid='stSidebarNav']")
    wait_idle(page)


def test_a_spanish_browser_reads_spanish_and_the_choice_follows_the_user(
    spanish_page: Any, page: Any, product: Product
) -> None:
    done = product.wanotify(
        "users", "add", "e2e-lang", "--role", "manager", "--password", product.password
    )
    assert done.returncode == 0, done.stderr
    spanish_page.goto(product.dashboard_url)
    wait_idle(spanish_page)
    expect(spanish_page.get_by_role("button", name="Iniciar sesión")).to_be_visible()
    screenshot(spanish_page, "login-es")
    _log_in(spanish_page, product, "e2e-lang", ("Usuario", "Contraseña", "Iniciar sesión"))
    nav = spanish_page.locator("[data-testid='stSidebarNav']")
    expect(nav.get_by_text("Analítica")).to_be_visible()
    expect(spanish_page.get_by_text("Sesión iniciada como")).to_be_visible()
    screenshot(spanish_page, "messages-es")

    # An English browser (the default fixture) logs in in English, picks Spanish...
    _log_in(page, product, "e2e-lang", ("Username", "Password", "Log in"))
    expect(page.get_by_text("Signed in as")).to_be_visible()
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_label("Language").click()
    page.get_by_role("option", name="Español").click()
    wait_idle(page)
    expect(page.get_by_text("Sesión iniciada como")).to_be_visible()
    # ...and reads Spanish in its next session too, whatever the browser says.
    page.context.clear_cookies()
    page.goto("about:blank")
    _log_in(page, product, "e2e-lang", ("Username", "Password", "Log in"))
    expect(page.get_by_text("Sesión iniciada como")).to_be_visible()


#: Each page's menu entry and heading in Spanish.
PAGES_ES = {
    "send": ("Enviar aviso de OC", "Enviar un aviso de OC"),
    "bulk": ("Envío masivo (CSV)", "Envío masivo desde CSV"),
    "follow_up": ("Pendientes de respuesta", "Pendientes de respuesta"),
    "messages": ("Mensajes", "Mensajes"),
    "analytics": ("Analítica", "Analítica"),
    "templates": ("Plantillas", "Plantillas"),
    "suppliers": ("Proveedores", "Proveedores"),
    "health": ("Estado del sistema", "Estado del sistema"),
    "settings": ("Configuración", "Configuración"),
    "alerts": ("Mis alertas", "Mis alertas"),
}


def test_every_page_reads_in_spanish_for_an_admin(spanish_page: Any, product: Product) -> None:
    """Each page opens without an error, headed in Spanish (screenshots: es-<page>.png)."""
    done = product.wanotify(
        "users", "add", "e2e-lang-admin", "--role", "admin", "--password", product.password
    )
    assert done.returncode == 0, done.stderr
    _log_in(spanish_page, product, "e2e-lang-admin", ("Usuario", "Contraseña", "Iniciar sesión"))
    nav = spanish_page.locator("[data-testid='stSidebarNav']")
    for slug, (menu, heading) in PAGES_ES.items():
        nav.get_by_role("link", name=menu, exact=True).click()
        wait_idle(spanish_page)
        expect(spanish_page.get_by_role("heading", name=heading, exact=True).first).to_be_visible()
        assert spanish_page.locator("[data-testid='stException']").count() == 0, slug
        screenshot(spanish_page, f"es-{slug}")
