"""Migration 0021: every message names its sending number; existing messages (pending
ones included) are given the environment's number, so they go out exactly as before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from core import migrate
from core.db import get_engine
from core.sender import store
from tests.fixtures.live import LIVE_ENV, set_live_env

BEFORE = "0024_alerts"
MINE = "0021_message_sender_number"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'm0021.db'}"
        yield url
        get_engine(url).dispose()
    else:
        yield request.getfixturevalue("empty_postgres_url")


def test_existing_messages_go_out_from_the_environments_number(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_live_env(monkeypatch)
    config = migrate.alembic_config(empty_url)
    command.upgrade(config, BEFORE)
    engine = get_engine(empty_url)
    with engine.begin() as connection:
        for key, status in (("k1", "pending"), ("k2", "delivered")):
            connection.execute(
                text(
                    "INSERT INTO whatsapp_messages (id, tenant_id, idempotency_key, "
                    "recipient_phone, message_type, status, attempt_count, created_at, "
                    "updated_at) VALUES (:id, 'default', :key, '+34612345678', 'template', "
                    ":status, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {
                    "id": f"00000000-0000-0000-0000-00000000000{key[1]}",
                    "key": key,
                    "status": status,
                },
            )
    command.upgrade(config, MINE)
    with engine.connect() as connection:
        numbers = connection.execute(text("SELECT phone_number_id FROM whatsapp_messages")).all()
    assert [row[0] for row in numbers] == [LIVE_ENV["WHATSAPP_PHONE_NUMBER_ID"]] * 2
    indexes = {i["name"] for i in inspect(engine).get_indexes("whatsapp_messages")}
    assert "ix_whatsapp_messages_number_dispatch" in indexes
    migrate.upgrade(empty_url)  # on to head
    cycle = store.claim_cycle(
        engine, worker_id="w", phone_number_id=LIVE_ENV["WHATSAPP_PHONE_NUMBER_ID"], limit=5
    )
    assert [m.id for m in cycle.claimed] == ["00000000-0000-0000-0000-000000000001"]
    other = store.claim_cycle(engine, worker_id="w2", phone_number_id="2000001", limit=5)
    assert other.claimed == []  # another number's dispatcher never takes it
    command.downgrade(config, BEFORE)
    columns = {c["name"] for c in inspect(engine).get_columns("whatsapp_messages")}
    assert "phone_number_id" not in columns
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM whatsapp_messages")).scalar_one() == 2
