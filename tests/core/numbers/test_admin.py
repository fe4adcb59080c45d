"""Adding and listing numbers with hostile input: malformed ids, duplicates, tokens with
whitespace; nothing half-stored, and the token never comes back out."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from core.numbers.admin import (
    NumberHealth,
    add_number,
    list_numbers,
    record_health,
    remove_number,
    set_default,
)
from core.numbers.registry import NumberError, number_for
from core.numbers.secrets import new_key
from core.settings import Settings, load_settings
from tests.fixtures.live import set_live_env

TOKEN = "EAAGm0PX4ZCpsBAKZC0123456789"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    set_live_env(monkeypatch)
    monkeypatch.setenv("WANOTIFY_SECRET_KEY", new_key())
    return load_settings()


def stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM sender_numbers")).scalar_one())


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("phone_number_id", "+34 600 000 000", "is not a Graph id"),
        ("phone_number_id", "", "is not a Graph id"),
        ("phone_number_id", "12ab34", "is not a Graph id"),
        ("phone_number_id", "1" * 33, "is not a Graph id"),
        ("phone_number_id", "١٢٣٤٥٦٧", "is not a Graph id"),  # Arabic-Indic digits
        ("waba_id", "waba-1", "WABA id"),
        ("tenant_id", "", "is not a tenant id"),
        ("tenant_id", "acme corp", "is not a tenant id"),
        ("tenant_id", "x" * 65, "is not a tenant id"),
        ("access_token", "EAAG token with spaces", "spaces or line breaks inside"),
        ("access_token", "EAAG\ntoken", "spaces or line breaks inside"),
        ("access_token", "EAAG\x00token00", "is not a Meta access token"),
        ("access_token", "<script>alert(1)</script>", "is not a Meta access token"),
        ("access_token", "", "an access token is required"),
        ("access_token", "   ", "an access token is required"),
        ("max_mps", 0, "throughput cap"),
        ("max_mps", 10_001, "throughput cap"),
    ],
)
def test_bad_input_is_refused_and_nothing_stored(
    engine: Engine, settings: Settings, field: str, value: object, words: str
) -> None:
    values: dict[str, object] = {
        "tenant_id": "acme", "phone_number_id": "2000001", "access_token": TOKEN,
        "waba_id": "3000001", "max_mps": 80,
    }  # fmt: skip
    values[field] = value
    with pytest.raises(NumberError, match=words) as caught:
        add_number(engine, settings, **values)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value).strip()
    if field == "access_token" and isinstance(value, str) and value.strip():
        assert value.strip() not in str(caught.value)  # a token is never repeated
    assert stored(engine) == 0


def test_a_pasted_token_loses_its_surrounding_whitespace(
    engine: Engine, settings: Settings
) -> None:
    add_number(engine, settings, tenant_id="acme", phone_number_id=" 2000001\n",
               access_token=f"  {TOKEN}\r\n")  # fmt: skip
    number = number_for(engine, settings, "acme")
    assert number.phone_number_id == "2000001"
    assert number.access_token is not None and number.access_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(number) and TOKEN not in repr(list_numbers(engine, settings))


def test_a_number_belongs_to_one_tenant_at_a_time(engine: Engine, settings: Settings) -> None:
    add_number(engine, settings, tenant_id="acme", phone_number_id="2000001", access_token=TOKEN)
    for tenant in ("acme", "bolt"):
        with pytest.raises(NumberError, match=r"already registered \(tenant acme\)"):
            add_number(engine, settings, tenant_id=tenant, phone_number_id="2000001",
                       access_token=TOKEN)  # fmt: skip
    assert stored(engine) == 1
    # Removed, it may be registered again (for another business too): the row comes back.
    remove_number(engine, "acme", "2000001")
    with pytest.raises(NumberError, match="not one of tenant bolt's"):
        set_default(engine, "bolt", "2000001")
    add_number(engine, settings, tenant_id="bolt", phone_number_id="2000001", access_token=TOKEN)
    assert stored(engine) == 1
    assert number_for(engine, settings, "bolt").phone_number_id == "2000001"


def test_list_shows_health_but_no_token(engine: Engine, settings: Settings) -> None:
    add_number(engine, settings, tenant_id="acme", phone_number_id="2000001",
               access_token=TOKEN, display_name="Acme\n<b>Bakery</b>")  # fmt: skip
    record_health(
        engine, "2000001",
        NumberHealth("+34 910 00 00 01", "Acme Bakery", "GREEN", "TIER_1K", "APPROVED",
                     "CONNECTED", "STANDARD"),
    )  # fmt: skip
    record_health(engine, "2000001", None, error="(#190) token expired")
    listed = {n.phone_number_id: n for n in list_numbers(engine, settings)}
    acme = listed["2000001"]
    assert (acme.quality_rating, acme.messaging_tier, acme.display_number) == (
        "GREEN", "TIER_1K", "+34 910 00 00 01",
    )  # fmt: skip
    assert acme.last_error == "(#190) token expired" and acme.has_token
    assert acme.last_checked_at is not None
    assert not hasattr(acme, "access_token")
    assert listed[settings.phone_number_id].from_environment
    assert [n.phone_number_id for n in list_numbers(engine, settings, "acme")] == ["2000001"]
