"""core.demo on a real SQLite file: a marked, idempotent demo data set through every stage."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from core import stats
from core.db import get_engine, is_sqlite
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


@pytest.fixture(scope="module")
def _seeded_sqlite(_migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's migrated SQLite file with the demo seeded at NOW (asked for
    by `seeded` from inside a test, so under that test's cleaned settings)."""
    path = tmp_path_factory.mktemp("demo") / "wanotify.db"
    shutil.copyfile(_migrated_sqlite, path)
    url = f"sqlite:///{path}"
    seed_demo(get_engine(url), "default", now=NOW)
    get_engine(url).dispose()  # closed: the write-ahead log folded into the file
    return path


@pytest.fixture
def seeded(engine: Engine, database_url: str, request: pytest.FixtureRequest) -> Engine:
    """The test's database with the demo seeded at NOW, by seed_demo on a fresh database.

    On SQLite it is a copy of one file seeded so for the module: seed_demo writes the
    same rows every time (a fixed seed and NOW; test_seeding_twice_adds_nothing_the_second_time
    seeds a fresh database itself), and each seeding cost 1.5 s, bcrypt for the demo
    users mostly. On PostgreSQL it is seeded here.
    """
    if not is_sqlite(database_url):
        seed_demo(engine, "default", now=NOW)
        return engine
    engine.dispose()  # no connection open on the file it replaces
    shutil.copyfile(
        request.getfixturevalue("_seeded_sqlite"), database_url.removeprefix("sqlite:///")
    )
    return engine


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


def test_every_demo_row_is_marked(seeded: Engine) -> None:
    engine = seeded
    with Session(engine) as session:
        rows = session.exec(select(WhatsAppMessage)).all()
        suppliers = session.exec(select(Supplier)).all()
    assert rows and all(is_demo_message(r) and (r.meta or {}).get("demo") for r in rows)
    assert all(is_demo_supplier(s) for s in suppliers)
    assert all((s.external_ref or "").startswith(DEMO_SUPPLIER_PREFIX) for s in suppliers)
    assert demo_message_count(engine, ["default"]) == len(rows)
    assert demo_message_count(engine, ["elsewhere"]) == 0
    assert demo_message_count(engine, []) == 0


def test_the_demo_covers_every_stage_with_real_error_codes(seeded: Engine) -> None:
    engine = seeded
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


def test_demo_messages_are_never_due_for_sending(seeded: Engine) -> None:
    engine = seeded
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


def test_demo_users_log_in_only_in_sandbox_mode(seeded: Engine) -> None:
    engine = seeded
    for name in ("buyer", "manager", "admin"):
        user = get_user(engine, name)
        assert user is not None and user.is_demo and user.role.value == name
    assert login(engine, "manager", DEMO_PASSWORD, allow_demo=True).user is not None
    refused = login(engine, "manager", DEMO_PASSWORD, allow_demo=False)
    assert refused.user is None and "sandbox" in (refused.error or "")


def test_real_data_is_left_alone(seeded: Engine) -> None:
    engine = seeded
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


def test_every_demo_supplier_gets_notices(seeded: Engine) -> None:
    engine = seeded
    with Session(engine) as session:
        used = set(session.exec(select(WhatsAppMessage.supplier_id).distinct()).all())
        suppliers = {s.id for s in session.exec(select(Supplier)).all()}
    assert suppliers and used == suppliers  # every demo number passes phone validation
