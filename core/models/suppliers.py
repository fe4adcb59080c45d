"""Suppliers: who receives PO notices, in which language, and whether they opted in.

Consent (WhatsApp's opt-in) is recorded with who, when and how (`core.consent`): a
supplier is *consenting* (`opted_in`, with `consent_source`, `consent_by` and
`opted_in_at`), *opted out* (`opted_out_at` set, with `opt_out_source` and
`opt_out_by`: an admin's untick or a stop-word reply) or has *no recorded consent*
(neither). Every change also leaves a row in `consent_events`, the supplier's history.
"""

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
    # by tenant: the unique (tenant_id, phone_e164) index (migration 0027)
    tenant_id: str = Field(max_length=64)
    name: str = Field(max_length=200)
    phone_e164: str = Field(max_length=20)
    wa_id: str | None = Field(default=None, max_length=20, index=True)  # replies come from here
    language: str = Field(default="es", max_length=15)
    external_ref: str | None = Field(default=None, max_length=64)  # the ERP's supplier id
    opted_in: bool = Field(default=False)  # consent recorded and not withdrawn
    opted_in_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    consent_source: str | None = Field(default=None, max_length=32)  # admin, send_page, csv...
    consent_by: str | None = Field(default=None, max_length=120)
    opted_out_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    opt_out_source: str | None = Field(default=None, max_length=32)  # admin, reply, legacy
    opt_out_by: str | None = Field(default=None, max_length=120)
    last_inbound_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    is_active: bool = Field(default=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
