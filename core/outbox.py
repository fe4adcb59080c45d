"""The outbox: a send is a `pending` row first, keyed by an idempotency key.

Every path that sends (dashboard, CLI, PO events, batches, the seed wrapper) calls
`enqueue`; the dispatcher (`core.sender`) claims pending rows and talks to the API. The
same key twice returns the existing message and never creates a second send, even when
two processes enqueue it at the same moment (the unique constraint decides; the loser
reads the winner's row back).

Callers hand in a ready Cloud API message body (`request_payload`, without
`biz_opaque_callback_data`: the dispatcher always sets that to our message id) and the
rendered text the supplier will see. The outbox does not validate templates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.consent import refusal_for
from core.db import by_unique_key, get_engine, session_scope
from core.keys import resend_key
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.suppliers import Supplier
from core.models.types import utcnow
from core.routing import NumberError, engine_of, route_id
from core.settings import get_settings

log = logging.getLogger(__name__)

#: Statuses a person may resend from: the outcome was a failure or is unknown.
RESENDABLE = frozenset(
    {MessageStatus.FAILED, MessageStatus.NEEDS_ATTENTION, MessageStatus.CANCELLED}
)
_MESSAGES = WhatsAppMessage.__table__  # type: ignore[attr-defined]
_KEY_CHUNK = 500  # keys per IN (...) lookup: well under SQLite's variable limit


class OutboxError(ValueError):
    """A message cannot be enqueued, resent or cancelled; the text says why."""


@dataclass(frozen=True)
class OutboundMessage:
    """Everything needed to send one message later, exactly as it was previewed."""

    tenant_id: str
    idempotency_key: str
    recipient_phone: str  # E.164, "+34612345678"
    request_payload: dict[str, Any]  # Cloud API body; `to` optional (added from the phone)
    message_type: str = "template"
    template_name: str | None = None
    template_language: str | None = None
    template_parameters: dict[str, Any] | None = None
    body_text: str | None = None
    recipient_country: str | None = None
    po_number: str | None = None
    po_id: str | None = None
    supplier_id: int | None = None
    notification_id: str | None = None
    batch_id: str | None = None
    batch_row: int | None = None
    created_by: str | None = None
    meta: dict[str, Any] | None = None
    not_before: datetime | None = None  # do not send before this time (tz-aware UTC)
    #: the business number to send from, already checked to be the tenant's
    #: (core.routing); None: the tenant's default, looked up when it is queued
    phone_number_id: str | None = None

    def validate(self) -> None:
        """Refuse obviously broken input before it reaches the database."""
        if not self.tenant_id or len(self.tenant_id) > 64:
            raise OutboxError("tenant_id is required (at most 64 characters)")
        if not self.idempotency_key or len(self.idempotency_key) > 200:
            raise OutboxError("idempotency_key is required (at most 200 characters)")
        if "\x00" in self.tenant_id or "\x00" in self.idempotency_key:
            raise OutboxError("tenant_id and idempotency_key must not contain NUL characters")
        phone = self.recipient_phone
        if not (phone.startswith("+") and phone[1:].isdigit() and 8 <= len(phone) <= 16):
            raise OutboxError(f"recipient_phone must be E.164 like +34612345678, got {phone!r}")
        if not isinstance(self.request_payload, dict) or "type" not in self.request_payload:
            raise OutboxError("request_payload must be a Cloud API message body with a type")
        to = self.request_payload.get("to")
        if to is not None and str(to).lstrip("+") != phone[1:]:
            raise OutboxError(f"request_payload 'to' ({to}) differs from recipient {phone}")
        if "biz_opaque_callback_data" in self.request_payload:
            raise OutboxError("biz_opaque_callback_data is set by the sender, not the caller")
        if self.not_before is not None and self.not_before.tzinfo is None:
            raise OutboxError("not_before must be timezone-aware")
        if self.phone_number_id is not None and not (
            self.phone_number_id.isascii() and self.phone_number_id.isdigit()
        ):
            raise OutboxError("phone_number_id must be digits")

    def to_row(self) -> WhatsAppMessage:
        """The pending outbox row for this message."""
        payload = dict(self.request_payload)
        payload.setdefault("to", self.recipient_phone[1:])
        return WhatsAppMessage(
            tenant_id=self.tenant_id,
            idempotency_key=self.idempotency_key,
            recipient_phone=self.recipient_phone,
            request_payload=payload,
            message_type=self.message_type,
            status=MessageStatus.PENDING,
            template_name=self.template_name,
            template_language=self.template_language,
            template_parameters=self.template_parameters,
            body_text=self.body_text,
            recipient_country=self.recipient_country,
            po_number=self.po_number,
            po_id=self.po_id,
            supplier_id=self.supplier_id,
            notification_id=self.notification_id,
            batch_id=self.batch_id,
            batch_row=self.batch_row,
            created_by=self.created_by,
            meta=self.meta,
            next_attempt_at=self.not_before,
            phone_number_id=self.phone_number_id,
        )


@dataclass(frozen=True)
class EnqueueResult:
    """The message for a key and whether this call created it (False: it already existed)."""

    message: WhatsAppMessage
    created: bool


def _existing(session: Session, tenant_id: str, keys: Iterable[str]) -> dict[str, WhatsAppMessage]:
    found: dict[str, WhatsAppMessage] = {}
    key_list = list(dict.fromkeys(keys))
    for start in range(0, len(key_list), _KEY_CHUNK):
        chunk = key_list[start : start + _KEY_CHUNK]
        rows = (
            session.execute(
                select(WhatsAppMessage).from_statement(
                    by_unique_key(
                        session,
                        list(_MESSAGES.c),
                        _MESSAGES.c.tenant_id == tenant_id,
                        _MESSAGES.c.idempotency_key,
                        chunk,
                    )
                )
            )
            .scalars()
            .all()
        )
        for row in rows:
            found[row.idempotency_key] = row
    return found


class KeyHolder(NamedTuple):
    """The message already holding an idempotency key: what a refused row names."""

    id: str
    created_at: datetime
    status: str

    def refusal(self) -> str:
        """Why a batch row with this key is not queued again (its batch row's error)."""
        return (
            f"already sent as message {self.id} on "
            f"{self.created_at:%Y-%m-%d %H:%M} UTC (status {self.status})"
        )


def key_holders(
    db: Session | Connection, tenant_id: str, keys: Iterable[str]
) -> dict[str, KeyHolder]:
    """The messages of a tenant already holding any of `keys`, by key (dry runs, batches).

    Three columns each, not whole messages: a file sent again has every key taken, and
    100,000 messages with their request bodies, loaded and tracked by the session, took
    over a gigabyte to say "already sent" (measured with the bulk check).
    """
    found: dict[str, KeyHolder] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), _KEY_CHUNK):
        for key, message_id, created_at, status in db.execute(
            by_unique_key(
                db,
                [_MESSAGES.c.idempotency_key, _MESSAGES.c.id, _MESSAGES.c.created_at,
                 _MESSAGES.c.status],
                _MESSAGES.c.tenant_id == tenant_id,
                _MESSAGES.c.idempotency_key,
                unique[start : start + _KEY_CHUNK],
            )
        ):  # fmt: skip
            found[key] = KeyHolder(message_id, created_at, status)
    return found


def _routed(messages: Sequence[OutboundMessage], engine: Engine) -> list[OutboundMessage]:
    """`messages` each naming its sending number: those without one get their tenant's
    default (looked up once per tenant); OutboxError when a tenant has no usable number."""
    defaults: dict[str, str] = {}
    routed: list[OutboundMessage] = []
    for msg in messages:
        if msg.phone_number_id is None:
            if msg.tenant_id not in defaults:
                try:
                    defaults[msg.tenant_id] = route_id(engine, get_settings(), msg.tenant_id)
                except NumberError as exc:
                    raise OutboxError(str(exc)) from None
            msg = replace(msg, phone_number_id=defaults[msg.tenant_id])
        routed.append(msg)
    return routed


def enqueue(msg: OutboundMessage, *, engine: Engine | None = None) -> EnqueueResult:
    """Write a pending message, or return the existing one with the same idempotency key.

    Safe under races: when another process inserts the same key first, the unique
    constraint rejects our insert and we return its row with `created=False`. A message
    naming no sending number goes out from its tenant's default (`core.routing`).
    """
    msg.validate()
    engine = engine or get_engine()
    with session_scope(engine) as session:
        found = _existing(session, msg.tenant_id, [msg.idempotency_key])
        if msg.idempotency_key in found:
            return EnqueueResult(found[msg.idempotency_key], created=False)
        [msg] = _routed([msg], engine)
        row = msg.to_row()
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            found = _existing(session, msg.tenant_id, [msg.idempotency_key])
            if msg.idempotency_key not in found:
                raise
            return EnqueueResult(found[msg.idempotency_key], created=False)
        log.info("enqueued message %s (key %s)", row.id, msg.idempotency_key)
        return EnqueueResult(row, created=True)


def enqueue_many(
    messages: Sequence[OutboundMessage],
    *,
    engine: Engine | None = None,
    session: Session | None = None,
) -> list[EnqueueResult]:
    """Enqueue many messages in one transaction (a batch); results keep the input order.

    A key repeated inside `messages` yields one row; later repeats report `created=False`.
    Pass `session` to join a caller's transaction (batches write their rows in it too).
    Messages naming no sending number go out from their tenant's default.
    """
    for msg in messages:
        msg.validate()
    if session is not None:
        return _enqueue_in(session, _routed(messages, engine_of(session)))
    engine = engine or get_engine()
    with session_scope(engine) as own:
        return _enqueue_in(own, _routed(messages, engine))


def _enqueue_in(session: Session, messages: Sequence[OutboundMessage]) -> list[EnqueueResult]:
    by_tenant: dict[str, list[str]] = {}
    for msg in messages:
        by_tenant.setdefault(msg.tenant_id, []).append(msg.idempotency_key)
    existing: dict[tuple[str, str], WhatsAppMessage] = {}
    for tenant_id, keys in by_tenant.items():
        for key, row in _existing(session, tenant_id, keys).items():
            existing[(tenant_id, key)] = row
    results: list[EnqueueResult] = []
    for msg in messages:
        ident = (msg.tenant_id, msg.idempotency_key)
        if ident in existing:
            results.append(EnqueueResult(existing[ident], created=False))
            continue
        row = msg.to_row()
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # another process inserted the same key just now
            found = _existing(session, msg.tenant_id, [msg.idempotency_key])
            if msg.idempotency_key not in found:
                raise
            existing[ident] = found[msg.idempotency_key]
            results.append(EnqueueResult(existing[ident], created=False))
            continue
        existing[ident] = row
        results.append(EnqueueResult(row, created=True))
    return results


def get_message(
    message_id: str, *, engine: Engine | None = None, tenant_id: str | None = None
) -> WhatsAppMessage | None:
    """One message by id (restricted to `tenant_id` when given)."""
    with session_scope(engine or get_engine()) as session:
        row = session.get(WhatsAppMessage, message_id)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            return None
        return row


def resend(
    message_id: str,
    by: str,
    *,
    engine: Engine | None = None,
    tenant_id: str | None = None,
    session: Session | None = None,
) -> WhatsAppMessage:
    """A person's deliberate resend: a new pending message with a new key, same content.

    Only failed, needs-attention or cancelled messages may be resent: an accepted one
    already reached Meta. A template is refused (OutboxError with the reason) when its
    supplier has opted out, or has no recorded consent and the tenant requires it. The
    new message's meta links the original (`resend_of`) and the original's meta lists
    its resends (`resent_as`).
    """
    if session is not None:
        return _resend_in(session, message_id, by, tenant_id)
    with session_scope(engine or get_engine()) as own:
        return _resend_in(own, message_id, by, tenant_id)


def _resend_in(
    session: Session, message_id: str, by: str, tenant_id: str | None
) -> WhatsAppMessage:
    original = session.get(WhatsAppMessage, message_id)
    if original is None or (tenant_id is not None and original.tenant_id != tenant_id):
        raise OutboxError(f"no message {message_id}")
    if original.status not in RESENDABLE:
        raise OutboxError(
            f"message {message_id} is {original.status}: only failed, needs-attention or "
            "cancelled messages can be resent"
        )
    if original.message_type == "template":  # business-initiated: consent is checked again
        refusal = refusal_for(session, original.tenant_id, _supplier_of(session, original))
        if refusal is not None:
            raise OutboxError(refusal.reason)
    previous = session.exec(
        select(func.count())
        .select_from(WhatsAppMessage)
        .where(
            col(WhatsAppMessage.tenant_id) == original.tenant_id,
            col(WhatsAppMessage.idempotency_key).startswith(f"resend:{message_id}:"),
        )
    ).one()
    attempt = int(previous) + 1
    payload = dict(original.request_payload or {})
    payload.pop("biz_opaque_callback_data", None)
    meta = dict(original.meta or {})
    meta.pop("resent_as", None)
    meta.update({"resend_of": original.id, "resent_by": by, "resend_attempt": attempt})
    copy = WhatsAppMessage(
        tenant_id=original.tenant_id,
        idempotency_key=resend_key(original.id, attempt),
        recipient_phone=original.recipient_phone,
        request_payload=payload,
        message_type=original.message_type,
        status=MessageStatus.PENDING,
        template_name=original.template_name,
        template_language=original.template_language,
        template_parameters=original.template_parameters,
        body_text=original.body_text,
        recipient_country=original.recipient_country,
        po_number=original.po_number,
        po_id=original.po_id,
        supplier_id=original.supplier_id,
        notification_id=original.notification_id,
        batch_id=original.batch_id,
        batch_row=original.batch_row,
        created_by=by,
        meta=meta,
        phone_number_id=_resend_number(session, original),
    )
    session.add(copy)
    original_meta = dict(original.meta or {})
    original_meta["resent_as"] = [*original_meta.get("resent_as", []), copy.id]
    original.meta = original_meta
    original.updated_at = utcnow()
    session.add(original)
    session.flush()
    log.info("message %s resent as %s by %s", original.id, copy.id, by)
    return copy


def _resend_number(session: Session, original: WhatsAppMessage) -> str:
    """A resend goes out from the original's number while it is still the tenant's,
    else from the tenant's default now; OutboxError if the tenant has no usable number."""
    engine, settings = engine_of(session), get_settings()
    if original.phone_number_id is not None:
        try:
            return route_id(engine, settings, original.tenant_id, original.phone_number_id)
        except NumberError:
            pass  # that number is no longer the tenant's: its default now
    try:
        return route_id(engine, settings, original.tenant_id)
    except NumberError as exc:
        raise OutboxError(str(exc)) from None


def _supplier_of(session: Session, message: WhatsAppMessage) -> Supplier | None:
    """The message's supplier: by id, else the tenant's supplier at its number."""
    if message.supplier_id is not None:
        return session.get(Supplier, message.supplier_id)
    return session.exec(
        select(Supplier).where(
            col(Supplier.tenant_id) == message.tenant_id,
            col(Supplier.phone_e164) == message.recipient_phone,
        )
    ).first()


def cancel(message_id: str, *, engine: Engine | None = None, tenant_id: str | None = None) -> bool:
    """Withdraw a message that is still pending; False when it was already claimed or done."""
    conditions = [
        col(WhatsAppMessage.id) == message_id,
        col(WhatsAppMessage.status) == MessageStatus.PENDING,
    ]
    if tenant_id is not None:
        conditions.append(col(WhatsAppMessage.tenant_id) == tenant_id)
    with session_scope(engine or get_engine()) as session:
        result = session.execute(
            update(WhatsAppMessage)
            .where(*conditions)
            .values(status=MessageStatus.CANCELLED, updated_at=utcnow())
        )
        return bool(getattr(result, "rowcount", 0))
