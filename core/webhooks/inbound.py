"""Supplier messages into the database: the message, the 24-hour window, PO acknowledgements.

A reply is tied to the supplier it came from (by `wa_id`, or by the E.164 number `+` +
`from`) and to the message it answers (`context.id`, our wamid). A text or quick-reply
without a known `context.id` is tied to the supplier's most recent notice for the PO its
payload (`ack:PO-1`) or text names, looked up in one indexed query per batch (tenant and
PO number) and only for such replies; when the supplier is not known for certain (the
number belongs to suppliers of several tenants), or no PO or several match, the reply
stays unlinked (`context_message_id` NULL), never tied to another tenant's message. Any
message a supplier
sends opens WhatsApp's 24-hour customer-service window, so `Supplier.last_inbound_at` moves
forward (never back). A quick-reply button press on a PO notice records the supplier's
acknowledgement of that PO. A text that is, as a whole, a stop word (STOP, BAJA,
BAIXA, ...: `core.consent.stopwords`) withdraws consent: every supplier record at that
number (in every tenant: the person asked this WhatsApp number to stop) is opted out
with source `reply`, the time of the message and its words as evidence. Everything
runs inside the caller's write transaction.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select, update

from core.alerts import events as alert_events
from core.consent.record import withdraw_rows
from core.consent.stopwords import is_stop_reply, stop_words
from core.followup.kind import reminded_notice
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
#: Inbound types that may name the PO they answer (a text, a quick reply, a list reply).
_MAY_NAME_A_PO = frozenset({"text", "button", "interactive"})
#: A word of a reply that could be a PO reference: letters and digits, joined by - / .
_REFERENCE = re.compile(r"[^\W_]+(?:[./-][^\W_]+)*")
#: How much of a reply is searched for PO references, and how many are looked up.
_SCAN_CHARS = 1000
_MAX_REFERENCES = 12


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
    opt_outs: int = 0  # suppliers opted out by a stop-word reply
    held: int = 0  # replies to a number we do not know: held in their receipts


@dataclass(frozen=True, slots=True)
class _Answered:
    id: str
    tenant_id: str
    supplier_id: int | None
    po_number: str | None
    po_id: str | None
    notice_id: str | None = None  # a reminder's notice: a button on it answers the notice


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


def po_references(payload: str | None, text: str | None) -> list[str]:
    """The PO numbers a reply may name, most explicit first, for the lookup by PO.

    A payload's `ack:PO-1` is the reference, alone. Otherwise every word of the payload
    and text (the first 1,000 characters) with a digit in it, and a short prefix joined
    to the number after it (`PO 42` is also `PO-42` and `PO42`), as written and upper
    case; at most a dozen.
    """
    explicit = po_from_payload(payload)
    if explicit is not None:
        return [explicit]
    found: list[str] = []
    for source in (payload, text):
        if not source:
            continue
        words = _REFERENCE.findall(source[:_SCAN_CHARS])
        for i, word in enumerate(words):
            if any(c.isdigit() for c in word):
                found.append(word)
                head = words[i - 1] if i > 0 else ""
                if word[0].isdigit() and head.isalpha() and len(head) <= 4:
                    found += [f"{head}-{word}", f"{head}{word}", f"{head} {word}"]
    unique: list[str] = []
    for candidate in found:
        for form in (candidate, candidate.upper()):
            if 2 <= len(form) <= 64 and form not in unique:
                unique.append(form)
    return unique[:_MAX_REFERENCES]


def _plain(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in folded if not unicodedata.combining(c) and (c.isalnum() or c == " "))


def apply_inbound(
    conn: Connection,
    items: list[InboundItem],
    now: datetime,
    default_tenant: str,
    report: InboundReport,
    book: Mapping[str, str | None] | None = None,
) -> None:
    """Store new inbound messages, open suppliers' windows and record PO acknowledgements.

    With the `book` of known numbers (phone number id -> tenant), a reply to a tenant's
    number belongs to that tenant: only its suppliers and its messages are matched (a
    context naming another tenant's message stays unlinked)."""
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
    by_po = _answered_by_po(conn, fresh, answered, suppliers)
    rows: list[dict[str, Any]] = []
    acks: list[dict[str, Any]] = []
    windows: dict[int, datetime] = {}
    learned: dict[int, str] = {}
    stops: list[tuple[InboundMessageEvent, datetime, list[_Supplier]]] = []
    words = stop_words()
    for item in fresh:
        message = item.message
        context = answered.get(message.context_wamid or "") or by_po.get(message.wamid)
        candidates = everyone = suppliers.get(message.from_wa_id, [])
        owner = book.get(message.phone_number_id or "") if book is not None else None
        if owner is not None:  # the number's tenant: never another tenant's message
            if context is not None and context.tenant_id != owner:
                context = None
            candidates = [c for c in candidates if c.tenant_id == owner]
        supplier = _pick_supplier(candidates, context)
        tenant = (
            context.tenant_id
            if context
            else supplier.tenant_id
            if supplier
            else owner or default_tenant
        )
        at = min(message.at, now)
        if message.type not in _NOT_FROM_A_PERSON:
            for candidate in candidates:
                windows[candidate.id] = max(at, windows.get(candidate.id, at))
                if candidate.wa_id is None:
                    learned[candidate.id] = message.from_wa_id
        po_number = context.po_number if context else None
        rows.append(_inbound_row(item, tenant, supplier, context, po_number))
        if everyone and message.type == "text" and is_stop_reply(message.text, words):
            stops.append((message, at, everyone))
        if supplier is not None:
            report.matched_suppliers += 1
        ack = _acknowledgement(item, tenant, supplier, context, now)
        if ack is not None:
            acks.append(ack)
    conn.execute(insert_ignoring(conn, INBOUND, ["wamid"]), rows)
    report.stored += len(rows)
    _open_windows(conn, windows, learned, now)
    for message, at, who in stops:
        report.opt_outs += withdraw_rows(
            conn,
            [(candidate.id, candidate.tenant_id) for candidate in who],
            source="reply",
            by=f"+{message.from_wa_id}"[:20],
            at=at,
            evidence=message.text,
        )
    if acks:
        conn.execute(insert_ignoring(conn, ACKS, ["inbound_wamid"]), acks)
        report.acknowledgements += len(acks)
        alert_events.po_rejections(conn, acks, now)  # the buyer hears of a rejection


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
                m.id, m.tenant_id, m.supplier_id, m.po_number, m.po_id, m.whatsapp_message_id,
                m.template_name, m.metadata.label("meta"),
            ).where(m.whatsapp_message_id.in_(batch))
        )  # fmt: skip
        for row in rows:
            found[row.whatsapp_message_id] = _Answered(
                row.id, row.tenant_id, row.supplier_id, row.po_number, row.po_id,
                reminded_notice(row.template_name, row.meta),
            )  # fmt: skip
    return found


def _answered_by_po(
    conn: Connection,
    fresh: list[InboundItem],
    answered: dict[str, _Answered],
    suppliers: dict[str, list[_Supplier]],
) -> dict[str, _Answered]:
    """The notice each reply without a known `context.id` answers, found by the PO it names.

    Only for a text or quick reply from one known supplier (a number shared by suppliers
    of several tenants is ambiguous: left unlinked); the notice must be that supplier's,
    in its tenant, for exactly one of the PO numbers named (the payload's first). The
    most recent such notice wins (a resend over its original). One query per batch.
    """
    wanted: dict[str, tuple[_Supplier, list[str]]] = {}
    for item in fresh:
        message = item.message
        if message.type not in _MAY_NAME_A_PO or (message.context_wamid or "") in answered:
            continue
        candidates = suppliers.get(message.from_wa_id, [])
        if len(candidates) != 1:
            continue
        references = po_references(message.payload, message.text)
        if references:
            wanted[message.wamid] = (candidates[0], references)
    if not wanted:
        return {}
    m = MESSAGES.c
    tenants = sorted({supplier.tenant_id for supplier, _ in wanted.values()})
    numbers = sorted({ref for _, refs in wanted.values() for ref in refs})
    ids = sorted({supplier.id for supplier, _ in wanted.values()})
    newest: dict[tuple[str, int, str], tuple[Any, _Answered]] = {}
    for batch in chunks(numbers, 400):
        rows = conn.execute(
            select(m.id, m.tenant_id, m.supplier_id, m.po_number, m.po_id, m.created_at).where(
                m.tenant_id.in_(tenants), m.po_number.in_(batch), m.supplier_id.in_(ids)
            )
        )
        for row in rows:
            key = (row.tenant_id, row.supplier_id, row.po_number)
            seen = newest.get(key)
            if seen is None or (row.created_at, row.id) > seen[0]:
                found = _Answered(row.id, row.tenant_id, row.supplier_id, row.po_number, row.po_id)
                newest[key] = ((row.created_at, row.id), found)
    linked: dict[str, _Answered] = {}
    for wamid, (supplier, references) in wanted.items():
        matches = {
            newest[key][1].id: newest[key][1]
            for ref in references
            if (key := (supplier.tenant_id, supplier.id, ref)) in newest
        }
        if len(matches) == 1:  # none or several POs: left unlinked
            linked[wamid] = next(iter(matches.values()))
    return linked


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
        # a button on a reminder answers its notice: the PO's confirmation counts there
        # (analytics leave reminders out of notice counts, core.followup.kind)
        "message_id": (context.notice_id or context.id) if context else None,
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
