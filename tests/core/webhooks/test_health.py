"""`core.webhooks.health`: database reachable, last event, backlog; what is held or set aside."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from core.db import get_engine
from core.webhooks.apply import sweep_held
from core.webhooks.health import read_health
from tests.core.webhooks.helpers import T0, add_message, apply_all, journal, status, statuses_body

pytestmark = pytest.mark.clock  # decides by dates or ages: also run a year ahead


def test_an_empty_pipeline_is_ok(engine: Engine) -> None:
    health = read_health(engine)
    assert health.database_ok and health.backlog == 0 and health.last_event_at is None
    assert health.as_dict()["status"] == "ok"


def test_backlog_last_event_and_held(engine: Engine) -> None:
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    add_message(engine, wamid="wamid.K")
    journal(engine, statuses_body(status("wamid.K", "sent", T0)), at=at)
    journal(engine, statuses_body(status("wamid.UNKNOWN", "sent", T0)), at=at + timedelta(1))
    health = read_health(engine)
    assert health.backlog == 2 and health.oldest_unapplied_at == at
    assert health.last_event_at == at + timedelta(1)
    apply_all(engine, now=at + timedelta(days=1, minutes=30))  # the sweep's clock, set
    health = read_health(engine)
    assert health.backlog == 0 and health.held == 1
    view = health.as_dict()
    assert view["held_statuses"] == 1 and view["last_event_at"] == (at + timedelta(1)).isoformat()
    assert view["status"] == "ok"  # held for less than the grace period: not a problem yet
    sweep_held(engine, now=at + timedelta(days=1, hours=2))  # past the grace (1 h)
    health = read_health(engine)
    assert health.held == 0 and health.unmatched == 1
    assert health.as_dict()["status"] == "attention"


def test_an_unreachable_database_is_reported_not_raised(tmp_path) -> None:
    missing = get_engine(f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}")
    health = read_health(missing)
    assert not health.database_ok
    assert health.as_dict()["status"] == "unavailable"
    assert "unreachable" in health.as_dict()["database"]
