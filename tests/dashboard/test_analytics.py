"""The analytics page (AppTest) on a real SQLite file: empty state, demo banner, charts,
filters, tenant scoping and role checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from core.db import session_scope
from core.demo import seed_demo
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier
from tests.dashboard.pages import dashboard_env, page, person, texts

pytestmark = pytest.mark.clock  # decides by dates or ages: also run a year ahead

__all__ = ["dashboard_env"]

MODULE = "dashboard.views.analytics"


def _message(engine: Engine, tenant: str, supplier_id: int | None = None) -> None:
    at = datetime.now(UTC) - timedelta(hours=3)
    with session_scope(engine) as session:
        session.add(
            WhatsAppMessage(
                tenant_id=tenant, idempotency_key=f"t:{tenant}:{supplier_id}:{at.timestamp()}",
                recipient_phone="+34612000009", request_payload={}, status="delivered",
                template_name="po_notification", supplier_id=supplier_id, created_at=at,
                accepted_at=at, sent_at=at, delivered_at=at + timedelta(seconds=5),
            )
        )  # fmt: skip


def _supplier(engine: Engine, name: str, tenant: str = "default") -> int:
    with session_scope(engine) as session:
        phone = f"+3469{sum(map(ord, name)) % 10**7:07d}"
        row = Supplier(tenant_id=tenant, name=name, phone_e164=phone)
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def _metric(at: object, label: str) -> str:
    for metric in at.metric:  # type: ignore[attr-defined]
        if metric.label.startswith(label):
            return str(metric.value)
    raise AssertionError(f"no metric {label!r}")


def test_a_fresh_install_shows_a_useful_empty_state(dashboard_env: str) -> None:
    at = page(MODULE, person("manager")).run()
    assert not at.exception
    assert "No messages in this range yet" in texts(at)
    assert "Send PO notice" in texts(at)
    assert len(at.get("plotly_chart")) == 0
    assert "Demo data" not in texts(at)


def test_demo_data_is_charted_and_marked(dashboard_env: str, engine: Engine) -> None:
    report = seed_demo(engine, "default")
    at = page(MODULE, person("manager")).run()
    assert not at.exception
    assert "Demo data" in texts(at)
    shown = int(_metric(at, "Messages").replace(",", ""))
    assert 0 < shown <= report.messages
    assert _metric(at, "Delivered").endswith("%")
    assert len(at.get("plotly_chart")) >= 7  # funnel, rates, 2 latencies, failures, acks, cost
    assert "Undeliverable" in str(at.get("plotly_chart")[4].proto.spec)  # human reasons
    assert "example rate card" in texts(at)
    assert len(at.dataframe) == 2  # cost by category, suppliers
    assert "Harinas Martín S.L." in set(at.dataframe[1].value["supplier"])


def test_supplier_filter_narrows_the_figures(dashboard_env: str, engine: Engine) -> None:
    alfa, beta = _supplier(engine, "Alfa"), _supplier(engine, "Beta")
    _message(engine, "default", alfa)
    _message(engine, "default", beta)
    _message(engine, "default", beta)
    at = page(MODULE, person("manager")).run()
    assert _metric(at, "Messages") == "3"
    at.multiselect(key="analytics_suppliers").set_value([alfa]).run()
    assert _metric(at, "Messages") == "1"


def test_other_tenants_stay_invisible_and_the_tenant_filter_offers_only_own(
    dashboard_env: str, engine: Engine
) -> None:
    _message(engine, "default")
    _message(engine, "branch")
    _message(engine, "secret")
    single = page(MODULE, person("manager")).run()
    assert _metric(single, "Messages") == "1"
    assert not [m for m in single.multiselect if m.key == "analytics_tenants"]
    multi = page(MODULE, person("manager", "default", "branch")).run()
    assert _metric(multi, "Messages") == "2"
    tenants = multi.multiselect(key="analytics_tenants")
    assert list(tenants.options) == ["default", "branch"]
    tenants.set_value(["branch"]).run()
    assert _metric(multi, "Messages") == "1"


def test_buyers_are_refused(dashboard_env: str) -> None:
    at = page(MODULE, person("buyer")).run()
    assert "may not view analytics" in texts(at)
    assert not at.metric
