"""Demo data for sandbox mode: suppliers, four weeks of PO notices, replies and demo users.

`wanotify run` calls `seed_demo` in sandbox mode (after the template sync) so a new
user's charts, message list and health page are not empty. Everything it writes is
marked: messages have the idempotency key prefix `demo:` and `meta.demo = true`,
suppliers the external reference prefix `DEMO-`, users `is_demo` (refused by
`core.users.login` outside sandbox mode). Seeding is idempotent: a second run adds
nothing (keys are fixed, suppliers and users are looked up first).

Messages go through the real preparation path (`core.notify`), so their stored Cloud API
bodies, previews and idempotency rules are the product's own; only their outcome
(statuses, errors, pricing, replies) is written directly, as webhooks would have.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, func
from sqlalchemy import select as sql_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.consent import grant, withdraw
from core.db import session_scope
from core.models.events import InboundMessage, MessageStatusEvent, PoAcknowledgement
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.suppliers import Supplier
from core.models.templates import WhatsAppTemplate
from core.models.types import utcnow
from core.notify import NoticeRejected, PoNotice, prepare_po_notice, prepare_template_message
from core.phones import wa_digits
from core.pricing import ensure_default_rate_card
from core.sender.recovery import NO_ANSWER_MESSAGE
from core.templates.registry import upsert_templates
from core.users import UserError, add_user, get_user

log = logging.getLogger(__name__)

#: Every demo message's idempotency key starts with this (and its meta says demo: true).
DEMO_KEY_PREFIX = "demo:"
#: Every demo supplier's external reference starts with this.
DEMO_SUPPLIER_PREFIX = "DEMO-"
DEMO_PASSWORD = "demo-password"  # noqa: S105  (documented sandbox-only demo password)
DEMO_USERS: tuple[tuple[str, str, str], ...] = (
    ("buyer", "buyer", "Demo buyer"),
    ("manager", "manager", "Demo manager"),
    ("admin", "admin", "Demo admin"),
)
DEMO_DAYS = 28
_SEED = 20260101
_KEY_END = DEMO_KEY_PREFIX[:-1] + chr(ord(DEMO_KEY_PREFIX[-1]) + 1)  # "demo;"

#: (name, phone, language, city)
DEMO_SUPPLIERS: tuple[tuple[str, str, str, str], ...] = (
    ("Harinas Martín S.L.", "+34612345601", "es", "Valladolid"),
    ("Aceites del Sur S.A.", "+34612345602", "es", "Jaén"),
    ("Embalajes Levante S.L.", "+34612345603", "es", "Valencia"),
    ("Lácteos Cantábricos S.A.", "+34612345604", "es", "Santander"),
    ("Frutas Hermanos Roca", "+34612345605", "es", "Lleida"),
    ("Transportes Ebro S.L.", "+34612345606", "es", "Zaragoza"),
    ("Conservas Rías Baixas", "+34612345607", "es", "Vigo"),
    ("Papelera Castellana S.A.", "+34612345608", "es", "Burgos"),
    ("Quesos La Mancha S.L.", "+34612345609", "es", "Ciudad Real"),
    ("Bright Packaging Ltd", "+447911123456", "en", "Leeds"),
    ("Northern Mills Ltd", "+447911123457", "en", "Manchester"),
    ("Azeites do Douro Lda", "+351912345603", "en", "Porto"),
)

#: Failures with the codes Meta really reports for template sends, most common first.
_FAILURES: tuple[tuple[int, str, str], ...] = (
    (131026, "Message undeliverable", "Unable to deliver message: recipient not on WhatsApp"),
    (131026, "Message undeliverable", "Unable to deliver message: recipient not on WhatsApp"),
    (131026, "Message undeliverable", "Unable to deliver message: recipient not on WhatsApp"),
    (131053, "Media upload error", "Unable to upload the media used in the message"),
    (132000, "Number of parameters does not match the expected number of params", ""),
    (131000, "Something went wrong", "Retries exhausted after an internal error"),
    (130472, "User's number is part of an experiment", ""),
)
_REPLIES_ES = ("Recibido, gracias", "Lo preparamos para el jueves", "¿Podéis adelantar el PDF?")
_REPLIES_EN = ("Received, thanks", "We will ship on Thursday", "Can you resend the PDF?")


@dataclass(frozen=True)
class DemoReport:
    """What one `seed_demo` call added (all zeros on a second run)."""

    templates: int = 0
    suppliers: int = 0
    messages: int = 0
    replies: int = 0
    acknowledgements: int = 0
    users: int = 0
    rates: int = 0

    @property
    def added_anything(self) -> bool:
        """True when this call wrote something new."""
        return any(
            (self.templates, self.suppliers, self.messages, self.replies, self.users, self.rates)
        )


def is_demo_message(message: WhatsAppMessage) -> bool:
    """True when a message row was written by `seed_demo`."""
    return message.idempotency_key.startswith(DEMO_KEY_PREFIX)


def is_demo_supplier(supplier: Supplier) -> bool:
    """True when a supplier row was written by `seed_demo`."""
    return (supplier.external_ref or "").startswith(DEMO_SUPPLIER_PREFIX)


def demo_message_count(engine: Engine, tenant_ids: Sequence[str]) -> int:
    """How many demo messages these tenants hold (0 on a real installation).

    Reads the (tenant, idempotency key) unique index by range, so it stays cheap with a
    million messages: the dashboard asks it to decide whether to show the demo banner.
    """
    if not tenant_ids:
        return 0
    m = WhatsAppMessage.__table__.c  # type: ignore[attr-defined]
    query = sql_select(func.count()).where(
        m.tenant_id.in_(list(tenant_ids)),
        m.idempotency_key >= DEMO_KEY_PREFIX,
        m.idempotency_key < _KEY_END,
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def seed_demo(engine: Engine, tenant_id: str, *, now: datetime | None = None) -> DemoReport:
    """Write the demo data set for `tenant_id` unless it is already there.

    Call it only in sandbox mode (the launcher does). Templates come from the sandbox's
    catalogue when the tenant has none yet (normally the launcher's sync put them
    there), then suppliers, messages over the last four weeks through every stage
    (including failures with Meta's error codes, replies and PO acknowledgements), the
    example rate card and the demo users.
    """
    now = (now or utcnow()).astimezone(UTC)
    templates = _ensure_templates(engine, tenant_id)
    rates = ensure_default_rate_card(engine, tenant_id)
    suppliers = _ensure_suppliers(engine, tenant_id, now)
    messages = replies = acks = 0
    if demo_message_count(engine, [tenant_id]) == 0:
        try:
            messages, replies, acks = _seed_messages(engine, tenant_id, now)
            _record_opt_out(engine, tenant_id, now)
        except IntegrityError:  # another process seeded at the same moment
            log.info("demo messages already seeded by another process")
    users = _ensure_users(engine, tenant_id)
    report = DemoReport(
        templates=templates,
        suppliers=suppliers,
        messages=messages,
        replies=replies,
        acknowledgements=acks,
        users=users,
        rates=rates,
    )
    if report.added_anything:
        log.warning("demo data seeded for tenant %s: %s", tenant_id, report)
    return report


# --- parts ---------------------------------------------------------------------------


def _ensure_templates(engine: Engine, tenant_id: str) -> int:
    with Session(engine) as session:
        have = session.exec(
            select(WhatsAppTemplate.id).where(col(WhatsAppTemplate.tenant_id) == tenant_id)
        ).first()
    if have is not None:
        return 0
    from core.sandbox.catalog import default_templates

    fields = ("name", "language", "status", "category", "components", "parameter_format")
    report = upsert_templates(
        engine, tenant_id, [template.as_graph(fields) for template in default_templates()]
    )
    return report.added


def _ensure_suppliers(engine: Engine, tenant_id: str, now: datetime) -> int:
    added = 0
    with session_scope(engine) as session:
        existing = {
            s.phone_e164
            for s in session.exec(select(Supplier).where(col(Supplier.tenant_id) == tenant_id))
        }
        for i, (name, phone, language, _city) in enumerate(DEMO_SUPPLIERS, start=1):
            if phone in existing:
                continue
            supplier = Supplier(
                tenant_id=tenant_id,
                name=name,
                phone_e164=phone,
                wa_id=wa_digits(phone),
                language=language,
                external_ref=f"{DEMO_SUPPLIER_PREFIX}{i:02d}",
                created_at=now - timedelta(days=60),
                updated_at=now - timedelta(days=60),
            )
            session.add(supplier)
            grant(session, supplier, source="demo", by="demo", at=now - timedelta(days=60))
            added += 1
    return added


def _record_opt_out(engine: Engine, tenant_id: str, now: datetime) -> None:
    """The eighth demo supplier replied BAJA after its notices: opted out (shown on the
    supplier's page and in analytics; the send page refuses it)."""
    with session_scope(engine) as session:
        supplier = session.exec(
            select(Supplier).where(
                col(Supplier.tenant_id) == tenant_id,
                col(Supplier.external_ref) == f"{DEMO_SUPPLIER_PREFIX}08",
            )
        ).first()
        if supplier is not None:
            withdraw(
                session, supplier, source="reply", by=supplier.phone_e164, at=now,
                evidence="BAJA",
            )  # fmt: skip


def _ensure_users(engine: Engine, tenant_id: str) -> int:
    added = 0
    for username, role, display in DEMO_USERS:
        if get_user(engine, username) is not None:
            continue
        try:
            add_user(
                engine, username, DEMO_PASSWORD, role, tenant_id, display_name=display,
                is_demo=True,
            )  # fmt: skip
            added += 1
        except UserError:  # created concurrently
            continue
    return added


def _seed_messages(engine: Engine, tenant_id: str, now: datetime) -> tuple[int, int, int]:
    rng = random.Random(_SEED)
    start = (now - timedelta(days=DEMO_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    count = replies = acks = 0
    with session_scope(engine) as session:
        suppliers = list(
            session.exec(
                select(Supplier).where(
                    col(Supplier.tenant_id) == tenant_id,
                    col(Supplier.external_ref).startswith(DEMO_SUPPLIER_PREFIX),
                )
            )
        )
        suppliers.sort(key=lambda s: s.external_ref or "")
        if not suppliers:
            return 0, 0, 0
        weights = [max(1, 14 - i) for i in range(len(suppliers))]
        for day in range(DEMO_DAYS + 1):
            day_start = start + timedelta(days=day)
            weekend = day_start.weekday() >= 5
            per_day = rng.randint(1, 4) if weekend else rng.randint(12, 22)
            for _ in range(per_day):
                created = day_start + timedelta(
                    hours=rng.uniform(7.5, 18.5), seconds=rng.uniform(0, 59)
                )
                if created >= now - timedelta(minutes=10):
                    continue
                supplier = rng.choices(suppliers, weights=weights)[0]
                row = _prepared_row(session, tenant_id, supplier, count, created, rng)
                if row is None:
                    continue
                outcome = _apply_outcome(session, row, supplier, created, now, rng)
                replies += outcome[0]
                acks += outcome[1]
                count += 1
    return count, replies, acks


def _prepared_row(
    session: Session,
    tenant_id: str,
    supplier: Supplier,
    index: int,
    created: datetime,
    rng: random.Random,
) -> WhatsAppMessage | None:
    """A demo message built by the product's own preparation path."""
    po_number = f"PO-{created:%Y}-{4100 + index:05d}"
    try:
        if rng.random() < 0.82:
            amount = Decimal(rng.randint(18_000, 2_450_000)) / 100
            prepared = prepare_po_notice(
                session,
                PoNotice(
                    tenant_id=tenant_id,
                    supplier_name=supplier.name,
                    phone=supplier.phone_e164,
                    po_number=po_number,
                    amount=amount,
                    currency="EUR" if supplier.language == "es" else rng.choice(("EUR", "GBP")),
                    language=supplier.language,
                    created_by="demo",
                    source="demo",
                ),
            )
        else:
            due = created + timedelta(days=rng.randint(2, 6))
            place = "Almacén Central" if supplier.language == "es" else "Central Warehouse"
            prepared = prepare_template_message(
                session,
                tenant_id=tenant_id,
                phone=supplier.phone_e164,
                template_name="delivery_reminder",
                language=supplier.language,
                params={"1": po_number, "2": f"{due:%d/%m/%Y}", "3": place},
                supplier=supplier,
                po_number=po_number,
                created_by="demo",
                source="demo",
            )
    except NoticeRejected as exc:  # a template missing from a real sync: skip that kind
        log.info("demo message skipped: %s", exc)
        return None
    outbound = replace(
        prepared.outbound,
        idempotency_key=f"{DEMO_KEY_PREFIX}{index:05d}",
        meta={"source": "demo", "demo": True},
    )
    outbound.validate()
    row = outbound.to_row()
    row.created_at = created
    row.updated_at = created
    return row


def _apply_outcome(
    session: Session,
    row: WhatsAppMessage,
    supplier: Supplier,
    created: datetime,
    now: datetime,
    rng: random.Random,
) -> tuple[int, int]:
    """Give the message a realistic fate and its timeline; returns (replies, acks) added."""
    fate = _fate(rng.random(), supplier)
    wamid = "wamid.DEMO" + hashlib.sha1(row.idempotency_key.encode()).hexdigest()[:24]  # noqa: S324
    row.attempt_count = 1
    row.claimed_by = "demo"
    if fate == "attention":
        row.status = MessageStatus.NEEDS_ATTENTION
        row.error_message = NO_ANSWER_MESSAGE  # what the dispatcher stores (translated shown)
        session.add(row)
        return 0, 0
    accepted = created + timedelta(seconds=rng.uniform(0.3, 2.5))
    row.whatsapp_message_id = wamid
    row.wa_id = wa_digits(row.recipient_phone)
    row.accepted_at = accepted
    row.provider_response = {"messages": [{"id": wamid, "message_status": "accepted"}]}
    events: list[tuple[str, datetime]] = []
    if fate == "failed":
        code, title, details = rng.choice(_FAILURES)
        failed = accepted + timedelta(seconds=rng.uniform(1, 40))
        row.status = MessageStatus.FAILED
        row.failed_at = failed
        row.error_code, row.error_title = code, title
        row.error_message = details or title
        row.error_class = "permanent"
        events.append(("failed", failed))
    else:
        sent = accepted + timedelta(seconds=rng.uniform(0.5, 4))
        row.sent_at = sent
        row.status = MessageStatus.SENT
        events.append(("sent", sent))
        if fate in ("delivered", "read"):
            delivered = sent + timedelta(seconds=_delivery_seconds(rng))
            if delivered < now:
                row.delivered_at = delivered
                row.status = MessageStatus.DELIVERED
                row.pricing_model = "PMP"
                row.pricing_category = "utility"
                row.pricing_type = (
                    "free_customer_service" if rng.random() < 0.12 else "regular"
                )
                row.billable = row.pricing_type == "regular"
                events.append(("delivered", delivered))
        if fate == "read" and row.delivered_at is not None:
            read = row.delivered_at + timedelta(seconds=_read_seconds(rng))
            if read < now:
                row.read_at = read
                row.status = MessageStatus.READ
                events.append(("read", read))
    row.updated_at = max(at for _, at in events)
    session.add(row)
    session.flush()
    for status, at in events:
        session.add(_event(row, wamid, status, at))
    if row.read_at is None:
        return 0, 0
    return _answers(session, row, supplier, rng, now)


def _answers(
    session: Session, row: WhatsAppMessage, supplier: Supplier, rng: random.Random, now: datetime
) -> tuple[int, int]:
    """A button press on some PO notices, a free-text reply on some messages."""
    assert row.read_at is not None and row.whatsapp_message_id is not None
    replies = acks = 0
    spanish = supplier.language == "es"
    if row.template_name == "po_notification" and rng.random() < 0.62:
        at = row.read_at + timedelta(seconds=rng.uniform(20, 5400))
        if at < now:
            confirmed = rng.random() < 0.88
            label = ("Confirmar pedido" if spanish else "Confirm order") if confirmed else (
                "Rechazar" if spanish else "Reject"
            )
            inbound_wamid = "wamid.DEMOIN" + hashlib.sha1(  # noqa: S324
                f"ack:{row.id}".encode()
            ).hexdigest()[:24]
            payload = f"ack:{row.po_number}" if confirmed else f"reject:{row.po_number}"
            session.add(
                _inbound(row, supplier, inbound_wamid, "button", label, payload, at)
            )
            session.add(
                PoAcknowledgement(
                    tenant_id=row.tenant_id,
                    po_number=row.po_number or "",
                    message_id=row.id,
                    supplier_id=supplier.id,
                    inbound_wamid=inbound_wamid,
                    action="confirmed" if confirmed else "rejected",
                    payload=payload,
                    button_text=label,
                    at=at,
                    created_at=at,
                )
            )
            acks += 1
            replies += 1
    if rng.random() < 0.15:
        at = row.read_at + timedelta(seconds=rng.uniform(60, 7200))
        if at < now:
            text = rng.choice(_REPLIES_ES if spanish else _REPLIES_EN)
            inbound_wamid = "wamid.DEMOTX" + hashlib.sha1(  # noqa: S324
                f"text:{row.id}".encode()
            ).hexdigest()[:24]
            session.add(_inbound(row, supplier, inbound_wamid, "text", text, None, at))
            supplier.last_inbound_at = max(supplier.last_inbound_at or at, at)
            session.add(supplier)
            replies += 1
    return replies, acks


def _inbound(
    row: WhatsAppMessage,
    supplier: Supplier,
    wamid: str,
    kind: str,
    text: str,
    payload: str | None,
    at: datetime,
) -> InboundMessage:
    return InboundMessage(
        tenant_id=row.tenant_id,
        wamid=wamid,
        from_wa_id=wa_digits(supplier.phone_e164),
        profile_name=supplier.name,
        supplier_id=supplier.id,
        message_type=kind,
        text=text,
        payload=payload,
        context_wamid=row.whatsapp_message_id,
        context_message_id=row.id,
        po_number=row.po_number if payload else None,
        at=at,
        received_at=at + timedelta(seconds=1),
        raw={"demo": True},
    )


def _event(row: WhatsAppMessage, wamid: str, status: str, at: datetime) -> MessageStatusEvent:
    key = hashlib.sha1(f"demo:{wamid}:{status}".encode()).hexdigest()  # noqa: S324
    failed = status == "failed"
    priced = status in ("delivered", "read") and row.pricing_category is not None
    return MessageStatusEvent(
        event_key=key[:40],
        tenant_id=row.tenant_id,
        message_id=row.id,
        wamid=wamid,
        status=status,
        at=at,
        recipient_id=row.wa_id,
        callback_data=row.id,
        error_code=row.error_code if failed else None,
        error_title=row.error_title if failed else None,
        error_details=row.error_message if failed else None,
        pricing_category=row.pricing_category if priced else None,
        pricing_type=row.pricing_type if priced else None,
        pricing_model=row.pricing_model if priced else None,
        received_at=at + timedelta(seconds=1),
        applied_at=at + timedelta(seconds=1),
    )


def _fate(roll: float, supplier: Supplier) -> str:
    """How far a message gets; the Portuguese demo number often fails (not on WhatsApp)."""
    unreachable = supplier.external_ref == f"{DEMO_SUPPLIER_PREFIX}12"
    if roll < 0.07 or (unreachable and roll < 0.35):
        return "failed"
    if roll < 0.085:
        return "attention"
    if roll < 0.13:
        return "sent"
    return "delivered" if roll < 0.36 else "read"


def _delivery_seconds(rng: random.Random) -> float:
    """Mostly seconds, sometimes minutes, rarely hours (phone off)."""
    roll = rng.random()
    if roll < 0.78:
        return rng.uniform(1, 25)
    if roll < 0.95:
        return rng.uniform(30, 900)
    return rng.uniform(3600, 6 * 3600)


def _read_seconds(rng: random.Random) -> float:
    """Minutes to hours: suppliers read during working hours."""
    roll = rng.random()
    if roll < 0.35:
        return rng.uniform(20, 600)
    if roll < 0.8:
        return rng.uniform(600, 3 * 3600)
    return rng.uniform(3 * 3600, 20 * 3600)


