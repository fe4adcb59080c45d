"""core.system_health against the real sandbox (HTTP) and a real SQLite file."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine

from core.auth import PermissionDenied
from core.control import pause_sending
from core.sandbox import SandboxServer
from core.settings import get_settings
from core.system_health import check_api, read_system_health, resume
from tests.dashboard.pages import person
from tests.fixtures.live import set_live_env


def test_a_reachable_sandbox_reports_the_numbers_standing(sandbox_env: SandboxServer) -> None:
    sandbox_env.configure(quality_rating="YELLOW", messaging_limit_tier="TIER_10K")
    api = asyncio.run(check_api(get_settings()))
    assert api.ok and api.phone is not None
    assert api.phone.quality_rating == "YELLOW"
    assert api.phone.messaging_limit == "TIER_10K"


def test_a_wrong_token_is_told_apart_from_an_outage(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_live_env(
        monkeypatch,
        WHATSAPP_API_BASE_URL=sandbox.url,
        WHATSAPP_ACCESS_TOKEN="EAAG-not-the-right-token",
        WHATSAPP_PHONE_NUMBER_ID="123456789012345",
    )
    api = asyncio.run(check_api(get_settings()))
    assert api.reachable and not api.token_ok
    assert "token" in (api.problem or "")
    assert "EAAG-not-the-right-token" not in (api.problem or "")


def test_an_unreachable_api_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_API_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WANOTIFY_MODE", "sandbox")
    get_settings.cache_clear()
    api = asyncio.run(check_api(get_settings(), within=5))
    assert not api.reachable and not api.ok
    assert api.problem


def test_the_report_joins_pause_queue_webhooks_and_templates(
    engine: Engine, sandbox_env: SandboxServer
) -> None:
    cfg = get_settings()
    pause_sending(engine, cfg.phone_number_id, "Payment problem on the business account", 131042)
    report = read_system_health(engine, cfg, "default")
    assert report.sandbox_mode and report.api.ok
    assert report.sending.paused and report.sending.code == 131042
    assert report.webhooks.database_ok and report.webhooks.last_event_at is None
    assert report.templates.total == 0


def test_only_admins_resume(engine: Engine) -> None:
    cfg = get_settings()
    pause_sending(engine, cfg.phone_number_id, "Token expired", 190)
    with pytest.raises(PermissionDenied):
        resume(engine, cfg, person("manager"))
    with pytest.raises(PermissionDenied):
        resume(engine, cfg, None)
    state = resume(engine, cfg, person("admin", name="root"))
    assert not state.paused and state.resumed_by == "root"
