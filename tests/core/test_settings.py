"""Settings: the seed's names, deprecated names with a warning, one-line errors, the mode."""

from __future__ import annotations

import itertools
import logging
import warnings

import pytest

from core.settings import (
    SANDBOX_APP_SECRET,
    SANDBOX_PHONE_NUMBER_ID,
    SANDBOX_TOKEN,
    SANDBOX_VERIFY_TOKEN,
    SettingsError,
    get_settings,
    load_settings,
)
from tests.fixtures.live import LIVE_ENV, set_live_env


def test_no_credentials_is_sandbox_mode_said_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="core.settings"):
        settings = get_settings()
    assert settings.sandbox_mode
    assert settings.access_token == SANDBOX_TOKEN
    assert settings.phone_number_id == SANDBOX_PHONE_NUMBER_ID
    assert settings.api_base_url == "http://127.0.0.1:8700"
    assert any("SANDBOX MODE" in r.getMessage() for r in caplog.records)


def test_seed_names_configure_a_real_account(monkeypatch: pytest.MonkeyPatch) -> None:
    set_live_env(
        monkeypatch,
        WHATSAPP_ACCESS_TOKEN="EAAG-real",
        WHATSAPP_PHONE_NUMBER_ID="123456789",
        WHATSAPP_BUSINESS_ACCOUNT_ID="987",
    )
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
    set_live_env(monkeypatch)  # a real account, so ids are used
    monkeypatch.delenv(new, raising=False)
    monkeypatch.setenv(old, value)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        settings = load_settings()
    assert getattr(settings, attribute) == value
    messages = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    assert any(f"{old} is deprecated; set {new} instead" in m for m in messages)
    assert all(value not in m for m in messages if "EAAG" in value)  # secret never logged


def test_current_name_wins_over_the_deprecated_one(monkeypatch: pytest.MonkeyPatch) -> None:
    set_live_env(monkeypatch, WHATSAPP_ACCESS_TOKEN="new-token")
    monkeypatch.setenv("WHATSAPP_API_KEY", "old-token")
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


# --- the mode is explicit -------------------------------------------------------------------

CREDENTIALS = list(LIVE_ENV)
#: Every partial set of live credentials: each must stop start-up.
PARTIAL = [
    subset
    for size in range(1, len(CREDENTIALS))
    for subset in itertools.combinations(CREDENTIALS, size)
]


def _one_line_error(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    text = str(caught.value)
    assert "\n" not in text
    for value in LIVE_ENV.values():
        assert value not in text  # names only, never a value
    return text


@pytest.mark.parametrize("present", PARTIAL, ids=lambda s: "+".join(n[9:] for n in s))
def test_every_partial_live_configuration_stops_naming_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, present: tuple[str, ...]
) -> None:
    text = _one_line_error(monkeypatch, {name: LIVE_ENV[name] for name in present})
    missing = [name for name in CREDENTIALS if name not in present]
    assert text.startswith(f"incomplete live WhatsApp configuration ({', '.join(present)} set)")
    assert f"missing {', '.join(missing)};" in text


def test_the_full_live_set_is_live_and_never_honours_the_sandbox_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_live_env(monkeypatch)
    settings = load_settings()
    assert (settings.mode, settings.sandbox_mode) == ("live", False)
    assert settings.app_secret == LIVE_ENV["WHATSAPP_APP_SECRET"] != SANDBOX_APP_SECRET
    assert settings.verify_token == LIVE_ENV["WHATSAPP_WEBHOOK_VERIFY_TOKEN"]
    assert settings.api_base_url == "https://graph.facebook.com"


def test_an_api_base_url_alone_means_live_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _one_line_error(monkeypatch, {"WHATSAPP_API_BASE_URL": "https://graph.facebook.com"})
    assert "(WHATSAPP_API_BASE_URL set): missing WHATSAPP_ACCESS_TOKEN," in text


def test_an_empty_credential_counts_as_set_and_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _one_line_error(monkeypatch, {"WHATSAPP_APP_SECRET": ""})
    assert "(WHATSAPP_APP_SECRET (empty) set)" in text
    assert f"missing {', '.join(CREDENTIALS)};" in text


def test_a_deprecated_name_counts_as_the_credential_it_stands_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = _one_line_error(monkeypatch, {"WHATSAPP_API_KEY": "EAAG-old"})
    assert "(WHATSAPP_ACCESS_TOKEN set)" in text


def test_wanotify_mode_sandbox_allows_a_sandbox_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANOTIFY_MODE", " Sandbox ")
    monkeypatch.setenv("WHATSAPP_API_BASE_URL", "http://10.0.0.5:8700")
    settings = load_settings()
    assert (settings.mode, settings.sandbox_mode) == ("sandbox", True)
    assert settings.api_base_url == "http://10.0.0.5:8700"
    assert settings.app_secret == SANDBOX_APP_SECRET
    assert settings.verify_token == SANDBOX_VERIFY_TOKEN


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_wanotify_mode_sandbox_with_a_live_credential_is_refused(
    monkeypatch: pytest.MonkeyPatch, credential: str
) -> None:
    env = {"WANOTIFY_MODE": "sandbox", credential: LIVE_ENV[credential]}
    text = _one_line_error(monkeypatch, env)
    assert text == (
        f"WANOTIFY_MODE=sandbox, but live credentials are set ({credential}): unset them for "
        "the sandbox, or set WANOTIFY_MODE=live"
    )


def test_wanotify_mode_live_demands_the_full_set(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _one_line_error(monkeypatch, {"WANOTIFY_MODE": "live"})
    assert text.startswith("incomplete live WhatsApp configuration (WANOTIFY_MODE=live)")
    assert f"missing {', '.join(CREDENTIALS)};" in text
    set_live_env(monkeypatch)
    assert load_settings().mode == "live"


def test_wanotify_mode_takes_only_sandbox_or_live(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _one_line_error(monkeypatch, {"WANOTIFY_MODE": "production"})
    assert text.startswith("WANOTIFY_MODE:") and "sandbox or live" in text


@pytest.mark.parametrize(
    ("name", "public"),
    [
        ("WHATSAPP_ACCESS_TOKEN", SANDBOX_TOKEN),
        ("WHATSAPP_APP_SECRET", SANDBOX_APP_SECRET),
        ("WHATSAPP_WEBHOOK_VERIFY_TOKEN", SANDBOX_VERIFY_TOKEN),
    ],
)
def test_a_sandbox_public_value_is_no_live_credential(
    monkeypatch: pytest.MonkeyPatch, name: str, public: str
) -> None:
    set_live_env(monkeypatch, **{name: public})
    with pytest.raises(SettingsError, match=f"^{name}: the sandbox's public value"):
        load_settings()


def test_a_partial_dotenv_file_stops_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    Path(".env").write_text("WHATSAPP_ACCESS_TOKEN=EAAG-from-file\n", "utf-8")
    with pytest.raises(SettingsError, match="missing WHATSAPP_PHONE_NUMBER_ID"):
        get_settings()
