"""Suppliers: who receives PO notices, in which language, and whether they opted in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.models.types import UTCDateTime, utcnow


class Supplier(SQLModel, table=True):
    """A supplier of one tenant, reachable on WhatsApp at an E.164 number."""

    __tablename__ = "suppliers"
    __table_args__ = (UniqueConstraint("tenant_id", "phone_e164"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=64, index=True)
    name: str = Field(max_length=200)
    phone_e164: str = Field(max_length=20)
    wa_id: str | None = Field(default=None, max_length=20, index=True)  # replies come from here
    language: str = Field(default="es", max_length=15)
    external_ref: str | None = Field(default=None, max_length=64)  # the ERP's supplier id
    opted_in: bool = Field(default=True)
    opted_in_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_inbound_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    is_active: bool = Field(default=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
