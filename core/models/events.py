"""What Meta's webhooks told us: raw receipts, status timelines, replies and acknowledgements.

`webhook_receipts` is the journal: every signed body is committed there before the webhook
app answers 200 (on SQLite first to the webhook inbox file, from which the applier moves
it here), and an applier folds it into the other tables just after. The receipt is the
source of truth; every other table here can be rebuilt from it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, Text, text
from sqlmodel import Field, SQLModel

import core.models.base  # noqa: F401  (the naming convention applies to these tables too)
from core.models.types import PortableJSON, UTCDateTime, new_id, utcnow

#: A 64-bit key that is still SQLite's auto-incrementing rowid.
BigIntKey = BigInteger().with_variant(Integer(), "sqlite")


class StatusEventState:
    """Where a status event stands against the messages table."""

    APPLIED = "applied"  # folded into its message
    PENDING = "pending"  # no message with that wamid (yet): held, retried by the sweep
    UNMATCHED = "unmatched"  # held past the grace period: shown in health
    CONFLICT = "conflict"  # its callback data names a message that has another wamid
    UNKNOWN_NUMBER = "unknown_num"  # names a business number we do not know: held
    OTHER_NUMBER = "other_number"  # its message went out from another number: not applied

    HELD = (PENDING, UNMATCHED, CONFLICT)


class WebhookReceipt(SQLModel, table=True):
    """One signed webhook body, byte for byte, committed before the 200 went out."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (
        Index(
            "ix_webhook_receipts_unapplied",
            "id",
            sqlite_where=text("applied_at IS NULL"),
            postgresql_where=text("applied_at IS NULL"),
        ),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigIntKey, primary_key=True, autoincrement=True)
    )
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    body_sha256: str = Field(max_length=64, unique=True)  # Meta's retries of a body dedupe here
    body: str = Field(sa_column=Column(Text(), nullable=False))
    event_count: int = Field(default=0)  # statuses + messages + other changes in the body
    applied_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    apply_attempts: int = Field(default=0)
    apply_error: str | None = Field(default=None, sa_column=Column(Text()))


class WebhookInboxProgress(SQLModel, table=True):
    """How far the applier has taken receipts from one webhook inbox file (SQLite only).

    On SQLite the webhook app commits bodies to an inbox file of its own, so its 200s
    never wait behind an applier batch; the applier moves them into `webhook_receipts`
    and advances `last_id` in the same transaction, so each is taken exactly once.
    """

    __tablename__ = "webhook_inbox_progress"

    inbox_id: str = Field(primary_key=True, max_length=36)  # the inbox file's identity
    last_id: int = Field(sa_column=Column(BigInteger(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class MessageStatusEvent(SQLModel, table=True):
    """One status event of one message: the message's timeline (duplicates stored once).

    The event as Meta sent it, new fields included, stays in its receipt (`receipt_id`).
    """

    __tablename__ = "message_status_events"
    __table_args__ = (
        Index("ix_message_status_events_message", "message_id", "at"),
        Index("ix_message_status_events_wamid", "wamid"),
        Index(
            "ix_message_status_events_held",
            "state",
            "received_at",
            sqlite_where=text("state <> 'applied'"),
            postgresql_where=text("state <> 'applied'"),
        ),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigIntKey, primary_key=True, autoincrement=True)
    )
    event_key: str = Field(max_length=40, unique=True)  # digest of wamid, status, time, error
    tenant_id: str | None = Field(default=None, max_length=64)
    message_id: str | None = Field(default=None, foreign_key="whatsapp_messages.id", max_length=36)
    wamid: str = Field(max_length=128)
    status: str = Field(max_length=20)  # Meta's word, kept even when unknown to us
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))  # Meta's timestamp
    recipient_id: str | None = Field(default=None, max_length=32)
    callback_data: str | None = Field(default=None, max_length=512)
    error_code: int | None = Field(default=None)
    error_title: str | None = Field(default=None, max_length=255)
    error_details: str | None = Field(default=None, sa_column=Column(Text()))
    pricing_category: str | None = Field(default=None, max_length=40)
    pricing_type: str | None = Field(default=None, max_length=40)
    pricing_model: str | None = Field(default=None, max_length=10)
    billable: bool | None = Field(default=None)
    conversation_id: str | None = Field(default=None, max_length=128)
    conversation_origin: str | None = Field(default=None, max_length=40)
    conversation_expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    state: str = Field(default=StatusEventState.APPLIED, max_length=12)
    receipt_id: int | None = Field(default=None, sa_column=Column(BigIntKey))
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    applied_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class InboundMessage(SQLModel, table=True):
    """A message a supplier sent us: text, a button press, media, or a type we cannot read."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index("ix_inbound_messages_tenant_at", "tenant_id", "at"),
        Index("ix_inbound_messages_supplier_at", "supplier_id", "at"),
        Index("ix_inbound_messages_context", "context_message_id"),
        Index("ix_inbound_messages_from", "from_wa_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = Field(max_length=64)
    wamid: str = Field(max_length=128, unique=True)
    from_wa_id: str = Field(max_length=32)
    profile_name: str | None = Field(default=None, max_length=200)
    supplier_id: int | None = Field(default=None, foreign_key="suppliers.id")
    message_type: str = Field(max_length=30)
    text: str | None = Field(default=None, sa_column=Column(Text()))  # body, caption or label
    payload: str | None = Field(default=None, max_length=512)  # button payload / reply id
    media_id: str | None = Field(default=None, max_length=128)
    media_mime_type: str | None = Field(default=None, max_length=100)
    context_wamid: str | None = Field(default=None, max_length=128)  # the message it answers
    context_message_id: str | None = Field(
        default=None, foreign_key="whatsapp_messages.id", max_length=36
    )
    po_number: str | None = Field(default=None, max_length=64)
    error_code: int | None = Field(default=None)
    error_details: str | None = Field(default=None, sa_column=Column(Text()))
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))  # Meta's timestamp
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    receipt_id: int | None = Field(default=None, sa_column=Column(BigIntKey))
    raw: dict[str, Any] | None = Field(default=None, sa_column=Column(PortableJSON))


class PoAcknowledgement(SQLModel, table=True):
    """A supplier's answer to a PO notice, from a quick-reply button press."""

    __tablename__ = "po_acknowledgements"
    __table_args__ = (Index("ix_po_acknowledgements_tenant_po", "tenant_id", "po_number", "at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = Field(max_length=64)
    po_number: str = Field(max_length=64)
    po_id: str | None = Field(default=None, max_length=64)
    message_id: str | None = Field(default=None, foreign_key="whatsapp_messages.id", max_length=36)
    supplier_id: int | None = Field(default=None, foreign_key="suppliers.id")
    inbound_wamid: str = Field(max_length=128, unique=True)
    action: str = Field(max_length=20)  # confirmed, rejected, other
    payload: str | None = Field(default=None, max_length=512)
    button_text: str | None = Field(default=None, max_length=200)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
