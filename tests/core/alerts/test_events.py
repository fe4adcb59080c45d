"""Alert events are recorded where things happen: a supplier's reject button, a pause, a
batch finishing with failures, Meta holding or rejecting a template, refused webhook
signatures; each once, with the right audience, and nothing when all is well."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlmodel import Session

from core.alerts.events import EVENTS
from core.batches import complete_finished_batches
from core.control import pause_sending
from core.models.batches import SendBatch
from core.models.templates import WhatsAppTemplate
from core.models.users import User
from core.sender.store import ErrorFields, PauseSending, apply_outcomes
from core.webhooks.rejections import Tally, record_rejections
from tests.core.webhooks.helpers import (
    MESSAGES,
    add_message,
    add_supplier,
    apply_all,
    body_of,
    envelope,
    inbound_body,
    inbound_message,
    journal,
)

T = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def recorded(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(EVENTS).order_by(EVENTS.c.id)).all()
    return [dict(row._mapping) for row in rows]


def test_a_reject_press_names_the_buyer_who_sent_the_notice(engine: Engine) -> None:
    supplier = add_supplier(engine, name="Hierros <b>Díaz</b>")
    sent = add_message(engine, wamid="wamid.SENT", po_number="PO-42", supplier_id=supplier)
    with engine.begin() as conn:
        conn.execute(update(MESSAGES).where(MESSAGES.c.id == sent).values(created_by="ana"))
    confirm = inbound_message(
        "wamid.OK", "34612345678", "button", context="wamid.SENT",
        button={"payload": "ack:PO-42", "text": "Confirmar"},
    )  # fmt: skip
    reject = inbound_message(
        "wamid.NO", "34612345678", "button", context="wamid.SENT",
        button={"payload": "nack:PO-42", "text": "Rechazar <!channel>"},
    )  # fmt: skip
    journal(engine, inbound_body(confirm, reject))
    apply_all(engine)
    journal(engine, inbound_body(reject))  # Meta's retry of the same press
    apply_all(engine)
    [event] = recorded(engine)
    assert event["kind"] == "po_rejected" and event["tenant_id"] == "default"
    assert event["audience"]["usernames"] == ["ana"]
    assert event["audience"]["fallback_role"] == "buyer"
    facts = event["facts"]
    assert (facts["po_number"], facts["reply"]) == ("PO-42", "Rechazar <!channel>")
    assert facts["supplier"] == "Hierros <b>Díaz</b>"  # stored as data, escaped when shown


def test_a_pause_tells_the_admins_once(engine: Engine) -> None:
    error = ErrorFields(131042, "pause", "Payment problem on the business account", None, {})
    apply_outcomes(engine, [PauseSending("106540352242922", error, T)], "w1")
    apply_outcomes(engine, [PauseSending("106540352242922", error, T)], "w2")  # already paused
    [event] = recorded(engine)
    assert event["kind"] == "sending_paused" and event["audience"]["role"] == "admin"
    assert event["facts"]["code"] == 131042
    assert event["tenant_id"] == "default"  # the environment's number is the default tenant's


def test_a_pause_tells_only_the_admins_of_the_numbers_tenant(engine: Engine) -> None:
    from core.alerts.events import number_tenant
    from core.models.sender_numbers import SenderNumberRow

    with Session(engine) as session:
        session.add(SenderNumberRow(tenant_id="acme", phone_number_id="555000111"))
        session.commit()
    error = ErrorFields(131042, "pause", "Payment problem on the business account", None, {})
    apply_outcomes(engine, [PauseSending("555000111", error, T)], "w1")
    pause_sending(engine, "106540352242922", "Stocktaking")
    acme, env = recorded(engine)
    assert (acme["tenant_id"], acme["facts"]["phone_number_id"]) == ("acme", "555000111")
    assert acme["audience"]["role"] == "admin"
    assert env["tenant_id"] == "default"
    with engine.connect() as conn:  # a number nobody registered: the installation's admins
        assert number_tenant(conn, "999' OR 1=1 --") == "default"


def test_a_person_pausing_tells_the_admins(engine: Engine) -> None:
    pause_sending(engine, "106540352242922", "Stocktaking until Monday")
    pause_sending(engine, "106540352242922", "Still stocktaking")
    [event] = recorded(engine)
    assert event["facts"]["reason"] == "Stocktaking until Monday"
    assert event["facts"]["code"] is None


def _batch(engine: Engine, name: str, statuses: list[str]) -> str:
    with Session(engine) as session:
        batch = SendBatch(
            tenant_id="default", name=name, total_rows=len(statuses), created_by="ana"
        )
        session.add(batch)
        session.commit()
        batch_id = batch.id
    for status in statuses:
        message = add_message(engine, status_=status)
        with engine.begin() as conn:
            conn.execute(update(MESSAGES).where(MESSAGES.c.id == message).values(batch_id=batch_id))
    return batch_id


def test_a_batch_finishing_with_failures_tells_its_owner(engine: Engine) -> None:
    bad = _batch(engine, "monday.csv", ["delivered", "failed", "needs_attention"])
    _batch(engine, "tuesday.csv", ["delivered", "read"])
    running = _batch(engine, "wednesday.csv", ["failed", "pending"])
    assert complete_finished_batches(engine) == 2
    assert complete_finished_batches(engine) == 0  # done once
    [event] = recorded(engine)
    assert event["kind"] == "batch_failures" and event["audience"]["usernames"] == ["ana"]
    assert event["facts"] == {"batch_id": bad, "batch": "monday.csv", "failed": 2, "total": 3}
    assert running not in str(recorded(engine))


def _template_change(event: str, reason: str | None = None) -> bytes:
    item: dict[str, Any] = {
        "event": event,
        "message_template_id": 1,
        "message_template_name": "po_notification",
        "message_template_language": "es",
    }
    if reason:
        item["reason"] = reason
    return body_of(envelope(item, field="message_template_status_update"))


def test_meta_pausing_or_rejecting_a_template_tells_the_admins_once(engine: Engine) -> None:
    with Session(engine) as session:
        for tenant in ("default", "globex"):
            session.add(
                WhatsAppTemplate(
                    tenant_id=tenant, template_name="po_notification",
                    template_key="po_notification:es", language="es",
                )
            )  # fmt: skip
        session.commit()
    journal(engine, _template_change("PAUSED", "LOW_QUALITY"))
    journal(engine, _template_change("PAUSED", "LOW_QUALITY"))  # a repeated webhook
    apply_all(engine)
    journal(engine, _template_change("APPROVED"))
    apply_all(engine)  # no alert for good news
    events = recorded(engine)
    assert sorted(e["tenant_id"] for e in events) == ["default", "globex"]
    assert {e["facts"]["reason"] for e in events} == {"LOW_QUALITY"}
    assert all(e["audience"]["role"] == "admin" for e in events)


def test_refused_signatures_tell_the_admins_once_per_run(engine: Engine) -> None:
    record_rejections(engine, {"bad_signature": Tally(5, T, T)}, None)
    record_rejections(engine, {"bad_signature": Tally(9, T, T + timedelta(seconds=1))}, None)
    assert len(recorded(engine)) == 1
    valid = T + timedelta(minutes=1)  # a valid delivery ended the run; a new one starts
    later = T + timedelta(minutes=2)
    record_rejections(engine, {"bad_signature": Tally(1, later, later)}, valid)
    events = recorded(engine)
    assert [e["facts"]["count"] for e in events] == [5, 1]
    assert events[0]["kind"] == "webhook_signatures" and events[0]["tenant_id"] is None


def test_the_cli_lists_and_sends(engine: Engine, monkeypatch: Any, smtp_server: Any) -> None:
    from typer.testing import CliRunner

    from core.alerts.cli import alerts_app
    from core.alerts.config import get_alert_settings

    with engine.begin() as conn:
        conn.execute(
            insert(EVENTS).values(
                kind="sending_paused", tenant_id=None, audience={"role": "admin"},
                facts={"phone_number_id": "1", "reason": "x", "code": None},
                fanned_out=False, created_at=datetime.now(UTC),
            )
        )  # fmt: skip
        conn.execute(
            insert(User.__table__).values(  # type: ignore[attr-defined]
                username="root", display_name="Root", password_hash="-", role="admin",
                tenant_id="default", is_active=True, is_demo=False, email="root@x.test",
                created_at=T, updated_at=T,
            )
        )  # fmt: skip
    monkeypatch.setenv("ALERTS_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("ALERTS_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("ALERTS_SMTP_TLS", "none")
    monkeypatch.setenv("ALERTS_SMTP_FROM", "alerts@x.test")
    get_alert_settings.cache_clear()
    try:
        runner = CliRunner()
        sent = runner.invoke(alerts_app, ["send-pending"])
        assert sent.exit_code == 0, sent.output
        assert sent.output.startswith("1 sent (1 alerts")
        listed = runner.invoke(alerts_app, ["list"])
        assert listed.output.split()[3:8] == ["sending_paused", "email", "root@x.test", "sent", "0"]
        monkeypatch.setenv("ALERTS_SMTP_FROM", "")
        get_alert_settings.cache_clear()
        broken = runner.invoke(alerts_app, ["send-pending"])
        assert broken.exit_code != 0
        assert "missing ALERTS_SMTP_FROM" in str(broken.exception)
    finally:
        get_alert_settings.cache_clear()


def test_removing_a_user_removes_their_alert_choices(engine: Engine) -> None:
    from core.alerts.kinds import AlertKind
    from core.alerts.preferences import PREFS, Choice, set_choices
    from core.users import add_user, remove_user

    info = add_user(engine, "leaver", "a-long-password-1", "buyer", "default")
    set_choices(engine, info.id, {AlertKind.PO_REJECTED: Choice(email=False, chat=False)})
    remove_user(engine, "leaver")
    with engine.connect() as conn:
        assert conn.execute(select(PREFS)).all() == []
