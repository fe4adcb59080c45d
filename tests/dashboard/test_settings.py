"""The settings page (AppTest) on a real SQLite file: rate card edits, users overview,
configuration with secrets masked, and role checks."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from core.pricing import card_currency, ensure_default_rate_card, list_rates, set_rate
from core.settings import get_settings
from core.users import add_user
from tests.dashboard.pages import dashboard_env, page, person, texts
from tests.fixtures.live import set_live_env

__all__ = ["dashboard_env"]

MODULE = "dashboard.views.settings"
ADMIN = person("admin")


def _frames(at: object) -> str:
    return "\n".join(d.value.to_string() for d in at.dataframe)  # type: ignore[attr-defined]


def test_rate_card_add_and_refuse(dashboard_env: str, engine: Engine) -> None:
    ensure_default_rate_card(engine, "default")
    at = page(MODULE, ADMIN).run()
    assert not at.exception
    assert "example rates" in texts(at)
    assert set(at.dataframe[0].value["note"]) == {"example rate"}  # not the stored English
    form = at.tabs[0]
    rate_box = next(t for t in form.text_input if t.label == "Rate per message")
    rate_box.set_value("0,0185")
    next(b for b in form.button if b.label == "Save rate").click().run()
    assert not at.exception
    new = [r for r in list_rates(engine, "default") if not r.is_example]
    assert len(new) == 1 and new[0].rate == Decimal("0.0185") and new[0].currency == "USD"
    assert new[0].market == "34" and new[0].category == "utility"
    rate_box = next(t for t in at.tabs[0].text_input if t.label == "Rate per message")
    rate_box.set_value("1e9")
    next(b for b in at.tabs[0].button if b.label == "Save rate").click().run()
    assert "typing mistake" in texts(at)


def test_a_rate_can_be_removed(dashboard_env: str, engine: Engine) -> None:
    ensure_default_rate_card(engine, "default")
    before = len(list_rates(engine, "default"))
    at = page(MODULE, ADMIN).run()
    at.button(key="rate_delete").click().run()
    assert len(list_rates(engine, "default")) == before - 1


def test_users_overview_is_read_only_and_tenant_scoped(dashboard_env: str, engine: Engine) -> None:
    add_user(engine, "ana", "a-long-password", "buyer", "default", display_name="Ana Ruiz")
    add_user(engine, "otro", "a-long-password", "admin", "elsewhere")
    at = page(MODULE, ADMIN).run()
    shown = _frames(at)
    assert "Ana Ruiz" in shown and "otro" not in shown
    assert "password" not in shown.lower() and "$2b$" not in shown
    assert "wanotify users add" in texts(at)


def test_configuration_never_shows_a_secret(
    dashboard_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_live_env(
        monkeypatch,
        WHATSAPP_ACCESS_TOKEN="EAAG-very-secret-token",
        WHATSAPP_PHONE_NUMBER_ID="106540352242922",
        WHATSAPP_APP_SECRET="app-secret-value",
    )
    monkeypatch.setenv("RABBITMQ_URL", "amqp://wanotify:rabbit-pass@mq.internal:5672/")
    get_settings.cache_clear()
    at = page(MODULE, ADMIN).run()
    shown = _frames(at)
    at.button(key="config_env_last").click().run()  # the variables page through 20 at a time
    shown += _frames(at)
    for secret in ("EAAG-very-secret-token", "app-secret-value", "rabbit-pass"):
        assert secret not in shown
    assert "set (hidden)" in shown and "amqp://wanotify:***@mq.internal:5672/" in shown
    assert "live" in shown and "106540352242922" in shown


def test_managers_are_refused(dashboard_env: str) -> None:
    at = page(MODULE, person("manager")).run()
    assert "may not manage settings" in texts(at)
    assert not at.tabs


def test_the_rate_card_pages_says_open_ends_in_words_and_defaults_to_its_currency(
    dashboard_env: str, engine: Engine
) -> None:
    for n in range(25):  # 25 markets in euros, each with one rate still in force
        set_rate(engine, "default", market=str(30 + n), category="utility", rate="0.02",
                 currency="EUR", effective_from=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    set_rate(engine, "default", market="30", category="utility", rate="0.03",
             currency="EUR", effective_from=datetime(2026, 7, 1, tzinfo=UTC))  # fmt: skip
    at = page(MODULE, ADMIN).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 20  # the first page
    assert "None" not in set(table["until"]) and "in force" in set(table["until"])
    assert "Rows 1–20 of 26" in texts(at)
    currency = next(t for t in at.tabs[0].text_input if t.label == "Currency")
    assert currency.value == "EUR"  # the card's own currency, not a fixed one
    at.button(key="rate_card_last").click().run()
    last = at.dataframe[0].value
    assert len(last) == 6 and "Rows 21–26 of 26" in texts(at)
    assert at.button(key="rate_card_next").disabled


def test_a_card_with_no_rates_defaults_to_usd() -> None:
    assert card_currency([]) == "USD"
