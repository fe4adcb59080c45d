"""Against the real sandbox over HTTP: testing a number stores what Meta reports (or the
refusal), and the template sync reads each WABA once and marks templates with it."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.errors import GraphError
from core.models.templates import WhatsAppTemplate
from core.numbers.admin import NumberHealth, NumberInfo, add_number, list_numbers
from core.numbers.health import check_number, number_fields, parse_health
from core.numbers.registry import NumberError
from core.numbers.secrets import new_key
from core.numbers.templates import sync_by_waba, sync_tenant_now
from core.sandbox import SandboxServer
from core.settings import SANDBOX_WABA_ID, Settings, load_settings

ACME_TOKEN = "EAAG-acme-sandbox-token-01"
ACME_WABA = "3000001"


@pytest.fixture
def settings(sandbox_env: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("WANOTIFY_SECRET_KEY", new_key())
    httpx.post(
        f"{sandbox_env.url}/_sandbox/numbers",
        json={
            "phone_number_id": "2000001", "access_token": ACME_TOKEN, "waba_id": ACME_WABA,
            "display_phone_number": "34910000001", "verified_name": "Acme Bakery",
            "quality_rating": "YELLOW", "messaging_limit_tier": "TIER_10K",
            "name_status": "PENDING_REVIEW", "throughput_level": "HIGH",
        },
        timeout=10,
    ).raise_for_status()  # fmt: skip
    return load_settings()


def info(engine: Engine, settings: Settings, phone_number_id: str) -> NumberInfo:
    return next(n for n in list_numbers(engine, settings) if n.phone_number_id == phone_number_id)


def test_testing_a_number_stores_what_meta_reports(engine: Engine, settings: Settings) -> None:
    add_number(engine, settings, tenant_id="acme", phone_number_id="2000001",
               access_token=ACME_TOKEN, waba_id=ACME_WABA)  # fmt: skip
    outcome = check_number(engine, settings, "2000001", tenant_id="acme")
    assert outcome.ok and outcome.health is not None
    stored = info(engine, settings, "2000001")
    assert (stored.quality_rating, stored.messaging_tier, stored.name_status,
            stored.throughput_level, stored.display_name, stored.last_error) == (
        "YELLOW", "TIER_10K", "PENDING_REVIEW", "HIGH", "Acme Bakery", None,
    )  # fmt: skip
    with pytest.raises(NumberError, match="not a sending number of tenant bolt"):
        check_number(engine, settings, "2000001", tenant_id="bolt")


def test_a_refused_token_is_recorded_not_raised(engine: Engine, settings: Settings) -> None:
    add_number(engine, settings, tenant_id="acme", phone_number_id="2000001",
               access_token="EAAG-an-expired-token-99", waba_id=ACME_WABA)  # fmt: skip
    outcome = check_number(engine, settings, "2000001")
    assert not outcome.ok and outcome.error is not None and "#190" in outcome.error
    assert "EAAG-an-expired-token-99" not in outcome.error
    stored = info(engine, settings, "2000001")
    assert stored.last_error == outcome.error and stored.last_checked_at is not None
    # A number Meta does not know: #100, recorded the same way.
    add_number(engine, settings, tenant_id="acme", phone_number_id="2999999",
               access_token=ACME_TOKEN)  # fmt: skip
    unknown = check_number(engine, settings, "2999999")
    assert unknown.error is not None and "#100" in unknown.error


def test_templates_are_synced_per_waba_and_marked_with_it(
    engine: Engine, settings: Settings
) -> None:
    add_number(engine, settings, tenant_id="acme", phone_number_id="2000001",
               access_token=ACME_TOKEN, waba_id=ACME_WABA)  # fmt: skip
    results = {r.tenant_id: r for r in asyncio.run(sync_by_waba(engine, settings))}
    assert set(results) == {"acme", settings.default_tenant}
    assert results["acme"].wabas == (ACME_WABA,)
    assert results[settings.default_tenant].wabas == (SANDBOX_WABA_ID,)
    assert results["acme"].report is not None and results["acme"].report.added > 0
    with Session(engine) as session:
        wabas = {
            (row.tenant_id, row.waba_id)
            for row in session.exec(select(WhatsAppTemplate).where(col(WhatsAppTemplate.is_active)))
        }
    assert wabas == {("acme", ACME_WABA), (settings.default_tenant, SANDBOX_WABA_ID)}
    again = sync_tenant_now(engine, settings, "acme")
    assert again.added == 0 and again.unchanged > 0
    # A tenant without a number gets no one else's templates.
    with pytest.raises(NumberError, match="tenant bolt has no number"):
        sync_tenant_now(engine, settings, "bolt")


def test_a_waba_that_cannot_be_read_changes_nothing(engine: Engine, settings: Settings) -> None:
    add_number(engine, settings, tenant_id="acme", phone_number_id="2000001",
               access_token=ACME_TOKEN, waba_id="3999999")  # fmt: skip
    with pytest.raises(GraphError):
        sync_tenant_now(engine, settings, "acme")
    with Session(engine) as session:
        assert session.exec(select(WhatsAppTemplate)).first() is None


@pytest.mark.parametrize("version", ["v23.0", "v25.0"])
def test_each_graph_version_is_asked_for_its_own_limit_field(
    engine: Engine, sandbox_env: SandboxServer, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    """Before v24 the messaging limit is `messaging_limit_tier`; asking an old version for
    the new name (or the reverse) would be Meta's #100."""
    monkeypatch.setenv("WHATSAPP_API_VERSION", version)
    settings = load_settings()
    wanted = "messaging_limit_tier" if version == "v23.0" else "whatsapp_business_manager"
    assert wanted in number_fields(version)
    outcome = check_number(engine, settings, settings.phone_number_id)
    assert outcome.health is not None and outcome.health.messaging_tier == "TIER_2K"


def test_meta_answers_are_read_whatever_their_shape() -> None:
    assert parse_health({"whatsapp_business_manager_messaging_limit": {"current_limit": "TIER_10K"},
                         "throughput": "HIGH", "quality_rating": ["GREEN"]}) == NumberHealth(
        None, None, None, "TIER_10K", None, None, None,
    )  # fmt: skip
    assert parse_health({"messaging_limit_tier": "TIER_250", "name_status": "x" * 500}) == (
        NumberHealth(None, None, None, "TIER_250", "x" * 120, None, None)
    )
