"""Today's installs upgrade with no change: a database at the revision before sender
numbers, with its messages, migrates to head (SQLite file and PostgreSQL) and every
tenant still sends from the environment's number; the downgrade drops only the table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from core import migrate
from core.db import get_engine
from core.numbers.registry import NumberError, number_for, sending_numbers
from core.settings import load_settings
from tests.fixtures.live import LIVE_ENV, set_live_env


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'upgrade.db'}"
        yield url
        get_engine(url).dispose()
    else:
        yield request.getfixturevalue("empty_postgres_url")


def test_an_environment_only_install_upgrades_and_sends_as_before(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = migrate.alembic_config(empty_url)
    command.upgrade(config, "0019_user_sso")
    engine = get_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO suppliers (tenant_id, name, phone_e164, language, opted_in, "
                "is_active, created_at, updated_at) VALUES ('default', 'Harinas', "
                "'+34612345678', 'es', :yes, :yes, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"yes": True},
        )
    command.upgrade(config, "0020_sender_numbers")
    migrate.upgrade(empty_url)  # and on to whatever head is now
    set_live_env(monkeypatch)
    settings = load_settings()  # no WANOTIFY_SECRET_KEY: none is needed without rows
    (number,) = sending_numbers(engine, settings)
    assert number.from_environment and number.tenant_id == settings.default_tenant
    assert number.phone_number_id == LIVE_ENV["WHATSAPP_PHONE_NUMBER_ID"]
    assert number_for(engine, settings, settings.default_tenant) == number
    with pytest.raises(NumberError):
        number_for(engine, settings, "another-tenant")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM suppliers")).scalar_one() == 1
    command.downgrade(config, "0019_user_sso")
    assert "sender_numbers" not in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM suppliers")).scalar_one() == 1
