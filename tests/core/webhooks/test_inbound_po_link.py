"""Replies without `context.id` find their PO notice by the PO they name (issue 11 item 5).

The sample bodies (`inbound_text.json`, `inbound_button.json`) with their context taken
out, and variants: the supplier's most recent notice for the named PO is linked; no PO,
an unknown PO, several POs or a number shared by several tenants' suppliers leave the
reply unlinked, and a reply is never linked to another tenant's message.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from core.webhooks.inbound import CONFIRMED, po_references
from tests.core.webhooks.helpers import (
    add_message,
    add_supplier,
    apply_all,
    body_of,
    inbound_body,
    inbound_message,
    journal,
    sample,
)

PO = "PO-2026-0042"


def without_context(name: str, **changes: Any) -> bytes:
    """A sample body with its message's `context` removed and `changes` applied to it."""
    doc = json.loads(sample(name))
    message = doc["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["context"]
    message.update(changes)
    return body_of(doc)


def inbound(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM inbound_messages")).all()
    return {r.wamid: dict(r._mapping) for r in rows}


def replied_at(engine: Engine, message_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT replied_at FROM whatsapp_messages WHERE id = :i"), {"i": message_id}
        ).scalar_one()


def age(engine: Engine, message_id: str, days: int) -> None:
    """Make a message `days` older than now (which of two notices is the most recent)."""
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE whatsapp_messages SET created_at = :at WHERE id = :i"),
            {"at": datetime.now(UTC) - timedelta(days=days), "i": message_id},
        )


@pytest.fixture
def notices(engine: Engine) -> tuple[int, str, str]:
    """The samples' supplier with two notices for the PO: a failed one and its newer resend."""
    sid = add_supplier(engine, "+34612345678")
    old = add_message(engine, wamid="wamid.OLD", status_="failed", po_number=PO, supplier_id=sid)
    new = add_message(engine, wamid="wamid.NEW", po_number=PO, supplier_id=sid)
    age(engine, old, 2)
    age(engine, new, 1)
    return sid, old, new


def test_a_quick_reply_without_context_is_linked_to_the_most_recent_notice_for_its_po(
    engine: Engine, notices: tuple[int, str, str]
) -> None:
    sid, old, new = notices
    journal(engine, without_context("inbound_button.json"))
    apply_all(engine)
    row = inbound(engine)["wamid.INBOUNDBTN0001"]
    assert (row["context_message_id"], row["po_number"], row["supplier_id"]) == (new, PO, sid)
    assert row["context_wamid"] is None  # what Meta sent is kept as it was
    with engine.connect() as conn:
        ack = conn.execute(text("SELECT * FROM po_acknowledgements")).one()
    assert (ack.message_id, ack.po_number, ack.action) == (new, PO, CONFIRMED)
    assert replied_at(engine, new) is not None and replied_at(engine, old) is None


@pytest.mark.parametrize(
    "body",
    [
        f"Confirmado el {PO}, lo servimos el jueves.",
        f"confirmado {PO.lower()}",  # case as typed
        "Pedido PO 2026-0042 recibido",  # the prefix written apart
    ],
)
def test_a_text_reply_naming_the_po_is_linked(
    engine: Engine, notices: tuple[int, str, str], body: str
) -> None:
    _, _, new = notices
    journal(engine, without_context("inbound_text.json", text={"body": body}))
    apply_all(engine)
    row = inbound(engine)["wamid.INBOUNDTEXT0001"]
    assert (row["context_message_id"], row["po_number"]) == (new, PO)


def test_a_po_number_written_apart_from_its_prefix_is_found(engine: Engine) -> None:
    sid = add_supplier(engine, "+34612345678")
    mid = add_message(engine, wamid="wamid.X", po_number="PO-4500012345", supplier_id=sid)
    reply = inbound_message("wamid.R", "34612345678", "text",
                            text={"body": "ok po 4500012345"})  # fmt: skip
    journal(engine, inbound_body(reply))
    apply_all(engine)
    assert inbound(engine)["wamid.R"]["context_message_id"] == mid


@pytest.mark.parametrize(
    "body",
    [
        "Recibido, lo servimos el jueves.",  # the sample's own text: names no PO
        "Confirmado el PO-9999",  # a PO we never sent them
        f"Confirmado el {PO} y el PO-2026-0043",  # two notices: which one?
    ],
)
def test_a_reply_naming_no_known_po_or_several_stays_unlinked_and_visible(
    engine: Engine, notices: tuple[int, str, str], body: str
) -> None:
    sid, _, _ = notices
    add_message(engine, wamid="wamid.43", po_number="PO-2026-0043", supplier_id=sid)
    journal(engine, without_context("inbound_text.json", text={"body": body}))
    apply_all(engine)
    row = inbound(engine)["wamid.INBOUNDTEXT0001"]
    assert row["text"] == body and row["supplier_id"] == sid  # stored, the supplier known
    assert row["context_message_id"] is None and row["po_number"] is None


def test_never_linked_to_another_tenants_message(engine: Engine) -> None:
    acme = add_supplier(engine, "+34612345678", tenant="acme")
    globex = add_supplier(engine, "+34699999999", tenant="globex")
    add_message(engine, wamid="wamid.G", tenant="globex", phone="+34699999999",
                po_number=PO, supplier_id=globex)  # fmt: skip
    journal(engine, without_context("inbound_button.json"))
    apply_all(engine)
    row = inbound(engine)["wamid.INBOUNDBTN0001"]
    assert (row["tenant_id"], row["supplier_id"]) == ("acme", acme)
    assert row["context_message_id"] is None


def test_a_number_shared_by_several_tenants_suppliers_stays_unlinked(engine: Engine) -> None:
    add_supplier(engine, "+34612345678", tenant="acme")
    globex = add_supplier(engine, "+34612345678", tenant="globex")
    add_message(engine, wamid="wamid.G", tenant="globex", po_number=PO, supplier_id=globex)
    journal(engine, without_context("inbound_button.json"))
    apply_all(engine)
    row = inbound(engine)["wamid.INBOUNDBTN0001"]
    assert row["context_message_id"] is None and row["supplier_id"] is None


def test_a_reply_with_context_keeps_its_context(
    engine: Engine, notices: tuple[int, str, str]
) -> None:
    """`context.id` wins over a PO named in the text, even another PO."""
    _, old, _ = notices
    reply = inbound_message("wamid.C", "34612345678", "text", context="wamid.OLD",
                            text={"body": "y el PO-2026-0043?"})  # fmt: skip
    journal(engine, inbound_body(reply))
    apply_all(engine)
    assert inbound(engine)["wamid.C"]["context_message_id"] == old


@pytest.mark.parametrize(
    ("payload", "body", "expected"),
    [
        ("ack:PO-1", "Confirm", ["PO-1"]),  # the payload's reference, alone
        (None, "PO-7.", ["PO-7"]),
        (None, "po 42", ["42", "po-42", "PO-42", "po42", "PO42", "po 42", "PO 42"]),
        (None, "no number here", []),
        (None, "", []),
        (None, None, []),
        (None, "x" * 70 + "1", []),  # longer than a PO number
        (None, " ".join(f"P{i}" for i in range(100)), [f"P{i}" for i in range(12)]),
        (None, "PO-1" + " " * 5000 + "PO-2", ["PO-1"]),  # only the start is read
        (None, '=HYPERLINK("x") <b>PO-3</b>', ["PO-3"]),
    ],
)
def test_po_references(payload: str | None, body: str | None, expected: list[str]) -> None:
    assert po_references(payload, body) == expected


def test_the_lookup_by_po_is_one_indexed_query(
    engine: Engine, notices: tuple[int, str, str]
) -> None:
    """Replies lacking context cost one query on the (tenant, PO) index, not a scan."""
    from sqlalchemy import event

    from core.db import is_sqlite

    replies = [
        inbound_message(f"wamid.R{n}", "34612345678", "text", text={"body": f"ok {PO}"})
        for n in range(20)
    ]
    journal(engine, inbound_body(*replies))
    statements: list[tuple[str, Any]] = []

    def capture(conn, cursor, sql, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "po_number IN" in sql and "FROM whatsapp_messages" in sql:
            statements.append((sql, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        apply_all(engine)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(statements) == 1  # twenty replies, one lookup
    assert {r["context_message_id"] for r in inbound(engine).values()} == {notices[2]}
    if is_sqlite(engine):
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statements[0][0]}", statements[0][1])
            details = [str(row[-1]) for row in plan]
        assert not any(d.startswith("SCAN whatsapp_messages") for d in details), details
