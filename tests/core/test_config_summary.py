"""core.config_summary: every setting listed, no secret ever in what is shown."""

from __future__ import annotations

import pytest

from core.config_summary import (
    HIDDEN,
    NOT_SET,
    describe_settings,
    effective_summary,
    mask_url,
    safe_value,
    shown_value,
)
from core.i18n import set_locale
from core.settings import load_settings
from tests.fixtures.live import LIVE_ENV, set_live_env


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cr3t@db:5432/wanotify", "postgresql://app:***@db:5432/wanotify"),
        ("postgresql://db/w?password=s3cr3t&sslmode=require", "postgresql://db/w?password=***&sslmode=require"),
        ("sqlite:///wanotify.db", "sqlite:///wanotify.db"),
        ("http://[::1", "(unreadable URL)"),
    ],
)  # fmt: skip
def test_urls_lose_their_passwords(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_secrets_are_shown_only_as_set(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "WHATSAPP_ACCESS_TOKEN": "EAAG-secret-1",
        "WHATSAPP_APP_SECRET": "secret-2",
        "WHATSAPP_WEBHOOK_VERIFY_TOKEN": "secret-3",
        "PO_EVENTS_API_KEY": "secret-4",
        "DATABASE_URL": "postgresql://u:secret-5@db/w",
        "RABBITMQ_URL": "amqp://u:secret-6@mq:5672/",
    }
    set_live_env(monkeypatch, WHATSAPP_PHONE_NUMBER_ID="106540352242922")
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    cfg = load_settings()
    items = {i.variable: i.value for i in describe_settings(cfg)}
    everything = repr(items) + repr(effective_summary(cfg))
    for value in secrets.values():
        assert value.split("@")[0].split(":")[-1] not in everything
    assert items["WHATSAPP_ACCESS_TOKEN"] == HIDDEN
    assert items["SANDBOX_WEBHOOK_URL"] == NOT_SET
    assert items["WHATSAPP_BUSINESS_ACCOUNT_ID"] == LIVE_ENV["WHATSAPP_BUSINESS_ACCOUNT_ID"]
    assert items["WHATSAPP_PHONE_NUMBER_ID"] == "106540352242922"
    assert "DATABASE_URL" in items and "WHATSAPP_MAX_MPS" in items


def test_empty_values_show_as_not_set_in_the_readers_language() -> None:
    """A blank value is "not set", and our own words (not set, hidden, booleans) are
    translated while a setting's real text is shown as it is."""
    assert safe_value("WHATSAPP_PHONE_NUMBER_ID", "") == NOT_SET
    assert safe_value("WHATSAPP_APP_SECRET", "") == NOT_SET
    try:
        set_locale("es")
        assert shown_value(NOT_SET) == "sin definir"
        assert shown_value(HIDDEN) == "definido (oculto)"
        assert shown_value(safe_value("X", True)) == "sí"
        assert shown_value(safe_value("X", False)) == "no"
        assert shown_value("not set ") == "not set "  # a real value that only looks like ours
        assert shown_value("sandbox-1") == "sandbox-1"
    finally:
        set_locale("en")
    assert shown_value(NOT_SET) == "not set"
    assert shown_value(safe_value("X", True)) == "yes"
