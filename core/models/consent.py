"""Consent history and per-tenant settings.

`consent_events`: every grant or withdrawal of a supplier's WhatsApp consent, with its
source (admin, send_page, csv, erp, api, cli, import, reply, demo, legacy), who (a
username, an ERP event, a phone number) and when; a stop-word reply keeps its words as
`evidence`. The supplier row holds the current state; this table is the proof.

`tenant_settings`: one row per tenant and key, a small string value (see
`core.consent.tenant` for the keys used and their defaults). Absent rows mean defaults.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from core.models.types import UTCDateTime, utcnow


class ConsentEvent(SQLModel, table=True):
    """One change of a supplier's consent: granted or withdrawn, by whom, how and when."""

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_supplier", "supplier_id", "at"),
        Index("ix_consent_events_tenant_at", "tenant_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=64)
    supplier_id: int = Field(foreign_key="suppliers.id")
    action: str = Field(max_length=16)  # granted | withdrawn
    source: str = Field(max_length=32)
    by: str | None = Field(default=None, max_length=120)
    evidence: str | None = Field(default=None, max_length=1000)  # a reply's words, a note
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class TenantSetting(SQLModel, table=True):
    """A tenant's setting: `value` is text; the reader (`core.consent.tenant`) parses it."""

    __tablename__ = "tenant_settings"

    tenant_id: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=500)
    updated_by: str | None = Field(default=None, max_length=120)
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
