"""Sender control: whether sending is paused (and why), and shared rate-limit state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from core.models.types import UTCDateTime, utcnow


class SenderControl(SQLModel, table=True):
    """One row per business phone number: a pause that only a person lifts."""

    __tablename__ = "sender_controls"

    phone_number_id: str = Field(primary_key=True, max_length=64)
    paused: bool = Field(default=False)
    pause_reason: str | None = Field(default=None)
    pause_code: int | None = Field(default=None)
    paused_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    resumed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    resumed_by: str | None = Field(default=None, max_length=120)
    slow_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class SenderBudgetMember(SQLModel, table=True):
    """A live sender worker's share of its phone number's throughput budget.

    Workers split WHATSAPP_MAX_MPS between them through these rows (`core.sender.budget`):
    `share` is the number of sends per one-second window this worker enforces now. After
    lowering it, its window still holds starts made under `previous_share` until
    `settled_at`, so nobody may take that room before then.
    """

    __tablename__ = "sender_budget_members"

    worker_id: str = Field(primary_key=True, max_length=128)
    phone_number_id: str = Field(max_length=64, index=True)
    share: int = Field(default=0)
    previous_share: int = Field(default=0)
    settled_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    heartbeat_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    joined_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
