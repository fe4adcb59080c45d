"""Batches (a CSV upload or an API bulk call) and their input rows, kept across restarts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.models.types import PortableJSON, UTCDateTime, new_id, utcnow


class BatchStatus(StrEnum):
    """A batch's lifecycle; counts per message status are derived, never stored."""

    IMPORTING = "importing"  # its rows are being recorded and queued, chunk by chunk
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"


class SendBatch(SQLModel, table=True):
    """A bulk send: which template, who started it, and whether it is paused."""

    __tablename__ = "send_batches"
    __table_args__ = (Index("ix_send_batches_tenant_created", "tenant_id", "created_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = Field(max_length=64)
    name: str = Field(max_length=255)
    source: str = Field(default="csv", max_length=20)  # csv, api, cli
    template_name: str | None = Field(default=None, max_length=512)
    template_language: str | None = Field(default=None, max_length=15)
    status: str = Field(default=BatchStatus.RUNNING, max_length=20)
    total_rows: int = Field(default=0)
    created_by: str | None = Field(default=None, max_length=120)
    # How a CSV upload was written: {"columns": its header in order, "dialect": an
    # ExportDialect's JSON}, so its results file is written alike. None for API batches
    # and for batches recorded before it was kept.
    upload_format: dict[str, Any] | None = Field(default=None, sa_column=Column(PortableJSON))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class BatchRow(SQLModel, table=True):
    """One input row of a batch: what it said, why it was refused, or which message it became."""

    __tablename__ = "send_batch_rows"
    __table_args__ = (UniqueConstraint("batch_id", "row_number"),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: str = Field(foreign_key="send_batches.id", max_length=36)
    row_number: int  # 1-based data row in the input file (header excluded)
    raw: dict[str, Any] | None = Field(default=None, sa_column=Column(PortableJSON))
    error: str | None = Field(default=None)  # why the row was not enqueued
    message_id: str | None = Field(default=None, foreign_key="whatsapp_messages.id", max_length=36)
