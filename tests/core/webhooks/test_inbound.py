"""`core.webhooks.inbound`: supplier replies stored with supplier and context; PO acks; window."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, text

from core.webhooks.inbound import CONFIRMED, OTHER, REJECTED, classify_ack, po_from_payload
from tests.core.webhooks.helpers import (
    SAMPLE_WAMID,
    T0,
    add_message,
    add_supplier,
    apply_all,
    inbound_body,
    inbound_message,
    journal,
    sample,
    unix,
)


def rows(engine: Engine, table: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY at"))]


def supplier(engine: Engine, supplier_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM suppliers WHERE id = :i"), {"i": supplier_id}).one()
    return dict(row._mapping)


def _aware(value: Any) -> Any:
    from tests.core.webhooks.helpers import _aware as aware

    return aware(value)


@pytest.fixture
def po_message(engine: Engine) -> tuple[int, str]:
    """The supplier of the samples and the PO notice they answer."""
    sid = add_supplier(engine, "+34612345678")
    mid = add_message(engine, wamid=SAMPLE_WAMID, po_number="PO-2026-0042", supplier_id=sid)
    return sid, mid


def test_text_reply_is_stored_with_supplier_and_context(
    engine: Engine, po_message: tuple[int, str]
) -> None:
    sid, mid = po_message
    journal(engine, sample("inbound_text.json"))
    report = apply_all(engine)
    assert report.inbound.stored == 1 and report.inbound.matched_suppliers == 1
    (row,) = rows(engine, "inbound_messages")
    assert row["wamid"] == "wamid.INBOUNDTEXT0001"
    assert row["message_type"] == "text"
    assert row["text"] == "Recibido, lo servimos el jueves."
    assert row["supplier_id"] == sid
    assert row["context_wamid"] == SAMPLE_WAMID and row["context_message_id"] == mid
    assert row["po_number"] == "PO-2026-0042"
    assert row["profile_name"] == "Harinas Martín"
    assert row["tenant_id"] == "default"
    assert rows(engine, "po_acknowledgements") == []  # text is not a button press


def test_inbound_opens_the_24_hour_window_and_never_moves_it_back(
    engine: Engine, po_message: tuple[int, str]
) -> None:
    sid, _ = po_message
    journal(engine, sample("inbound_text.json"))  # 1763990200
    apply_all(engine)
    assert _aware(supplier(engine, sid)["last_inbound_at"]) == unix(1763990200)
    assert supplier(engine, sid)["wa_id"] == "34612345678"  # learned from the reply
    older = inbound_message("wamid.OLD", "34612345678", "text", 1763990000, text={"body": "x"})
    journal(engine, inbound_body(older))
    apply_all(engine)
    assert _aware(supplier(engine, sid)["last_inbound_at"]) == unix(1763990200)
    newer = inbound_message("wamid.NEW", "34612345678", "text", 1763999999, text={"body": "y"})
    journal(engine, inbound_body(newer))
    apply_all(engine)
    assert _aware(supplier(engine, sid)["last_inbound_at"]) == unix(1763999999)


def test_a_quick_reply_confirm_records_the_po_acknowledgement(
    engine: Engine, po_message: tuple[int, str]
) -> None:
    sid, mid = po_message
    journal(engine, sample("inbound_button.json"))
    report = apply_all(engine)
    assert report.inbound.acknowledgements == 1
    (ack,) = rows(engine, "po_acknowledgements")
    assert ack["action"] == CONFIRMED
    assert ack["po_number"] == "PO-2026-0042"
    assert ack["message_id"] == mid and ack["supplier_id"] == sid
    assert ack["payload"] == "ack:PO-2026-0042" and ack["button_text"] == "Confirmar"
    assert ack["inbound_wamid"] == "wamid.INBOUNDBTN0001"
    # Meta's retry of the same press: stored once, acknowledged once.
    journal(engine, sample("inbound_button.json") + b"\n")
    apply_all(engine)
    assert len(rows(engine, "po_acknowledgements")) == 1
    assert len(rows(engine, "inbound_messages")) == 1


def test_a_reject_press_and_an_interactive_reply(
    engine: Engine, po_message: tuple[int, str]
) -> None:
    reject = inbound_message(
        "wamid.REJ", "34612345678", "button", context=SAMPLE_WAMID,
        button={"payload": "nack:PO-2026-0042", "text": "Rechazar"},
    )  # fmt: skip
    interactive = inbound_message(
        "wamid.INT", "34612345678", "interactive", T0 + 200, context=SAMPLE_WAMID,
        interactive={"type": "button_reply",
                     "button_reply": {"id": "confirm", "title": "Confirm"}},
    )  # fmt: skip
    journal(engine, inbound_body(reject, interactive))
    apply_all(engine)
    acks = {a["inbound_wamid"]: a["action"] for a in rows(engine, "po_acknowledgements")}
    assert acks == {"wamid.REJ": REJECTED, "wamid.INT": CONFIRMED}


def test_a_button_without_context_uses_the_payloads_po_for_a_known_supplier(
    engine: Engine,
) -> None:
    add_supplier(engine, "+34612345678")
    press = inbound_message("wamid.P", "34612345678", "button",
                            button={"payload": "ack:PO-77", "text": "Confirm"})  # fmt: skip
    stranger = inbound_message("wamid.S", "34699999999", "button",
                               button={"payload": "ack:PO-78", "text": "Confirm"})  # fmt: skip
    journal(engine, inbound_body(press), inbound_body(stranger))
    apply_all(engine)
    (ack,) = rows(engine, "po_acknowledgements")
    assert ack["po_number"] == "PO-77" and ack["message_id"] is None
    stored = {r["wamid"]: r["supplier_id"] for r in rows(engine, "inbound_messages")}
    assert stored["wamid.S"] is None  # stored all the same, supplier unknown


def test_media_unsupported_and_unknown_types_are_stored(engine: Engine) -> None:
    sid = add_supplier(engine, "+34655555555", name="Lácteos Ruiz")
    image = inbound_message(
        "wamid.IMG",
        "34655555555",
        "image",
        image={"id": "M1", "mime_type": "image/jpeg", "caption": "albarán"},
    )
    new_kind = inbound_message("wamid.NEWKIND", "34655555555", "hologram", hologram={})
    journal(engine, sample("inbound_unsupported.json"), inbound_body(image, new_kind, name=None))
    apply_all(engine)
    stored = {r["wamid"]: r for r in rows(engine, "inbound_messages")}
    assert set(stored) == {"wamid.INBOUNDUNSUP001", "wamid.IMG", "wamid.NEWKIND"}
    unsupported = stored["wamid.INBOUNDUNSUP001"]
    assert unsupported["message_type"] == "unsupported" and unsupported["error_code"] == 131051
    assert unsupported["error_details"] == "Message type is currently not supported."
    assert unsupported["supplier_id"] == sid
    assert (stored["wamid.IMG"]["media_id"], stored["wamid.IMG"]["media_mime_type"]) == (
        "M1", "image/jpeg",
    )  # fmt: skip
    assert stored["wamid.NEWKIND"]["message_type"] == "hologram"
    assert stored["wamid.NEWKIND"]["profile_name"] is None


def test_a_system_message_does_not_open_the_window(engine: Engine) -> None:
    sid = add_supplier(engine, "+34612345678")
    system = inbound_message("wamid.SYS", "34612345678", "system",
                             system={"body": "User changed number"})  # fmt: skip
    journal(engine, inbound_body(system))
    apply_all(engine)
    assert supplier(engine, sid)["last_inbound_at"] is None
    assert len(rows(engine, "inbound_messages")) == 1


def test_a_reply_goes_to_the_tenant_of_the_message_it_answers(engine: Engine) -> None:
    add_supplier(engine, "+34612345678", tenant="acme")
    other = add_supplier(engine, "+34612345678", tenant="globex")
    mid = add_message(engine, wamid="wamid.G1", tenant="globex", supplier_id=other,
                      po_number="PO-G")  # fmt: skip
    reply = inbound_message("wamid.RG", "34612345678", "text", context="wamid.G1",
                            text={"body": "ok"})  # fmt: skip
    journal(engine, inbound_body(reply))
    apply_all(engine)
    (row,) = rows(engine, "inbound_messages")
    assert (row["tenant_id"], row["supplier_id"], row["context_message_id"]) == (
        "globex", other, mid,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "label", "action"),
    [
        ("ack:PO-1", None, CONFIRMED),
        ("Confirm", None, CONFIRMED),
        (None, "Confirmar", CONFIRMED),
        (None, "Sí, acepto", CONFIRMED),
        ("nack:PO-1", None, REJECTED),
        (None, "Rechazar", REJECTED),
        ("Reject", "Rechazar", REJECTED),
        ("later", "Más tarde", OTHER),
        (None, None, OTHER),
    ],
)
def test_classify_ack(payload: str | None, label: str | None, action: str) -> None:
    assert classify_ack(payload, label) == action


def test_po_from_payload() -> None:
    assert po_from_payload("ack:PO-2026-0042") == "PO-2026-0042"
    assert po_from_payload("ack:") is None
    assert po_from_payload("Confirm") is None
    assert po_from_payload(None) is None
    assert po_from_payload("ack:" + "x" * 100) == "x" * 64
