"""Settings: the seed's names, deprecated names with a warning, one-line errors, sandbox mode."""

from __future__ import annotations

import logging
import warnings

import pytest

from core.settings import (
    SANDBOX_PHONE_NUMBER_ID,
    SANDBOX_TOKEN,
    SettingsError,
    get_settings,
    load_settings,
)


def test_no_credentials_is_sandbox_mode_said_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="core.settings"):
        settings = get_settings()
    assert settings.sandbox_mode
    assert settings.access_token == SANDBOX_TOKEN
    assert settings.phone_number_id == SANDBOX_PHONE_NUMBER_ID
    assert settings.api_base_url == "http://127.0.0.1:8700"
    assert any("SANDBOX MODE" in r.getMessage() for r in caplog.records)


def test_seed_names_configure_a_real_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "EAAG-real")
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", "123456789")
    monkeypatch.setenv("WHATSAPP_BUSINESS_ACCOUNT_ID", "987")
    monkeypatch.setenv("WHATSAPP_API_VERSION", "v26.0")
    monkeypatch.setenv("WHATSAPP_MAX_MPS", "1000")
    monkeypatch.setenv("ENABLE_WHATSAPP_NOTIFICATIONS", "false")
    settings = load_settings()
    assert not settings.sandbox_mode
    assert settings.api_base_url == "https://graph.facebook.com"
    assert settings.access_token == "EAAG-real"
    assert settings.phone_number_id == "123456789"
    assert settings.business_account_id == "987"
    assert settings.whatsapp_api_version == "v26.0"
    assert settings.whatsapp_max_mps == 1000
    assert settings.enable_whatsapp_notifications is False
    assert "EAAG-real" not in repr(settings)  # secrets are not shown


def test_default_api_version_is_one_meta_still_supports() -> None:
    version = float(load_settings().whatsapp_api_version.lstrip("v"))
    assert version >= 24.0  # v18.0, the seed's, expired in January 2026


@pytest.mark.parametrize(
    ("old", "new", "value", "attribute"),
    [
        ("WHATSAPP_API_KEY", "WHATSAPP_ACCESS_TOKEN", "EAAG-old", "access_token"),
        ("WHATSAPP_BASE_URL", "WHATSAPP_API_BASE_URL", "http://proxy:9000", "api_base_url"),
        ("WHATSAPP_FROM_NUMBER", "WHATSAPP_PHONE_NUMBER_ID", "555", "phone_number_id"),
    ],
)
def test_deprecated_seed_names_still_work_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    old: str,
    new: str,
    value: str,
    attribute: str,
) -> None:
    monkeypatch.setenv(old, value)
    if old != "WHATSAPP_API_KEY":
        monkeypatch.setenv("WHATSAPP_API_KEY", "EAAG-x")  # a real account, so ids are used
    if old != "WHATSAPP_FROM_NUMBER":
        monkeypatch.setenv("WHATSAPP_FROM_NUMBER", "555")
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        settings = load_settings()
    assert getattr(settings, attribute) == value
    messages = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    assert any(f"{old} is deprecated; set {new} instead" in m for m in messages)
    assert all(value not in m for m in messages if "EAAG" in value)  # secret never logged


def test_current_name_wins_over_the_deprecated_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_API_KEY", "old-token")
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "new-token")
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_settings().access_token == "new-token"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WHATSAPP_MAX_MPS", "fast"),
        ("WHATSAPP_MAX_MPS", "0"),
        ("WHATSAPP_MAX_MPS", "-5"),
        ("WHATSAPP_API_VERSION", "latest"),
        ("WHATSAPP_DEFAULT_REGION", "Spain"),
        ("DATABASE_URL", "mysql://x"),
        ("ENABLE_WHATSAPP_NOTIFICATIONS", "perhaps"),
        ("WHATSAPP_INFLIGHT_GRACE_SECONDS", "-1"),
        ("WHATSAPP_CLAIM_LEASE_SECONDS", "soon"),
        ("WHATSAPP_RATE_MARGIN_SECONDS", "2"),
        ("SANDBOX_PORT", "99999"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    text = str(caught.value)
    assert text.startswith(f"{name}:")
    assert "\n" not in text


def test_bad_secret_values_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://user:hunter2@db/x")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


def test_dotenv_file_is_read(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    Path(".env").write_text("WHATSAPP_MAX_MPS=250\nWHATSAPP_DEFAULT_REGION=mx\n", "utf-8")
    settings = load_settings()
    assert settings.whatsapp_max_mps == 250
    assert settings.whatsapp_default_region == "MX"
