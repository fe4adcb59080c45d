"""Consent, everywhere (issue 12 item 1), on a real database: the rule, stop words, the
send page's draft, CSV batches, ERP events, the seed call, resends, replies with a stop
word, an opt-out between queueing and sending, the tenant setting and analytics."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from core.auth import PermissionDenied
from core.bulk import BulkPlan, plan_csv, start_batch
from core.compose import NoticeForm, draft_notice, search_suppliers, send_notice, supplier_consent
from core.consent import allows_unrecorded, history, is_stop_reply, set_allows_unrecorded
from core.consent.batch import read_consent
from core.consent.stats import consent_summary
from core.consent.stopwords import parse_stop_words, stop_words
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.suppliers import Supplier
from core.models.users import Role
from core.notify import NoticeRejected, PoNotice, WhatsAppService, send_po_notice
from core.outbox import OutboxError, resend
from core.po_events.intake import handle_po_event
from core.po_events.publish import example_po_event
from core.sandbox import SandboxServer
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.settings import Settings, SettingsError, get_settings
from core.supplier_directory import (
    SupplierInput,
    add_supplier,
    apply_import,
    plan_import,
    read_import,
    set_opt_in,
)
from core.templates import upsert_templates
from core.users import UserInfo
from core.webhooks.sql import write_transaction
from tests.core.sender.helpers import run_drain
from tests.core.webhooks.helpers import apply_all, inbound_body, inbound_message, journal
from tests.fixtures.consent import allow_unrecorded, consenting_supplier

TENANT = "default"
PHONE = "+34612345678"


def person(role: Role = Role.BUYER, name: str = "ana") -> UserInfo:
    return UserInfo(1, name, name.title(), role, TENANT, (TENANT,), True, False, None)


@pytest.fixture
def db(engine: Engine) -> Engine:
    """The sandbox catalogue's templates for the default tenant."""
    upsert_templates(
        engine, TENANT, [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    )
    return engine


def notice(po: str = "PO-1", phone: str = PHONE, **changes: object) -> PoNotice:
    values: dict[str, object] = dict(
        tenant_id=TENANT, supplier_name="Harinas Martín", phone=phone, po_number=po,
        amount=Decimal("10"), currency="EUR", language="es",
    )  # fmt: skip
    values.update(changes)
    return PoNotice(**values)  # type: ignore[arg-type]


def supplier(engine: Engine, phone: str = PHONE) -> Supplier | None:
    with Session(engine) as session:
        return session.exec(
            select(Supplier).where(Supplier.tenant_id == TENANT, Supplier.phone_e164 == phone)
        ).first()


def opt_out(engine: Engine, phone: str = PHONE) -> int:
    sid = consenting_supplier(engine, phone)
    set_opt_in(engine, person(Role.ADMIN, "root"), sid, False)
    return sid


def messages(engine: Engine) -> list[WhatsAppMessage]:
    with Session(engine) as session:
        return list(session.exec(select(WhatsAppMessage)).all())


# --- stop words ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply", ["STOP", "stop", "BAJA.", "  baixa! ", "Parar", "Cancelar", "UNSUBSCRIBE",
              "Stop 🙏", "darme de BAJA", "opt-out", "BÁJA"],
)  # fmt: skip
def test_a_whole_reply_that_is_a_stop_word_opts_out(reply: str) -> None:
    assert is_stop_reply(reply, stop_words(""))


@pytest.mark.parametrize(
    "reply", ["please don't stop the order", "stop the truck at gate 2", "bajamos mañana",
              "", "ok", "STOP" * 30, None],
)  # fmt: skip
def test_a_stop_word_inside_a_sentence_is_not_an_opt_out(reply: str | None) -> None:
    assert not is_stop_reply(reply, stop_words(""))


def test_stop_words_are_configurable_per_language_and_checked_at_start() -> None:
    words = parse_stop_words("es=basta, NO MÁS ; fr=arrêt")
    assert words["es"] == ("basta", "no mas") and words["fr"] == ("arret",)
    assert words["pt"]  # languages not named keep their defaults
    configured = stop_words("es=basta;fr=arrêt")
    assert is_stop_reply("Arrêt!", configured) and is_stop_reply("BASTA", configured)
    assert not is_stop_reply("baja", configured)  # es replaced: its default list is gone
    for bad in ("es", "=baja", "es=", "español=baja", "e1=x"):
        with pytest.raises(ValueError, match="CONSENT_STOP_WORDS"):
            parse_stop_words(bad)
    with pytest.raises((SettingsError, ValueError)):
        Settings(CONSENT_STOP_WORDS="es baja")


# --- the rule and the tenant setting --------------------------------------------------


def test_new_suppliers_carry_consent_only_when_someone_confirms_it(db: Engine) -> None:
    with pytest.raises(NoticeRejected, match="no recorded consent"):
        send_po_notice(notice(), engine=db)
    assert supplier(db) is None and messages(db) == []  # refused: nothing written
    result = send_po_notice(
        notice(consent_confirmed=True, source="cli", created_by="cli"), engine=db
    )
    assert result.created
    stored = supplier(db)
    assert stored is not None and stored.opted_in and stored.consent_source == "cli"
    assert stored.consent_by == "cli" and stored.opted_in_at is not None
    (event,) = history(db, TENANT, stored.id or 0)
    assert (event.action, event.source, event.by) == ("granted", "cli", "cli")


def test_the_tenant_decides_about_unrecorded_consent_but_opt_outs_are_always_refused(
    db: Engine,
) -> None:
    assert not allows_unrecorded(Session(db), TENANT)  # default: refuse
    with pytest.raises(PermissionDenied):
        set_allows_unrecorded(db, person(Role.BUYER), True)
    set_allows_unrecorded(db, person(Role.ADMIN, "root"), True)
    assert send_po_notice(notice("PO-A"), engine=db).created  # allowed now
    stored = supplier(db)
    assert stored is not None and not stored.opted_in and stored.consent_source is None
    opt_out(db, "+34612000002")
    with pytest.raises(NoticeRejected, match="opted out"):
        send_po_notice(notice("PO-B", "+34612000002", consent_confirmed=True), engine=db)
    set_allows_unrecorded(db, person(Role.ADMIN, "root"), False)
    with pytest.raises(NoticeRejected, match="no recorded consent"):
        send_po_notice(notice("PO-C"), engine=db)


def test_a_corrupt_tenant_setting_refuses(db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(
            text("INSERT INTO tenant_settings (tenant_id, key, value, updated_at) "
                 "VALUES ('default', 'consent.allow_unrecorded', 'TRUE ', :now)"),
            {"now": datetime(2026, 1, 1, tzinfo=UTC).isoformat()},
        )  # fmt: skip
    with pytest.raises(NoticeRejected, match="no recorded consent"):
        send_po_notice(notice(), engine=db)


# --- dashboard: the send page's draft -------------------------------------------------


def form(phone: str = PHONE, *, consent: bool = False) -> NoticeForm:
    return NoticeForm("Harinas Martín", phone, "PO-9", "10", "EUR", "po_notification", "es",
                      consent_confirmed=consent)  # fmt: skip


def test_the_send_page_shows_an_opt_out_before_sending_and_refuses_it(db: Engine) -> None:
    opt_out(db)
    info = supplier_consent(db, TENANT, "612 34 56 78")
    assert info is not None and info.state == "opted_out" and not info.can_confirm
    assert info.refusal and "opted out" in info.refusal and "admin" in info.refusal
    assert re.search(r"on \d\d [A-Z][a-z]{2} \d{4} \(by", info.refusal)  # not ISO
    (choice,) = search_suppliers(db, TENANT, "Supplier")
    assert choice.consent == "opted_out" and "opted out" in choice.label
    draft = draft_notice(db, person(), form(consent=True))  # ticking does not lift it
    assert not draft.ok and any("opted out" in p for p in draft.problems)
    with pytest.raises(NoticeRejected, match="opted out"):
        send_notice(db, person(), draft)
    assert messages(db) == []


def test_the_send_page_checkbox_records_consent_with_the_buyer(db: Engine) -> None:
    info = supplier_consent(db, TENANT, PHONE)
    assert info is not None and info.state == "unknown" and info.can_confirm and info.refusal
    unticked = draft_notice(db, person(), form())
    assert not unticked.ok and any("no recorded consent" in p for p in unticked.problems)
    ticked = draft_notice(db, person(), form(consent=True))
    assert ticked.ok, ticked.problems
    assert supplier(db) is None  # a draft writes nothing
    outcome = send_notice(db, person(), ticked)
    assert outcome.created
    stored = supplier(db)
    assert stored is not None and (stored.consent_source, stored.consent_by) == ("send_page", "ana")
    info = supplier_consent(db, TENANT, PHONE)
    assert info is not None and info.state == "consenting" and info.refusal is None
    assert info.detail is not None  # the one date format ("04 Dec 2026 21:09"), not ISO
    assert re.search(r"Consent recorded on \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d UTC", info.detail)


# --- CSV batches ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "read"),
    [("yes", True), ("YES ", True), ("sí", True), ("Sim", True), ("x", True), ("no", False),
     ("No ", False), ("", None), ("   ", None)],
)  # fmt: skip
def test_consent_cells_are_read_whole(cell: str, read: bool | None) -> None:
    assert read_consent(cell) is read


@pytest.mark.parametrize("cell", ["=1", "+1", "@yes", "-0", "maybe", "yes please", "1.0"])
def test_hostile_or_unclear_consent_cells_are_refused_with_the_value(cell: str) -> None:
    with pytest.raises(ValueError, match="not yes or no"):
        read_consent(cell)


CSV = (
    "supplier_name,phone,po_number,total_amount,currency,consent\n"
    "Uno,+34612000011,PO-11,10,EUR,yes\n"
    "Dos,+34612000012,PO-12,10,EUR,\n"
    "Tres,+34612000013,PO-13,10,EUR,no\n"
    "Cuatro,+34612000014,PO-14,10,EUR,=1\n"
    "Cinco,+34612000015,PO-15,10,EUR,YES \n"
    "Seis,+34612000016,PO-16,10,EUR,sí\n"
)


def bulk_plan(db: Engine, data: str, **kw: object) -> BulkPlan:
    return plan_csv(data.encode(), tenant_id=TENANT, template_name="po_notification",
                    language="es", engine=db, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_a_csv_consent_column_decides_row_by_row_and_an_opt_out_always_wins(db: Engine) -> None:
    opt_out(db, "+34612000016")
    plan = bulk_plan(db, CSV)
    errors = {c.row_number: "; ".join(c.errors) for c in plan.checks}
    assert [c.row_number for c in plan.valid] == [2, 6]  # yes and "YES " (header is row 1)
    assert "no recorded consent" in errors[3]  # empty cell, no batch confirmation
    assert "consent column" in errors[3] and "your name" not in errors[3]  # the CSV's way
    assert "did not agree" in errors[4]
    assert "'=1' is not yes or no" in errors[5]
    assert "opted out" in errors[7]  # sí, but the supplier said stop
    confirmed = bulk_plan(db, CSV, consent_confirmed=True)
    assert [c.row_number for c in confirmed.valid] == [2, 3, 6]  # the empty cell too
    batch = start_batch(confirmed, name="f.csv", created_by="ana", engine=db)
    assert batch.id
    for phone in ("+34612000011", "+34612000012", "+34612000015"):
        stored = supplier(db, phone)
        assert stored is not None and stored.consent_source == "csv"
        assert stored.consent_by == "ana"
    assert supplier(db, "+34612000013") is None  # a refused row adds nobody
    opted = supplier(db, "+34612000016")
    assert opted is not None and opted.opted_out_at is not None  # untouched


def test_a_supplier_who_opts_out_between_check_and_start_is_refused_in_the_batch(
    db: Engine,
) -> None:
    consenting_supplier(db, "+34612000011")
    plan = bulk_plan(db, "supplier_name,phone,po_number,total_amount\nUno,+34612000011,PO-1,5\n")
    assert plan.valid_count == 1
    opt_out(db, "+34612000011")
    from core.batches import batch_results

    batch = start_batch(plan, name="late.csv", created_by="ana", engine=db)
    (row,) = batch_results(db, batch.id)
    assert "opted out" in str(row["error"]) and messages(db) == []


# --- ERP events ----------------------------------------------------------------------


def test_erp_events_record_consent_only_when_the_event_says_so(db: Engine) -> None:
    without = handle_po_event(example_po_event(whatsapp_consent=None), engine=db, source="http")
    assert without.status == "rejected" and "no recorded consent" in (without.reason or "")
    unsaid = example_po_event(whatsapp_consent=False, po_number="PO-F")
    assert handle_po_event(unsaid, engine=db, source="http").status == "rejected"
    said = handle_po_event(example_po_event(po_number="PO-T"), engine=db, source="rabbitmq")
    assert said.status == "enqueued"
    stored = supplier(db)
    assert stored is not None and stored.consent_source == "erp"
    assert (stored.consent_by or "").startswith("erp event ")


@pytest.mark.parametrize("value", ["true", "yes", 1, 0, "", [], {}])
def test_an_erp_consent_that_is_not_a_json_boolean_is_refused(db: Engine, value: object) -> None:
    event = example_po_event(whatsapp_consent=None)
    event["supplier"]["whatsapp_consent"] = value
    result = handle_po_event(event, engine=db, source="http")
    assert result.status == "rejected"
    assert any("supplier.whatsapp_consent" in p and "true or false" in p for p in result.problems)
    assert supplier(db) is None


def test_an_erp_event_for_an_opted_out_supplier_is_refused_with_the_reason(db: Engine) -> None:
    opt_out(db)
    result = handle_po_event(example_po_event(), engine=db, source="rabbitmq")
    assert result.status == "rejected" and "opted out" in (result.reason or "")
    assert messages(db) == []


# --- the seed call, resends ------------------------------------------------------------


def test_the_seed_call_never_sends_to_an_opted_out_or_unconsented_number(db: Engine) -> None:
    service = WhatsAppService(db)
    params = ["Harinas", "PO-1", "10 €"]
    assert service.send_message_sync(PHONE, "x", "po_notification", params) is False  # unknown
    consenting_supplier(db, PHONE)
    assert service.send_message_sync(PHONE, "x", "po_notification", params) is True
    opt_out(db)
    assert service.send_message_sync(PHONE, "x", "po_notification", ["H", "PO-2", "1 €"]) is False
    assert len(messages(db)) == 1


def test_a_resend_to_a_supplier_who_opted_out_is_refused(db: Engine) -> None:
    consenting_supplier(db, PHONE)
    sent = send_po_notice(notice(), engine=db).message
    with db.begin() as conn:
        conn.execute(text("UPDATE whatsapp_messages SET status = 'failed'"))
    opt_out(db)
    with pytest.raises(OutboxError, match="opted out"):
        resend(sent.id, "manager", engine=db)
    assert len(messages(db)) == 1


# --- replies with a stop word ---------------------------------------------------------


def test_a_stop_reply_opts_the_supplier_out_with_source_time_and_words(db: Engine) -> None:
    sid = consenting_supplier(db, PHONE)
    other_tenant = consenting_supplier(db, PHONE, tenant="branch")
    bystander = consenting_supplier(db, "+34612000099")
    journal(db, inbound_body(
        inbound_message("wamid.S1", "34612345678", "text", text={"body": "please don't stop"}),
        inbound_message("wamid.S2", "34612345678", "text", text={"body": "  BAJA. "}),
        inbound_message("wamid.S3", "34612000099", "text", text={"body": "stop the order"}),
    ))  # fmt: skip
    apply_all(db)  # both tenants' records of that number opt out
    with Session(db) as session:
        out = session.get(Supplier, sid)
        assert out is not None and out.opted_out_at is not None and not out.opted_in
        assert out.opt_out_source == "reply" and out.opt_out_by == "+34612345678"
        branch = session.get(Supplier, other_tenant)
        assert branch is not None and branch.opted_out_at is not None
        still = session.get(Supplier, bystander)
        assert still is not None and still.opted_in and still.opted_out_at is None
    latest = history(db, TENANT, sid)[0]
    assert (latest.action, latest.source, latest.evidence) == ("withdrawn", "reply", "BAJA.")
    journal(db, inbound_body(
        inbound_message("wamid.S4", "34612345678", "text", text={"body": "STOP"}),
    ))  # fmt: skip
    apply_all(db)
    assert len(history(db, TENANT, sid)) == 2  # already out: no second record
    with pytest.raises(NoticeRejected, match="opted out"):
        send_po_notice(notice(consent_confirmed=True), engine=db)


# --- an opt-out between queueing and sending -------------------------------------------


def test_a_queued_template_is_not_sent_when_the_supplier_opts_out_before_dispatch(
    db: Engine, sandbox_env: SandboxServer
) -> None:
    consenting_supplier(db, PHONE)
    consenting_supplier(db, "+34612000077")
    queued = send_po_notice(notice(), engine=db).message
    kept = send_po_notice(notice("PO-2", "+34612000077"), engine=db).message
    with write_transaction(db) as conn:  # the reply arrives while the message waits
        from core.consent.record import withdraw_rows

        withdraw_rows(conn, [(queued.supplier_id or 0, TENANT)], source="reply",
                      by=PHONE, at=datetime.now(UTC), evidence="STOP")  # fmt: skip
    run_drain(db)
    with Session(db) as session:
        refused = session.get(WhatsAppMessage, queued.id)
        sent = session.get(WhatsAppMessage, kept.id)
    assert refused is not None and refused.status == MessageStatus.FAILED
    assert refused.error_class == "consent" and "opted out" in (refused.error_message or "")
    assert refused.whatsapp_message_id is None  # it never reached Meta
    assert sent is not None and sent.whatsapp_message_id is not None
    summary = consent_summary(db, [TENANT], date(2000, 1, 1), date(2100, 1, 1))
    assert summary.refused_in_range == 1 and summary.opted_out == 1
    assert summary.opted_out_by_source == {"reply": 1} and summary.opt_outs_in_range == 1


# --- the directory: admins, imports -----------------------------------------------------


def test_imports_record_consent_but_never_lift_an_opt_out(db: Engine) -> None:
    admin = person(Role.ADMIN, "root")
    opt_out(db, "+34612000021")
    added = add_supplier(db, admin, SupplierInput("Nueva", "+34612000022", opted_in=False))
    assert added.consent == "unknown"
    data = (
        "name,phone,consent\nVieja,+34612000021,yes\nNueva,+34612000022,\nOtra,+34612000023,sí\n"
    ).encode()
    table, mapping = read_import(data)
    mapping["opted_in"] = "consent"
    plan = plan_import(db, TENANT, table, mapping)
    assert not plan.bad, plan.bad
    apply_import(db, admin, plan)
    old, new = supplier(db, "+34612000021"), supplier(db, "+34612000022")
    assert old is not None and old.opted_out_at is not None  # "yes" did not lift it
    assert new is not None and not new.opted_in  # an empty cell changes nothing
    other = supplier(db, "+34612000023")
    assert other is not None and other.consent_source == "import" and other.consent_by == "root"


def test_analytics_counts_suppliers_without_consent(db: Engine) -> None:
    allow_unrecorded(db, TENANT)
    send_po_notice(notice(), engine=db)
    summary = consent_summary(db, [TENANT], date(2026, 1, 1), date(2026, 1, 2), "Europe/Madrid")
    assert summary.without_consent == 1 and summary.opted_out == 0
    assert get_settings().consent_stop_words == ""
