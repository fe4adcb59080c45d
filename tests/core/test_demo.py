"""core.demo on a real SQLite file: a marked, idempotent demo data set through every stage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from core import stats
from core.demo import (
    DEMO_PASSWORD,
    DEMO_SUPPLIER_PREFIX,
    demo_message_count,
    is_demo_message,
    is_demo_supplier,
    seed_demo,
)
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier
from core.users import get_user, login

NOW = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def test_seeding_twice_adds_nothing_the_second_time(engine: Engine) -> None:
    first = seed_demo(engine, "default", now=NOW)
    messages, suppliers = _count(engine, WhatsAppMessage), _count(engine, Supplier)
    second = seed_demo(engine, "default", now=NOW + timedelta(days=1))
    assert first.added_anything and first.messages > 200 and first.users == 3
    assert not second.added_anything
    assert (_count(engine, WhatsAppMessage), _count(engine, Supplier)) == (messages, suppliers)


def test_every_demo_row_is_marked(engine: Engine) -> None:
    seed_demo(engine, "default", now=NOW)
    with Session(engine) as session:
        rows = session.exec(select(WhatsAppMessage)).all()
        suppliers = session.exec(select(Supplier)).all()
    assert rows and all(is_demo_message(r) and (r.meta or {}).get("demo") for r in rows)
    assert all(is_demo_supplier(s) for s in suppliers)
    assert all((s.external_ref or "").startswith(DEMO_SUPPLIER_PREFIX) for s in suppliers)
    assert demo_message_count(engine, ["default"]) == len(rows)
    assert demo_message_count(engine, ["elsewhere"]) == 0
    assert demo_message_count(engine, []) == 0


def test_the_demo_covers_every_stage_with_real_error_codes(engine: Engine) -> None:
    seed_demo(engine, "default", now=NOW)
    flt = stats.StatsFilter(("default",), date(2026, 11, 1), date(2026, 11, 30), "Europe/Madrid")
    data = stats.report(engine, flt)
    f = data.funnel
    assert f.sent > f.delivered > f.read > f.replied > 0
    assert f.failed > 0 and f.queued > 0  # needs-attention rows to practise a resend on
    assert set(data.failures["code"].dropna()) >= {131026}
    assert not any(reason.startswith("Meta error") for reason in data.failures["reason"])
    assert data.acknowledgements.confirmed > data.acknowledgements.rejected > 0
    assert data.cost.charged_messages > 0 and data.cost.free_messages > 0
    assert data.cost.uses_example_rates
    assert data.to_deliver.count > 0 and data.to_read.count > 0
    assert (data.daily["messages"] > 0).sum() >= 20  # weeks of activity, not one day


def test_demo_messages_are_never_due_for_sending(engine: Engine) -> None:
    seed_demo(engine, "default", now=NOW)
    with Session(engine) as session:
        pending = session.exec(
            select(func.count()).where(col(WhatsAppMessage.status).in_(["pending", "sending"]))
        ).one()
        future = session.exec(
            select(func.count()).where(
                (col(WhatsAppMessage.read_at) > NOW) | (col(WhatsAppMessage.created_at) > NOW)
            )
        ).one()
    assert pending == 0 and future == 0


def test_demo_users_log_in_only_in_sandbox_mode(engine: Engine) -> None:
    seed_demo(engine, "default", now=NOW)
    for name in ("buyer", "manager", "admin"):
        user = get_user(engine, name)
        assert user is not None and user.is_demo and user.role.value == name
    assert login(engine, "manager", DEMO_PASSWORD, allow_demo=True).user is not None
    refused = login(engine, "manager", DEMO_PASSWORD, allow_demo=False)
    assert refused.user is None and "sandbox" in (refused.error or "")


def test_real_data_is_left_alone(engine: Engine) -> None:
    seed_demo(engine, "default", now=NOW)
    before = _count(engine, WhatsAppMessage)
    with Session(engine) as session:
        real = Supplier(tenant_id="default", name="Real S.A.", phone_e164="+34699000111")
        session.add(real)
        session.commit()
    seed_demo(engine, "default", now=NOW)
    assert _count(engine, WhatsAppMessage) == before
    with Session(engine) as session:
        kept = session.exec(select(Supplier).where(col(Supplier.name) == "Real S.A.")).all()
        assert [s.phone_e164 for s in kept] == ["+34699000111"]


def test_every_demo_supplier_gets_notices(engine: Engine) -> None:
    seed_demo(engine, "default", now=NOW)
    with Session(engine) as session:
        used = set(session.exec(select(WhatsAppMessage.supplier_id).distinct()).all())
        suppliers = {s.id for s in session.exec(select(Supplier)).all()}
    assert suppliers and used == suppliers  # every demo number passes phone validation
