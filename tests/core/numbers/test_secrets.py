"""Tokens at rest: encrypted with WANOTIFY_SECRET_KEY, rotated without downtime, and a
missing or wrong key stops with one line naming the variable (never a token or key)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text

from core.numbers.admin import add_number
from core.numbers.errors import SecretKeyError
from core.numbers.registry import number_for, sending_numbers
from core.numbers.secrets import (
    decrypt_token,
    encrypt_token,
    new_key,
    parse_keys,
    rotate_tokens,
)
from core.settings import Settings, SettingsError, load_settings

TOKEN = "EAAGm0PX4ZCpsBAKZC-acme-0123456789"
OLD, NEW = new_key(), new_key()


def settings_with(monkeypatch: pytest.MonkeyPatch, key: str | None) -> Settings:
    if key is None:
        monkeypatch.delenv("WANOTIFY_SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("WANOTIFY_SECRET_KEY", key)
    return load_settings()


def one_line(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message
    assert "WANOTIFY_SECRET_KEY" in message
    for secret in (TOKEN, OLD, NEW):
        assert secret not in message
    return message


def test_round_trip_and_the_ciphertext_hides_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_with(monkeypatch, OLD)
    stored = encrypt_token(settings, TOKEN)
    assert TOKEN not in stored
    assert encrypt_token(settings, TOKEN) != stored  # a fresh IV each time
    assert decrypt_token(settings, stored, phone_number_id="1").get_secret_value() == TOKEN


def test_several_keys_first_encrypts_all_decrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    under_old = encrypt_token(settings_with(monkeypatch, OLD), TOKEN)
    both = settings_with(monkeypatch, f"{NEW}, {OLD}")
    assert decrypt_token(both, under_old, phone_number_id="1").get_secret_value() == TOKEN
    under_new = encrypt_token(both, TOKEN)
    assert Fernet(NEW.encode()).decrypt(under_new.encode()).decode() == TOKEN


@pytest.mark.parametrize("raw", ["short", "a,b", " , ", f"{new_key()},not-a-key", "é" * 44])
def test_malformed_keys_stop_at_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("WANOTIFY_SECRET_KEY", raw)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith("WANOTIFY_SECRET_KEY: ")
    assert raw.strip(" ,") not in str(caught.value) or not raw.strip(" ,")
    with pytest.raises(SecretKeyError):
        parse_keys(raw)


def test_rotation_re_encrypts_every_token_then_the_old_key_can_go(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = settings_with(monkeypatch, OLD)
    add_number(engine, old, tenant_id="acme", phone_number_id="1000001", access_token=TOKEN)
    add_number(engine, old, tenant_id="bolt", phone_number_id="1000002", access_token=TOKEN + "b")
    # Step 1: new key first, old after: every process reads both while rotation runs.
    both = settings_with(monkeypatch, f"{NEW},{OLD}")
    assert number_for(engine, both, "acme").access_token is not None
    assert rotate_tokens(engine, both) == 2
    # Step 3: the old key is gone and every token still opens.
    new = settings_with(monkeypatch, NEW)
    tokens = {n.tenant_id: n.access_token for n in sending_numbers(engine, new)}
    assert tokens["acme"] is not None and tokens["acme"].get_secret_value() == TOKEN
    assert tokens["bolt"] is not None and tokens["bolt"].get_secret_value() == TOKEN + "b"
    with pytest.raises(SecretKeyError) as caught:  # and the old key alone no longer does
        sending_numbers(engine, settings_with(monkeypatch, OLD))
    one_line(caught.value)


def test_rotation_with_a_token_no_key_opens_changes_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_number(
        engine, settings_with(monkeypatch, OLD), tenant_id="acme",
        phone_number_id="1000001", access_token=TOKEN,
    )  # fmt: skip
    add_number(
        engine, settings_with(monkeypatch, NEW), tenant_id="bolt",
        phone_number_id="1000002", access_token=TOKEN,
    )  # fmt: skip
    with engine.connect() as connection:
        before = connection.execute(text("SELECT token_ciphertext FROM sender_numbers")).all()
    with pytest.raises(SecretKeyError) as caught:
        rotate_tokens(engine, settings_with(monkeypatch, new_key() + "," + NEW))
    assert "1000001" in one_line(caught.value)
    with engine.connect() as connection:
        after = connection.execute(text("SELECT token_ciphertext FROM sender_numbers")).all()
    assert sorted(before) == sorted(after)


@pytest.mark.parametrize("key", [None, "wrong"])
def test_a_stored_number_with_no_or_a_wrong_key_fails_closed(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    add_number(
        engine, settings_with(monkeypatch, OLD), tenant_id="acme",
        phone_number_id="1000001", access_token=TOKEN,
    )  # fmt: skip
    settings = settings_with(monkeypatch, new_key() if key == "wrong" else None)
    for call in (
        lambda: sending_numbers(engine, settings),
        lambda: number_for(engine, settings, "acme"),
        lambda: number_for(engine, settings, settings.default_tenant),  # all stop, not some
    ):
        with pytest.raises(SecretKeyError) as caught:
            call()
        one_line(caught.value)


def test_adding_a_token_without_a_key_is_refused(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_with(monkeypatch, None)
    with pytest.raises(SecretKeyError) as caught:
        add_number(
            engine, settings, tenant_id="acme", phone_number_id="1000001", access_token=TOKEN
        )
    one_line(caught.value)
    assert sending_numbers(engine, settings)[0].from_environment  # nothing was stored
