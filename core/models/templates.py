"""Message templates approved by Meta, as synced from the WhatsApp Business Account."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.models.types import PortableJSON, UTCDateTime, utcnow


class WhatsAppTemplate(SQLModel, table=True):
    """One template in one language; `components` is Meta's definition, kept verbatim."""

    __tablename__ = "whatsapp_templates"
    __table_args__ = (UniqueConstraint("tenant_id", "template_name", "language"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=64, index=True)
    template_name: str = Field(max_length=512)
    template_key: str = Field(max_length=540)  # "name:language"
    meta_template_id: str | None = Field(default=None, max_length=64)
    #: The WhatsApp Business Account it was synced from (None: before numbers were data,
    #: the environment's account); a number sends only its own account's templates.
    waba_id: str | None = Field(default=None, max_length=32)
    category: str = Field(default="UTILITY", max_length=40)
    language: str = Field(max_length=15)
    status: str = Field(default="APPROVED", max_length=30)
    parameter_format: str = Field(default="POSITIONAL", max_length=12)  # or NAMED
    header_format: str | None = Field(default=None, max_length=12)  # TEXT/IMAGE/DOCUMENT/...
    header_text: str | None = Field(default=None)
    body_text: str = Field(default="")
    footer_text: str | None = Field(default=None)
    buttons: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(PortableJSON))
    components: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(PortableJSON))
    parameter_names: list[str] | None = Field(default=None, sa_column=Column(PortableJSON))
    parameter_count: int = Field(default=0)
    sent_count: int = Field(default=0)
    is_active: bool = Field(default=True)
    held_reason: str | None = Field(default=None)  # set by 132015/132016: sending stopped
    quality_score: str | None = Field(default=None, max_length=20)
    rejected_reason: str | None = Field(default=None, max_length=120)
    synced_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
