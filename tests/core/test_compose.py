"""core/compose.py: the send page's suppliers, templates, drafts, sends and live status."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from core.auth import PermissionDenied
from core.compose import (
    NoticeForm,
    draft_notice,
    message_state,
    po_notice_templates,
    search_suppliers,
    send_notice,
    sendable_templates,
)
from core.keys import po_notice_key
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier
from core.models.users import Role
from core.notify import NoticeRejected
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.templates import upsert_templates
from core.users import UserInfo
from tests.fixtures.consent import allow_unrecorded
from tests.fixtures.templates import po_notification

TENANT = "acme"


def user(role: Role = Role.BUYER, tenant: str = TENANT, name: str = "ana") -> UserInfo:
    return UserInfo(1, name, name.title(), role, tenant, (tenant,), True, False, None)


@pytest.fixture
def db(engine: Engine) -> Engine:
    """A database with the sandbox's templates for two tenants and a few suppliers."""
    definitions = [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    pdf = po_notification("es", name="po_pdf_notice", id="99")
    upsert_templates(engine, TENANT, [*definitions, pdf])
    upsert_templates(engine, "other", definitions[:2])
    with Session(engine) as session:
        session.add_all(
            [
                Supplier(tenant_id=TENANT, name="Harinas Martín S.L.", phone_e164="+34612345678"),
                Supplier(tenant_id=TENANT, name="Lácteos Ruiz", phone_e164="+34612555111"),
                Supplier(tenant_id=TENANT, name="100% Azúcar_Sur", phone_e164="+34622333444"),
                Supplier(
                    tenant_id=TENANT, name="Gone Ltd", phone_e164="+34699000111", is_active=False
                ),
                Supplier(tenant_id="other", name="Harinas Otro", phone_e164="+34633000111"),
            ]
        )
        session.commit()
    allow_unrecorded(engine, TENANT, "other")  # consent itself: tests/core/test_consent*
    return engine


def form(**overrides: str) -> NoticeForm:
    values = {
        "supplier_name": "Harinas Martín S.L.",
        "phone": "612 34 56 78",
        "po_number": "PO-2026-0042",
        "amount": "1.234,50",
        "currency": "eur",
        "template_name": "po_notification",
        "language": "es",
    }
    values.update(overrides)
    return NoticeForm(**values)  # type: ignore[arg-type]


def count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


# Suppliers --------------------------------------------------------------------------------


def test_search_matches_names_without_case_and_phones_with_any_spacing(db: Engine) -> None:
    assert [s.name for s in search_suppliers(db, TENANT, "HARINAS")] == ["Harinas Martín S.L."]
    assert [s.name for s in search_suppliers(db, TENANT, "612 555")] == ["Lácteos Ruiz"]
    everyone = [s.name for s in search_suppliers(db, TENANT)]
    assert everyone == ["100% Azúcar_Sur", "Harinas Martín S.L.", "Lácteos Ruiz"]


def test_search_treats_like_wildcards_as_text_and_never_leaves_the_tenant(db: Engine) -> None:
    assert [s.name for s in search_suppliers(db, TENANT, "%")] == ["100% Azúcar_Sur"]
    assert [s.name for s in search_suppliers(db, TENANT, "_")] == ["100% Azúcar_Sur"]
    assert search_suppliers(db, TENANT, "Otro") == []  # the other tenant's supplier
    assert search_suppliers(db, TENANT, "Gone") == []  # inactive
    assert search_suppliers(db, TENANT, "'; DROP TABLE suppliers; --") == []
    assert len(search_suppliers(db, TENANT, "a" * 10_000)) == 0
    assert len(search_suppliers(db, TENANT, "", limit=1)) == 1


# Templates --------------------------------------------------------------------------------


def test_only_approved_po_notice_templates_are_offered(db: Engine) -> None:
    offered = {(t.name, t.language) for t in po_notice_templates(db, TENANT)}
    assert ("po_notification", "es") in offered and ("po_notification", "en") in offered
    assert all(name.startswith("po_") for name, _ in offered)
    everything = sendable_templates(db, TENANT)
    assert {t.name for t in everything} > {t.name for t in po_notice_templates(db, TENANT)}
    # paused, disabled and rejected templates are never offered
    assert {"old_po_notice", "legacy_order_alert", "spring_promo"}.isdisjoint(
        t.name for t in everything
    )
    reminder = next(t for t in everything if t.name == "delivery_reminder")
    assert not reminder.po_notice
    document = next(t for t in po_notice_templates(db, TENANT) if t.name == "po_pdf_notice")
    assert document.needs_document
    assert {t.name for t in po_notice_templates(db, "other")} == {"po_notification"}


# Drafts -----------------------------------------------------------------------------------


def test_a_good_draft_previews_what_the_supplier_sees_and_writes_nothing(db: Engine) -> None:
    suppliers = count(db, Supplier)
    draft = draft_notice(db, user(), form(supplier_name="Panadería Nueva", phone="+34 655 1234 56"))
    assert draft.ok, draft.problems
    assert draft.preview is not None
    assert "PO-2026-0042" in draft.preview.body and "1.234,50 €" in draft.preview.body
    assert draft.preview.buttons and draft.preview.footer
    assert draft.recipient == "+34655123456"
    assert draft.idempotency_key == po_notice_key("PO-2026-0042", "+34655123456", "po_notification")
    assert draft.notice is not None and draft.notice.amount == Decimal("1234.50")
    assert draft.notice.currency == "EUR" and draft.notice.created_by == "ana"
    assert count(db, Supplier) == suppliers  # the new supplier was not recorded by a draft
    assert count(db, WhatsAppMessage) == 0


def test_every_problem_is_listed_at_once_and_the_preview_still_shows(db: Engine) -> None:
    draft = draft_notice(db, user(), form(phone="+34 612", amount="abc", currency="euros"))
    assert not draft.ok
    text = " | ".join(draft.problems)
    assert "too short" in text and "'abc' is not an amount" in text and "Currency" in text
    assert draft.preview is not None and "{{total_amount}}" in draft.preview.body
    assert "PO-2026-0042" in draft.preview.body


def test_an_ambiguous_amount_is_refused_until_the_separator_is_chosen(db: Engine) -> None:
    assert any("ambiguous" in p for p in draft_notice(db, user(), form(amount="2.750")).problems)
    comma = draft_notice(db, user(), form(amount="2.750", decimal=","))  # dot groups thousands
    assert comma.ok and comma.notice is not None and comma.notice.amount == Decimal("2750")
    dot = draft_notice(db, user(), form(amount="2.750", decimal="."))
    assert dot.ok and dot.notice is not None and dot.notice.amount == Decimal("2.750")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"supplier_name": ""}, "supplier name is empty"),
        ({"supplier_name": "Línea\nrota"}, "line break"),
        ({"po_number": "   "}, "PO number is empty"),
        ({"po_number": "P" * 65}, "longer than 64"),
        ({"phone": ""}, "phone number is missing"),
        ({"phone": "=HYPERLINK(1)"}, ""),
        ({"template_name": "nope"}, "no template 'nope'"),
        ({"language": "fr"}, "no 'fr' version"),
        ({"template_name": "po_pdf_notice"}, "give the document's link"),
        ({"template_name": "po_pdf_notice", "document_url": "javascript:alert(1)"}, "https"),
        ({"amount": "-5"}, "Amount"),
        ({"supplier_name": "A\u202eLIAME\u200b"}, "right-to-left override (U+202E) at position 2"),
        ({"supplier_name": "Ana\u2066"}, "left-to-right isolate (U+2066) at position 4"),
        ({"po_number": "PO\ufeff1"}, "(U+FEFF) at position 3"),
        ({"supplier_name": "@SUM(A1)"}, "like a spreadsheet formula"),
        ({"po_number": "=1+2"}, "like a spreadsheet formula"),
    ],
)
def test_hostile_or_malformed_values_are_refused_with_a_reason(
    db: Engine, overrides: dict[str, str], expected: str
) -> None:
    draft = draft_notice(db, user(), form(**overrides))
    assert not draft.ok
    assert any(expected in problem for problem in draft.problems), draft.problems
    with pytest.raises(NoticeRejected):
        send_notice(db, user(), draft)
    assert count(db, WhatsAppMessage) == 0


def test_non_breaking_spaces_in_the_form_reach_the_supplier_as_one_space(db: Engine) -> None:
    draft = draft_notice(db, user(), form(supplier_name="Harinas\u00a0\u00a0Martín\u202fS.L."))
    assert draft.ok and draft.preview is not None, draft.problems
    assert "Harinas Martín S.L." in draft.preview.body
    send_notice(db, user(), draft)
    with Session(db) as session:
        message = session.exec(select(WhatsAppMessage)).one()
    assert "Harinas Martín S.L." in (message.body_text or "")
    sent = message.request_payload["template"]["components"]  # type: ignore[index]
    texts = [p.get("text") for c in sent for p in c.get("parameters", [])]
    assert "Harinas Martín S.L." in texts


def test_markup_in_values_is_kept_as_text(db: Engine) -> None:
    draft = draft_notice(db, user(), form(supplier_name="<script>x</script> & Co"))
    assert draft.ok and draft.preview is not None
    assert "<script>x</script> & Co" in draft.preview.body


# Sending ----------------------------------------------------------------------------------


def test_a_double_click_sends_once(db: Engine) -> None:
    draft = draft_notice(db, user(), form())
    first = send_notice(db, user(), draft)
    again = send_notice(db, user(), draft_notice(db, user(), form()))
    assert first.created and not again.created
    assert first.message_id == again.message_id and count(db, WhatsAppMessage) == 1
    state = message_state(db, TENANT, first.message_id)
    assert state is not None and state.status == "pending" and not state.final
    assert state.po_number == "PO-2026-0042" and state.steps[0].at is not None
    assert [step.at for step in state.steps[1:]] == [None, None, None, None]


def test_a_manager_may_not_send_and_other_tenants_see_nothing(db: Engine) -> None:
    draft = draft_notice(db, user(), form())
    with pytest.raises(PermissionDenied):
        send_notice(db, user(Role.MANAGER), draft)
    inactive = UserInfo(1, "ana", "Ana", Role.BUYER, TENANT, (TENANT,), False, False, None)
    with pytest.raises(PermissionDenied):
        send_notice(db, inactive, draft)
    with pytest.raises(NoticeRejected, match="another tenant"):
        send_notice(db, user(tenant="other"), draft)
    assert count(db, WhatsAppMessage) == 0
    sent = send_notice(db, user(Role.ADMIN), draft)
    assert message_state(db, "other", sent.message_id) is None
    assert message_state(db, TENANT, "no-such-id") is None
