"""ERP API keys: each one belongs to one tenant; only a hash of the key is stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from core.models.types import UTCDateTime, utcnow


class ApiKey(SQLModel, table=True):
    """A key an ERP sends to `POST /api/v1/po-events`, good for its tenant's events only.

    `key_hash` is the keyed SHA-256 of the whole key (see `core.api_keys.secret`): the key
    itself is shown once when it is made and never stored. `prefix` is its first characters,
    kept so a person can tell keys apart in `wanotify api-keys list` and revoke one.
    """

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    prefix: str = Field(max_length=16, unique=True)
    key_hash: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=80)
    tenant_id: str = Field(max_length=64, index=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
