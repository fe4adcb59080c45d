"""Reminders (issue 15 item 2) on a real database: one per PO and interval, the cap, the
consent gate, confirmed and rejected POs, roles and tenants, and the automatic schedule
run by the sender process, all decided by the injected clock."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.auth import PermissionDenied
from core.followup.reminders import Outcome, remind, reminder_key, send_reminders
from core.followup.scheduler import run_due
from core.followup.settings import claim_run, get_settings
from core.models.messages import WhatsAppMessage
from core.models.users import Role
from core.supplier_directory import set_opt_in
from core.users import UserInfo
from tests.core.followup.helpers import T0, answer, notice, person, ready, setting

pytestmark = pytest.mark.clock
H = timedelta(hours=1)
PHONE = "+34699100001"


@pytest.fixture
def db(engine: Engine) -> Engine:
    return ready(engine, "default", "other")


def reminders(engine: Engine, po: str) -> list[WhatsAppMessage]:
    m = WhatsAppMessage
    with Session(engine) as session:
        rows = session.exec(
            select(m)
            .where(col(m.po_number) == po, col(m.idempotency_key).startswith("reminder:"))
            .order_by(col(m.created_at))
        )
        return list(rows.all())


def test_one_reminder_per_interval_up_to_the_cap(db: Engine) -> None:
    notice_id, _ = notice(db, "PO-1", T0 - 30 * H, number=PHONE, name="Harinas Martín")
    buyer = person()
    (first,) = send_reminders(db, buyer, [notice_id, notice_id], now=T0)  # asked once
    assert first.outcome is Outcome.QUEUED and first.number == 1
    (again,) = send_reminders(db, buyer, [notice_id], now=T0 + H)  # a second click
    assert again.outcome is Outcome.TOO_SOON
    (sent,) = reminders(db, "PO-1")
    assert sent.idempotency_key == reminder_key("PO-1", PHONE, 1)
    assert sent.template_name == "po_reminder" and sent.status == "pending"  # the outbox
    assert sent.template_parameters == {"supplier_name": "Harinas Martín", "po_number": "PO-1"}
    assert sent.created_by == buyer.username and sent.created_at == T0
    assert "PO-1" in (sent.body_text or "")

    (second,) = send_reminders(db, buyer, [notice_id], now=T0 + 24 * H)
    assert second.outcome is Outcome.QUEUED and second.number == 2
    (third,) = send_reminders(db, buyer, [notice_id], now=T0 + 72 * H)
    assert third.outcome is Outcome.CAPPED
    assert len(reminders(db, "PO-1")) == 2

    setting(db, max_reminders=3)  # the tenant's cap
    (more,) = send_reminders(db, buyer, [notice_id], now=T0 + 72 * H)
    assert more.outcome is Outcome.QUEUED and more.number == 3


def test_simultaneous_clicks_make_one_reminder(db: Engine) -> None:
    notice_id, _ = notice(db, "PO-2", T0 - 30 * H, number=PHONE)
    start = threading.Barrier(4)
    outcomes: list[Outcome] = []

    def click() -> None:
        start.wait()
        outcomes.extend(r.outcome for r in send_reminders(db, person(), [notice_id], now=T0))

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reminders(db, "PO-2")) == 1
    assert outcomes.count(Outcome.QUEUED) == 1
    assert set(outcomes) <= {Outcome.QUEUED, Outcome.ALREADY_QUEUED, Outcome.TOO_SOON}


def test_never_to_an_opted_out_supplier(db: Engine) -> None:
    notice_id, _ = notice(db, "PO-3", T0 - 30 * H, number=PHONE)
    with Session(db) as session:
        supplier_id = session.get(WhatsAppMessage, notice_id).supplier_id  # type: ignore[union-attr]
    assert supplier_id is not None
    set_opt_in(db, person("admin"), supplier_id, False)
    (result,) = send_reminders(db, person(), [notice_id], now=T0)
    assert result.outcome is Outcome.REFUSED and result.reason
    assert "opted out" in result.reason.lower() or "baja" in result.reason.lower()
    assert reminders(db, "PO-3") == []


def test_confirmed_rejected_unknown_and_other_tenants(db: Engine) -> None:
    ok_id, ok = notice(db, "PO-OK", T0 - 30 * H, number="+34699100002")
    rej_id, rej = notice(db, "PO-NO", T0 - 30 * H, number="+34699100003")
    theirs, _ = notice(db, "PO-THEIRS", T0 - 30 * H, tenant="other")
    answer(db, ok, "+34699100002", T0 - 29 * H, button="Confirmar pedido")
    answer(db, rej, "+34699100003", T0 - 29 * H, button="Rechazar")
    buyer = person()
    assert send_reminders(db, buyer, [ok_id], now=T0)[0].outcome is Outcome.CONFIRMED
    auto = remind(db, "default", rej_id, now=T0, by="scheduler", automatic=True)
    assert auto.outcome is Outcome.REJECTED_PO  # a machine does not nag a "no"
    (manual,) = send_reminders(db, buyer, [rej_id], now=T0)  # a person is refused too
    assert manual.outcome is Outcome.REJECTED_PO and manual.reminder_id is None
    assert "rejected" in manual.words and "call the supplier" in manual.words
    assert reminders(db, "PO-NO") == []  # a rejection is an answer: nothing queued
    assert send_reminders(db, buyer, [theirs], now=T0)[0].outcome is Outcome.NOT_FOUND
    assert send_reminders(db, buyer, ["no-such-id"], now=T0)[0].outcome is Outcome.NOT_FOUND
    assert reminders(db, "PO-THEIRS") == []
    manager = person("manager")
    assert send_reminders(db, manager, [ok_id], now=T0)[0].outcome is Outcome.CONFIRMED
    gone = UserInfo(9, "gone", "Gone", Role.BUYER, "default", ("default",), False, False, None)
    with pytest.raises(PermissionDenied):
        send_reminders(db, gone, [ok_id], now=T0)


def test_a_missing_po_reminder_template_is_refused_with_the_reason(engine: Engine) -> None:
    ready(engine)
    notice_id, _ = notice(engine, "PO-T", T0 - 30 * H, number=PHONE)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM whatsapp_templates WHERE template_name = 'po_reminder'")
    (result,) = send_reminders(engine, person(), [notice_id], now=T0)
    assert result.outcome is Outcome.REFUSED and "po_reminder" in (result.reason or "")


def test_the_schedule_runs_when_due_and_stops_when_switched_off(db: Engine) -> None:
    notice(db, "PO-S1", T0 - 30 * H, number="+34699100011")
    notice(db, "PO-S2", T0 - 2 * H, number="+34699100012")  # not waited long enough yet
    notice(db, "PO-OTHER", T0 - 30 * H, tenant="other")  # its tenant did not switch on
    notice(db, "PO-ANCIENT", T0 - 15 * 24 * H, number="+34699100013")  # a person's call
    assert run_due(db, now=T0) == []  # off by default
    setting(db, auto=True, every=6)
    (report,) = run_due(db, now=T0)
    assert report.tenant_id == "default" and report.queued == 1
    assert [r.po_number for r in reminders(db, "PO-S1")] == ["PO-S1"]
    cfg = get_settings(db, "default")
    assert cfg.last_run == T0 and cfg.next_run(T0 + H) == T0 + 6 * H
    assert run_due(db, now=T0 + 5 * H) == []  # not due yet
    (later,) = run_due(db, now=T0 + 24 * H)  # S2 is due; S1's second is due too
    assert later.queued == 2
    assert len(reminders(db, "PO-S1")) == 2 and len(reminders(db, "PO-S2")) == 1
    assert reminders(db, "PO-OTHER") == [] and reminders(db, "PO-ANCIENT") == []
    setting(db, auto=False)  # the switch
    assert run_due(db, now=T0 + 72 * H) == []
    assert get_settings(db, "default").next_run(T0 + 72 * H) is None
    assert len(reminders(db, "PO-S2")) == 1


def test_two_sender_processes_claim_a_tenants_run_once(db: Engine) -> None:
    assert claim_run(db, "default", None, T0)
    assert not claim_run(db, "default", None, T0)  # the other process lost the insert
    assert claim_run(db, "default", T0, T0 + 6 * H)
    assert not claim_run(db, "default", T0, T0 + 6 * H)  # ... and the compare-and-set
