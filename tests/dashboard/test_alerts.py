"""My alerts (AppTest) on a real database: a user's own choices saved and honoured, the
admin-only kinds only for admins, recent alerts shown as text, a half-made SMTP setting
named on the page."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert

from core.alerts.config import get_alert_settings
from core.alerts.events import EVENTS
from core.alerts.kinds import AlertKind
from core.alerts.preferences import Choice, user_choices
from core.alerts.rules import OUTBOX
from core.models.users import User
from core.users import UserInfo
from tests.dashboard.pages import dashboard_env, page, person, texts

__all__ = ["dashboard_env"]

MODULE = "dashboard.views.alerts"
T = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_alert_settings() -> object:
    get_alert_settings.cache_clear()
    yield None
    get_alert_settings.cache_clear()


def stored_user(engine: Engine, role: str, email: str | None) -> UserInfo:
    with engine.begin() as conn:
        user_id = conn.execute(
            insert(User.__table__)  # type: ignore[attr-defined]
            .values(
                username=f"{role}-user", display_name=role, password_hash="-", role=role,
                tenant_id="default", is_active=True, is_demo=False, email=email,
                created_at=T, updated_at=T,
            )
            .returning(User.__table__.c.id)  # type: ignore[attr-defined]
        ).scalar_one()  # fmt: skip
    return replace(person(role), id=int(user_id), email=email)


def test_a_buyer_chooses_their_alerts(dashboard_env: str, engine: Engine) -> None:
    buyer = stored_user(engine, "buyer", "ana@acme.test")
    at = page(MODULE, buyer).run()
    assert not at.exception
    shown = texts(at)
    assert "ana@acme.test" in shown and "A supplier rejects a PO I sent" in shown
    assert "Sending pauses" not in shown  # admins' kinds are not offered
    email_box = next(c for c in at.checkbox if c.key == "alert_email_po_rejected")
    assert email_box.value is True  # the default: told
    email_box.uncheck()
    at.button[0].click().run()
    assert not at.exception
    choices = user_choices(engine, buyer.id, "buyer")
    assert choices[AlertKind.PO_REJECTED] == Choice(email=False, chat=True)
    assert choices[AlertKind.BATCH_FAILURES] == Choice(email=True, chat=True)


def test_an_admin_sees_recent_alerts_as_text_and_no_secret(
    dashboard_env: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = stored_user(engine, "admin", None)
    monkeypatch.setenv("ALERTS_CHAT_WEBHOOK_URL", "https://hooks.example/services/T0/B0/SECRET")
    with engine.begin() as conn:
        event = conn.execute(
            insert(EVENTS).values(
                kind="po_rejected", tenant_id="default", audience={}, facts={},
                fanned_out=True, created_at=T,
            ).returning(EVENTS.c.id)
        ).scalar_one()  # fmt: skip
        conn.execute(
            insert(OUTBOX).values(
                event_id=event, kind="po_rejected", tenant_id="default", channel="email",
                recipient="[x](https://evil.example)@acme.test", status="pending",
                attempts=2, last_error="**boom** <script>", created_at=T,
            )
        )  # fmt: skip
    at = page(MODULE, admin).run()
    assert not at.exception
    shown = texts(at)
    assert "You have no e-mail address on file" in shown
    assert "Sending pauses (admins)" in shown
    assert "SECRET" not in shown
    recent, configuration = at.dataframe
    row = recent.value.iloc[0]
    assert row["recipient"] == "[x](https://evil.example)@acme.test"
    assert row["error"] == "**boom** <script>"
    values = dict(zip(configuration.value["variable"], configuration.value["value"], strict=True))
    assert values["ALERTS_CHAT_WEBHOOK_URL"] == "set (hidden)"
    assert values["ALERTS_SMTP_HOST"] == "not set"
    assert "SECRET" not in configuration.value.to_string()


def test_a_half_made_smtp_setting_is_named(
    dashboard_env: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    buyer = stored_user(engine, "buyer", "ana@acme.test")
    monkeypatch.setenv("ALERTS_SMTP_HOST", "smtp.acme.test")
    at = page(MODULE, buyer).run()
    assert not at.exception
    assert "missing ALERTS_SMTP_FROM" in texts(at)
