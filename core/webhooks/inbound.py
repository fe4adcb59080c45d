"""Supplier messages into the database: the message, the 24-hour window, PO acknowledgements.

A reply is tied to the supplier it came from (by `wa_id`, or by the E.164 number `+` +
`from`) and to the message it answers (`context.id`, our wamid). Any message a supplier
sends opens WhatsApp's 24-hour customer-service window, so `Supplier.last_inbound_at` moves
forward (never back). A quick-reply button press on a PO notice records the supplier's
acknowledgement of that PO. Everything runs inside the caller's write transaction.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select, update

from core.models.types import new_id
from core.webhooks.parse import InboundMessageEvent
from core.webhooks.sql import ACKS, INBOUND, MESSAGES, SUPPLIERS, chunks, insert_ignoring

CONFIRMED = "confirmed"
REJECTED = "rejected"
OTHER = "other"

#: First words of a button payload or label that mean "yes, we take this PO".
CONFIRM_WORDS = frozenset(
    [
        "ack",
        "accept",
        "accepted",
        "aceptar",
        "acepto",
        "aceptado",
        "approve",
        "approved",
        "confirm",
        "confirmed",
        "confirmar",
        "confirmado",
        "confirmo",
        "confirmer",
        "accepter",
        "oui",
        "ok",
        "okay",
        "yes",
        "si",
        "sim",
        "bestatigen",
        "ja",
        "conferma",
        "confermare",
        "accetta",
        "accetto",
    ]
)
#: First words that mean "no, we cannot serve this PO".
REJECT_WORDS = frozenset(
    [
        "nack",
        "reject",
        "rejected",
        "rechazar",
        "rechazo",
        "rechazado",
        "decline",
        "declined",
        "refuse",
        "refused",
        "deny",
        "cancel",
        "no",
        "non",
        "nein",
        "nao",
        "recusar",
        "refuser",
        "ablehnen",
        "rifiuta",
        "rifiutare",
    ]
)
#: Inbound types that are not a person writing (they do not open the window).
_NOT_FROM_A_PERSON = frozenset({"system"})


@dataclass(frozen=True, slots=True)
class InboundItem:
    """An inbound message from a receipt."""

    message: InboundMessageEvent
    receipt_id: int | None
    received_at: datetime


@dataclass
class InboundReport:
    """What applying inbound messages did."""

    stored: int = 0
    duplicates: int = 0
    matched_suppliers: int = 0
    acknowledgements: int = 0


@dataclass(frozen=True, slots=True)
class _Answered:
    id: str
    tenant_id: str
    supplier_id: int | None
    po_number: str | None
    po_id: str | None


@dataclass(frozen=True, slots=True)
class _Supplier:
    id: int
    tenant_id: str
    wa_id: str | None
    phone_e164: str


def classify_ack(payload: str | None, label: str | None) -> str:
    """`confirmed`, `rejected` or `other` from a button's payload (`ack:PO-1`) or label."""
    for candidate in (payload, label):
        if not candidate:
            continue
        head = candidate.split(":", 1)[0]
        for word in (_plain(head), _plain(head).split(" ")[0]):
            if word in CONFIRM_WORDS:
                return CONFIRMED
            if word in REJECT_WORDS:
                return REJECTED
    return OTHER


def po_from_payload(payload: str | None) -> str | None:
    """The PO reference a payload like `ack:PO-2026-0042` carries, if any."""
    if not payload or ":" not in payload:
        return None
    reference = payload.split(":", 1)[1].strip()
    return reference[:64] or None


def _plain(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in folded if not unicodedata.combining(c) and (c.isalnum() or c == " "))


def apply_inbound(
    conn: Connection,
    items: list[InboundItem],
    now: datetime,
    default_tenant: str,
    report: InboundReport,
) -> None:
    """Store new inbound messages, open suppliers' windows and record PO acknowledgements."""
    unique: dict[str, InboundItem] = {}
    for item in items:
        unique.setdefault(item.message.wamid, item)
    known = _known_wamids(conn, list(unique))
    report.duplicates += len(items) - len(unique) + len(known)
    fresh = [item for wamid, item in unique.items() if wamid not in known]
    if not fresh:
        return
    answered = _answered(conn, {i.message.context_wamid for i in fresh if i.message.context_wamid})
    suppliers = _suppliers(conn, {i.message.from_wa_id for i in fresh})
    rows: list[dict[str, Any]] = []
    acks: list[dict[str, Any]] = []
    windows: dict[int, datetime] = {}
    learned: dict[int, str] = {}
    for item in fresh:
        message = item.message
        context = answered.get(message.context_wamid or "")
        candidates = suppliers.get(message.from_wa_id, [])
        supplier = _pick_supplier(candidates, context)
        tenant = (
            context.tenant_id if context else supplier.tenant_id if supplier else default_tenant
        )
        at = min(message.at, now)
        if message.type not in _NOT_FROM_A_PERSON:
            for candidate in candidates:
                windows[candidate.id] = max(at, windows.get(candidate.id, at))
                if candidate.wa_id is None:
                    learned[candidate.id] = message.from_wa_id
        po_number = context.po_number if context else None
        rows.append(_inbound_row(item, tenant, supplier, context, po_number))
        if supplier is not None:
            report.matched_suppliers += 1
        ack = _acknowledgement(item, tenant, supplier, context, now)
        if ack is not None:
            acks.append(ack)
    conn.execute(insert_ignoring(conn, INBOUND, ["wamid"]), rows)
    report.stored += len(rows)
    _open_windows(conn, windows, learned, now)
    if acks:
        conn.execute(insert_ignoring(conn, ACKS, ["inbound_wamid"]), acks)
        report.acknowledgements += len(acks)


def _known_wamids(conn: Connection, wamids: list[str]) -> set[str]:
    known: set[str] = set()
    for batch in chunks(wamids):
        known.update(
            conn.execute(select(INBOUND.c.wamid).where(INBOUND.c.wamid.in_(batch))).scalars()
        )
    return known


def _answered(conn: Connection, wamids: set[str]) -> dict[str, _Answered]:
    found: dict[str, _Answered] = {}
    m = MESSAGES.c
    for batch in chunks(sorted(wamids)):
        rows = conn.execute(
            select(
                m.id, m.tenant_id, m.supplier_id, m.po_number, m.po_id, m.whatsapp_message_id
            ).where(m.whatsapp_message_id.in_(batch))
        )
        for row in rows:
            found[row.whatsapp_message_id] = _Answered(
                row.id, row.tenant_id, row.supplier_id, row.po_number, row.po_id
            )
    return found


def _suppliers(conn: Connection, senders: set[str]) -> dict[str, list[_Supplier]]:
    found: dict[str, list[_Supplier]] = {}
    s = SUPPLIERS.c
    for batch in chunks(sorted(senders), 250):
        phones = [f"+{sender}" for sender in batch]
        rows = conn.execute(
            select(s.id, s.tenant_id, s.wa_id, s.phone_e164)
            .where(or_(s.wa_id.in_(batch), s.phone_e164.in_(phones)))
            .order_by(s.id)
        )
        for row in rows:
            supplier = _Supplier(row.id, row.tenant_id, row.wa_id, row.phone_e164)
            for sender in {row.wa_id, row.phone_e164.lstrip("+")}:
                if sender in senders:
                    found.setdefault(sender, [])
                    if supplier not in found[sender]:
                        found[sender].append(supplier)
    return found


def _pick_supplier(candidates: list[_Supplier], context: _Answered | None) -> _Supplier | None:
    """The supplier a message is from: the one we wrote to, else the only one with that number."""
    if context is not None:
        for candidate in candidates:
            if candidate.id == context.supplier_id:
                return candidate
        same_tenant = [c for c in candidates if c.tenant_id == context.tenant_id]
        if len(same_tenant) == 1:
            return same_tenant[0]
    return candidates[0] if len(candidates) == 1 else None


def _inbound_row(
    item: InboundItem,
    tenant: str,
    supplier: _Supplier | None,
    context: _Answered | None,
    po_number: str | None,
) -> dict[str, Any]:
    message = item.message
    error = message.errors[0] if message.errors else None
    return {
        "id": new_id(),
        "tenant_id": tenant,
        "wamid": message.wamid,
        "from_wa_id": message.from_wa_id,
        "profile_name": message.profile_name,
        "supplier_id": supplier.id if supplier else None,
        "message_type": message.type,
        "text": message.text,
        "payload": message.payload,
        "media_id": message.media_id,
        "media_mime_type": message.media_mime_type,
        "context_wamid": message.context_wamid,
        "context_message_id": context.id if context else None,
        "po_number": po_number,
        "error_code": error.code if error else None,
        "error_details": (error.details or error.message or error.title) if error else None,
        "at": message.at,
        "received_at": item.received_at,
        "receipt_id": item.receipt_id,
        "raw": message.raw,
    }


def _acknowledgement(
    item: InboundItem,
    tenant: str,
    supplier: _Supplier | None,
    context: _Answered | None,
    now: datetime,
) -> dict[str, Any] | None:
    message = item.message
    if not message.is_button_reply:
        return None
    po_number = context.po_number if context and context.po_number else None
    if po_number is None and supplier is not None:
        po_number = po_from_payload(message.payload)
    if po_number is None:
        return None
    return {
        "id": new_id(),
        "tenant_id": tenant,
        "po_number": po_number,
        "po_id": context.po_id if context else None,
        "message_id": context.id if context else None,
        "supplier_id": supplier.id if supplier else (context.supplier_id if context else None),
        "inbound_wamid": message.wamid,
        "action": classify_ack(message.payload, message.text),
        "payload": message.payload,
        "button_text": message.text,
        "at": message.at,
        "created_at": now,
    }


def _open_windows(
    conn: Connection, windows: dict[int, datetime], learned: dict[int, str], now: datetime
) -> None:
    s = SUPPLIERS.c
    if windows:
        conn.execute(
            update(SUPPLIERS)
            .where(
                s.id == bindparam("b_id"),
                or_(
                    s.last_inbound_at.is_(None),
                    s.last_inbound_at < bindparam("b_at", type_=s.last_inbound_at.type),
                ),
            )
            .values(
                last_inbound_at=bindparam("b_at", type_=s.last_inbound_at.type),
                updated_at=bindparam("b_now", type_=s.updated_at.type),
            ),
            [{"b_id": sid, "b_at": at, "b_now": now} for sid, at in windows.items()],
        )
    if learned:
        conn.execute(
            update(SUPPLIERS)
            .where(s.id == bindparam("b_id"), s.wa_id.is_(None))
            .values(wa_id=bindparam("b_wa")),
            [{"b_id": sid, "b_wa": wa_id} for sid, wa_id in learned.items()],
        )
