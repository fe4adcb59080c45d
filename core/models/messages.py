"""The outbox: one row per WhatsApp message, from `pending` to its final status."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Column, Index, SmallInteger, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from core.models.types import PortableJSON, UTCDateTime, new_id, utcnow


class MessageStatus(StrEnum):
    """Where a message is in its life. See `core.status` for the allowed moves."""

    PENDING = "pending"  # in the outbox, waiting for the dispatcher
    SENDING = "sending"  # claimed by a dispatcher; the API call may be in flight
    ACCEPTED = "accepted"  # Meta accepted it (has a wamid); no status webhook yet
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    NEEDS_ATTENTION = "needs_attention"  # outcome unknown after a crash: a person decides
    CANCELLED = "cancelled"  # withdrawn before it was sent


class WhatsAppMessage(SQLModel, table=True):
    """A message to a supplier: the outbox row, its API outcome and its delivery statuses."""

    __tablename__ = "whatsapp_messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_whatsapp_messages_tenant_created", "tenant_id", "created_at"),
        Index("ix_whatsapp_messages_tenant_status", "tenant_id", "status"),
        Index("ix_whatsapp_messages_dispatch", "status", "next_attempt_at"),
        Index("ix_whatsapp_messages_batch", "batch_id", "batch_row"),
        Index("ix_whatsapp_messages_tenant_po", "tenant_id", "po_number"),
        # (tenant_id, supplier_id, ...) lives in core.models.analytics (SUPPLIER_INDEX)
        Index("ix_whatsapp_messages_recipient", "recipient_phone"),
        # each sending number's dispatcher claims its own pending messages, oldest first
        Index("ix_whatsapp_messages_number_dispatch", "phone_number_id", "status", "created_at"),
        # a PO's thread to one number: the awaiting-answer list's "replied" and "newer
        # notice" checks read it alone (core.followup.query, migration 0023)
        Index(
            "ix_whatsapp_messages_po_thread",
            *("tenant_id", "po_number", "recipient_phone", "created_at", "id", "replied_at"),
            sqlite_where=text("po_number IS NOT NULL"),
            postgresql_where=text("po_number IS NOT NULL"),
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = Field(max_length=64)
    notification_id: str | None = Field(default=None, max_length=64)
    whatsapp_message_id: str | None = Field(default=None, unique=True, max_length=128)
    idempotency_key: str = Field(max_length=200)
    recipient_phone: str = Field(max_length=20)  # E.164 as dialled
    wa_id: str | None = Field(default=None, max_length=20)  # as Meta knows the user
    message_type: str = Field(default="template", max_length=20)
    status: str = Field(default=MessageStatus.PENDING, max_length=20)
    template_name: str | None = Field(default=None, max_length=512)
    template_language: str | None = Field(default=None, max_length=15)
    template_parameters: dict[str, Any] | None = Field(default=None, sa_column=Column(PortableJSON))
    body_text: str | None = Field(default=None)  # the rendered text the supplier sees
    request_payload: dict[str, Any] | None = Field(
        default=None, sa_column=Column(PortableJSON)
    )  # the Cloud API message body, exactly as previewed; the sender adds `to` and callback data
    recipient_country: str | None = Field(default=None, max_length=4)  # calling code, "34"
    po_number: str | None = Field(default=None, max_length=64)
    po_id: str | None = Field(default=None, max_length=64)
    supplier_id: int | None = Field(default=None, foreign_key="suppliers.id")
    batch_id: str | None = Field(default=None, foreign_key="send_batches.id", max_length=36)
    batch_row: int | None = Field(default=None)
    #: the business number it goes out from (core.routing; its dispatcher claims it)
    phone_number_id: str | None = Field(default=None, max_length=64)
    attempt_count: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # Set for a pacing slice's rows just before their requests go out (one UPDATE per
    # slice): after a crash, a `sending` row without it was never requested.
    request_started_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime())
    )
    accepted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    read_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    failed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    error_code: int | None = Field(default=None)
    error_title: str | None = Field(default=None, max_length=255)
    error_message: str | None = Field(default=None)
    error_class: str | None = Field(default=None, max_length=20)  # retry/pause/template/permanent
    pricing_category: str | None = Field(default=None, max_length=40)
    pricing_type: str | None = Field(default=None, max_length=40)
    pricing_model: str | None = Field(default=None, max_length=10)
    billable: bool | None = Field(default=None)
    # Kept by database triggers from inbound_messages / po_acknowledgements (migration
    # 0005_analytics) so analytics count replies from the covering index alone.
    replied_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    acknowledged_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    ack_action: str | None = Field(default=None, max_length=20)  # latest PO button answer
    # Whole seconds from sent (else accepted) to delivered / read, and their bin of
    # core.stats.LATENCY_EDGES, kept by database triggers (migration
    # 0008_analytics_latency) for the latency charts; never set by code.
    deliver_seconds: int | None = Field(default=None, sa_column=Column(BigInteger()))
    read_seconds: int | None = Field(default=None, sa_column=Column(BigInteger()))
    deliver_bin: int | None = Field(default=None, sa_column=Column(SmallInteger()))
    read_bin: int | None = Field(default=None, sa_column=Column(SmallInteger()))
    # The funnel stages reached, as bits (core.stats.StageFlag), kept by the same
    # triggers; 0 is a new pending message, so creating one needs no rewrite.
    stage_flags: int = Field(
        default=0, sa_column=Column(SmallInteger(), server_default="0", nullable=False)
    )
    conversation_id: str | None = Field(default=None, max_length=128)
    conversation_origin: str | None = Field(default=None, max_length=40)
    provider_response: dict[str, Any] | None = Field(default=None, sa_column=Column(PortableJSON))
    meta: dict[str, Any] | None = Field(default=None, sa_column=Column("metadata", PortableJSON))
    created_by: str | None = Field(default=None, max_length=120)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
