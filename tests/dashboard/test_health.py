"""The health page (AppTest) against the real sandbox and a real SQLite file."""

from __future__ import annotations

import re

from sqlalchemy import Engine

from core.control import pause_sending, sending_state
from core.sandbox import SandboxServer
from core.settings import get_settings
from tests.dashboard.pages import dashboard_env, page, person, texts

__all__ = ["dashboard_env"]

MODULE = "dashboard.views.health"


def test_sandbox_health_shows_mode_api_rating_and_tier(
    dashboard_env: str, sandbox_env: SandboxServer
) -> None:
    sandbox_env.configure(quality_rating="RED", messaging_limit_tier="TIER_250")
    at = page(MODULE, person("manager")).run()
    assert not at.exception
    shown = texts(at)
    assert "Sandbox mode" in shown
    assert "Reachable, token accepted" in shown
    assert "Low" in shown and "250 suppliers per 24 h" in shown
    # Meta's codes in the reader's words, not RED / TIER_250 / CONNECTED / STANDARD
    assert "Connected" in shown and "throughput standard" in shown
    assert not re.search(r"\b(RED|TIER_250|CONNECTED|STANDARD)\b", shown)
    assert "Sending is running" in shown
    assert "No webhook received yet" in shown
    assert "embedded sender is off" in shown
    assert "No templates synced yet" in shown


def test_a_pause_shows_its_reason_and_only_admins_may_resume(
    dashboard_env: str, engine: Engine, sandbox_env: SandboxServer
) -> None:
    phone = get_settings().phone_number_id
    pause_sending(engine, phone, "The access token expired", 190)
    manager = page(MODULE, person("manager")).run()
    assert "Sending is paused" in texts(manager) and "Meta error 190" in texts(manager)
    assert not [b for b in manager.button if b.key == "health_resume"]
    assert "An administrator can resume" in texts(manager)
    admin = page(MODULE, person("admin")).run()
    admin.button(key="health_resume").click().run()
    assert not admin.exception
    assert not sending_state(engine, phone).paused
    assert "Sending is running" in texts(admin)


def test_buyers_are_refused(dashboard_env: str) -> None:
    at = page(MODULE, person("buyer")).run()
    assert "may not view health" in texts(at)
