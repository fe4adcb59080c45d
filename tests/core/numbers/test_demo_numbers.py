"""The demo's two tenants, each with a number of its own, against the real sandbox:
the sandbox plays the second number, its health and templates come from its own WABA,
and seeding twice adds nothing. Never outside sandbox mode."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine

from core.numbers.demo import DEMO_NUMBERS, DEMO_SECOND_TENANT, seed_demo_numbers
from core.numbers.health import check_number
from core.numbers.registry import NumberError, number_for
from core.numbers.templates import sync_by_waba
from core.sandbox import SandboxServer
from core.settings import load_settings
from tests.fixtures.live import set_live_env


def test_two_tenants_each_send_from_their_own_number(
    engine: Engine, sandbox_env: SandboxServer
) -> None:
    settings = load_settings()
    assert seed_demo_numbers(engine, settings) == 1
    assert seed_demo_numbers(engine, settings) == 0
    (demo,) = DEMO_NUMBERS
    norte = number_for(engine, settings, DEMO_SECOND_TENANT)
    main = number_for(engine, settings, settings.default_tenant)
    assert (norte.phone_number_id, norte.waba_id) == (demo.phone_number_id, demo.waba_id)
    assert main.from_environment and main.phone_number_id != norte.phone_number_id
    outcome = check_number(engine, settings, demo.phone_number_id)
    assert outcome.health is not None and outcome.health.quality_rating == "YELLOW"
    synced = {r.tenant_id: r for r in asyncio.run(sync_by_waba(engine, settings))}
    assert synced[DEMO_SECOND_TENANT].wabas == (demo.waba_id,)
    assert synced[DEMO_SECOND_TENANT].report is not None


def test_no_demo_numbers_in_live_mode(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    set_live_env(monkeypatch)
    with pytest.raises(NumberError, match="only in sandbox mode"):
        seed_demo_numbers(engine, load_settings())
