"""The registry's rules on a real database: the environment's number stays the default
tenant's (today's installs change nothing), each tenant sends from its own numbers, and
only the default tenant falls back to the environment's number."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from core.numbers.admin import add_number, remove_number, set_default
from core.numbers.registry import (
    NumberError,
    SenderNumber,
    number_for,
    sending_numbers,
)
from core.numbers.secrets import new_key
from core.settings import (
    SANDBOX_PHONE_NUMBER_ID,
    SANDBOX_TOKEN,
    SANDBOX_WABA_ID,
    Settings,
    get_settings,
    load_settings,
)
from core.webhooks.numbers import number_book
from tests.fixtures.live import LIVE_ENV, set_live_env

ACME_TOKEN = "EAAG-acme-token-0001"
BOLT_TOKEN = "EAAG-bolt-token-0002"


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANOTIFY_SECRET_KEY", new_key())


def live(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    set_live_env(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def owners(engine: Engine) -> dict[str, str | None]:
    """Whose each number is, by the one rule (`core.webhooks.numbers.number_book`)."""
    get_settings.cache_clear()  # the environment the test set
    with engine.connect() as conn:
        return number_book(conn, get_settings().default_tenant)


def secret(number: SenderNumber) -> str | None:
    return number.access_token.get_secret_value() if number.access_token else None


def test_environment_only_routes_everything_through_the_environment_number(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No rows, no WANOTIFY_SECRET_KEY: exactly the configuration before numbers were data."""
    settings = live(monkeypatch, WHATSAPP_MAX_MPS="250", WANOTIFY_DEFAULT_TENANT="main")
    expected = SenderNumber(
        phone_number_id=LIVE_ENV["WHATSAPP_PHONE_NUMBER_ID"],
        tenant_id="main",
        waba_id=LIVE_ENV["WHATSAPP_BUSINESS_ACCOUNT_ID"],
        access_token=number_for(engine, settings, "main").access_token,
        max_mps=250,
        is_default=True,
        display_number=None,
        display_name=None,
        from_environment=True,
    )
    assert sending_numbers(engine, settings) == [expected]
    assert number_for(engine, settings, "main") == expected
    assert secret(expected) == LIVE_ENV["WHATSAPP_ACCESS_TOKEN"]
    assert number_for(engine, settings, "main", LIVE_ENV["WHATSAPP_PHONE_NUMBER_ID"]) == expected
    # every tenant shares it (routing sends from it for all), and no other number is known
    assert owners(engine) == {LIVE_ENV["WHATSAPP_PHONE_NUMBER_ID"]: None}
    with pytest.raises(NumberError, match="tenant acme has no WhatsApp number"):
        number_for(engine, settings, "acme")  # never the environment's number


def test_sandbox_mode_the_environment_number_is_the_sandbox_one(engine: Engine) -> None:
    settings = load_settings()
    (number,) = sending_numbers(engine, settings)
    assert (number.phone_number_id, number.waba_id, secret(number)) == (
        SANDBOX_PHONE_NUMBER_ID, SANDBOX_WABA_ID, SANDBOX_TOKEN,
    )  # fmt: skip
    assert number.tenant_id == settings.default_tenant and number.from_environment


def test_each_tenant_sends_from_its_own_number_and_only_its_own(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, keyed: None
) -> None:
    settings = live(monkeypatch)
    add_number(engine, settings, tenant_id="acme", phone_number_id="2000001",
               access_token=ACME_TOKEN, waba_id="3000001", max_mps=40)  # fmt: skip
    add_number(engine, settings, tenant_id="acme", phone_number_id="2000002",
               access_token=ACME_TOKEN + "x")  # fmt: skip
    add_number(engine, settings, tenant_id="bolt", phone_number_id="2000003",
               access_token=BOLT_TOKEN)  # fmt: skip
    acme = number_for(engine, settings, "acme")
    assert (acme.phone_number_id, acme.waba_id, acme.max_mps, secret(acme)) == (
        "2000001", "3000001", 40, ACME_TOKEN,
    )  # fmt: skip
    assert acme.is_default and not acme.from_environment
    assert number_for(engine, settings, "acme", "2000002").phone_number_id == "2000002"
    assert secret(number_for(engine, settings, "bolt")) == BOLT_TOKEN
    # Another tenant's number, or the environment's, is never acme's.
    for other in ("2000003", LIVE_ENV["WHATSAPP_PHONE_NUMBER_ID"], "9" * 40, "' OR 1=1 --"):
        with pytest.raises(NumberError, match="is not one of tenant acme's numbers"):
            number_for(engine, settings, "acme", other)
    with pytest.raises(NumberError, match="is not one of tenant bolt's"):
        number_for(engine, settings, "bolt", "2000001")
    # The default tenant keeps the environment's number as its default.
    main = number_for(engine, settings, settings.default_tenant)
    assert main.from_environment and main.is_default
    assert [(n.tenant_id, n.phone_number_id, n.is_default) for n in sending_numbers(
        engine, settings)] == [
        ("acme", "2000001", True), ("acme", "2000002", False), ("bolt", "2000003", True),
        (settings.default_tenant, LIVE_ENV["WHATSAPP_PHONE_NUMBER_ID"], True),
    ]  # fmt: skip
    assert owners(engine) == {
        "2000001": "acme", "2000002": "acme", "2000003": "bolt",
        LIVE_ENV["WHATSAPP_PHONE_NUMBER_ID"]: settings.default_tenant,
    }  # fmt: skip


def test_a_row_for_the_environment_number_takes_it_over(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, keyed: None
) -> None:
    settings = live(monkeypatch)
    env_id = LIVE_ENV["WHATSAPP_PHONE_NUMBER_ID"]
    add_number(engine, settings, tenant_id="acme", phone_number_id=env_id,
               access_token=ACME_TOKEN, max_mps=20)  # fmt: skip
    numbers = sending_numbers(engine, settings)
    assert [(n.tenant_id, n.from_environment, n.max_mps) for n in numbers] == [("acme", False, 20)]
    assert owners(engine) == {env_id: "acme"}
    with pytest.raises(NumberError, match="has no WhatsApp number"):
        number_for(engine, settings, settings.default_tenant)  # it is acme's now
    # Removed: the environment's number is the default tenant's again, but late events
    # for messages acme sent from it still belong to acme.
    remove_number(engine, "acme", env_id)
    assert number_for(engine, settings, settings.default_tenant).from_environment
    assert owners(engine) == {env_id: "acme"}


def test_the_default_tenant_may_add_numbers_and_choose_its_default(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, keyed: None
) -> None:
    settings = live(monkeypatch)
    tenant = settings.default_tenant
    add_number(engine, settings, tenant_id=tenant, phone_number_id="2000001",
               access_token=ACME_TOKEN)  # fmt: skip
    assert number_for(engine, settings, tenant).from_environment  # still the default
    set_default(engine, tenant, "2000001")
    chosen = number_for(engine, settings, tenant)
    assert chosen.phone_number_id == "2000001" and chosen.is_default
    env = next(n for n in sending_numbers(engine, settings) if n.from_environment)
    assert not env.is_default
    assert number_for(engine, settings, tenant, env.phone_number_id) == env


def test_removing_the_default_promotes_the_oldest_other_number(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, keyed: None
) -> None:
    settings = live(monkeypatch)
    for suffix in ("1", "2", "3"):
        add_number(engine, settings, tenant_id="acme", phone_number_id=f"200000{suffix}",
                   access_token=ACME_TOKEN)  # fmt: skip
    assert remove_number(engine, "acme", "2000001") == "2000002"
    assert number_for(engine, settings, "acme").phone_number_id == "2000002"
    assert remove_number(engine, "acme", "2000003") is None
    assert remove_number(engine, "acme", "2000002") is None
    with pytest.raises(NumberError, match="has no WhatsApp number"):
        number_for(engine, settings, "acme")
    with pytest.raises(NumberError):
        remove_number(engine, "acme", "2000002")  # already removed


def test_a_tenant_with_numbers_but_no_default_is_told_to_choose(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, keyed: None
) -> None:
    settings = live(monkeypatch)
    add_number(engine, settings, tenant_id="acme", phone_number_id="2000001",
               access_token=ACME_TOKEN, make_default=False)  # fmt: skip
    with pytest.raises(NumberError, match="none is its default"):
        number_for(engine, settings, "acme")
    assert number_for(engine, settings, "acme", "2000001").phone_number_id == "2000001"


def test_a_number_stored_in_sandbox_mode_without_token_cannot_send_live(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, keyed: None
) -> None:
    sandbox = load_settings()
    add_number(engine, sandbox, tenant_id="acme", phone_number_id="2000001", access_token=None)
    assert secret(number_for(engine, sandbox, "acme")) == SANDBOX_TOKEN
    settings = live(monkeypatch)
    listed = next(n for n in sending_numbers(engine, settings) if n.tenant_id == "acme")
    assert listed.access_token is None  # listed, so the sender can hold it alone
    with pytest.raises(NumberError, match="has no access token"):
        number_for(engine, settings, "acme")
