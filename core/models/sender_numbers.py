"""The WhatsApp business numbers messages are sent from: one or more per tenant.

Each row is one Cloud API phone number (`phone_number_id`, unique across tenants: a
number belongs to one business), its WhatsApp Business Account (templates live there),
its access token encrypted at rest (`token_ciphertext`, see `core.numbers.secrets`), its
throughput cap, and what Meta last reported about it. A removed number keeps its row
(`removed_at`): messages sent from it still name it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, text
from sqlmodel import Field, SQLModel

from core.models.types import UTCDateTime, utcnow

#: Meta's phone number ids and WABA ids are digit strings, at most this long.
MAX_ID_LENGTH = 32


class SenderNumberRow(SQLModel, table=True):
    """One sender number of one tenant (see the module docstring)."""

    __tablename__ = "sender_numbers"
    __table_args__ = (
        # At most one default number per tenant among the numbers not removed.
        Index(
            "ix_sender_numbers_one_default",
            "tenant_id",
            unique=True,
            sqlite_where=text("is_default AND removed_at IS NULL"),
            postgresql_where=text("is_default AND removed_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=64, index=True)
    phone_number_id: str = Field(max_length=MAX_ID_LENGTH, unique=True)
    waba_id: str | None = Field(default=None, max_length=MAX_ID_LENGTH, index=True)
    display_number: str | None = Field(default=None, max_length=32)
    display_name: str | None = Field(default=None, max_length=120)
    #: Fernet token of the access token (None: the sandbox's public token, sandbox only).
    token_ciphertext: str | None = Field(default=None, sa_column=Column(Text()))
    max_mps: int = Field(default=80)
    is_default: bool = Field(default=False)
    quality_rating: str | None = Field(default=None, max_length=20)  # GREEN, YELLOW, RED...
    messaging_tier: str | None = Field(default=None, max_length=40)  # TIER_250, ...
    name_status: str | None = Field(default=None, max_length=40)  # APPROVED, PENDING...
    status: str | None = Field(default=None, max_length=30)  # CONNECTED, FLAGGED...
    throughput_level: str | None = Field(default=None, max_length=20)  # STANDARD, HIGH
    last_checked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    removed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
