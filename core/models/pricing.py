"""The rate card: what one delivered message costs, by market, category and date.

Meta charges per delivered template message by pricing category and the recipient's
country calling code, and changes its rates on the first day of a quarter; so rates are
data with effective dates that an admin updates, never constants in code.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from core.models.types import UTCDateTime, utcnow

#: A market or category that matches every value (the fallback row).
ANY = "*"


class RateCardEntry(SQLModel, table=True):
    """One rate: a message to `market` in `category` with `pricing_type`, in a date range.

    `rate_micros` is the price of one message in millionths of `currency` (exact integer
    arithmetic in SQL; read it as `Decimal(rate_micros) / 1_000_000`). `effective_to` is
    exclusive; None means "until further notice".
    """

    __tablename__ = "rate_cards"
    __table_args__ = (Index("ix_rate_cards_lookup", "tenant_id", "category", "market"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=64)
    market: str = Field(default=ANY, max_length=4)  # calling code "34", or "*"
    category: str = Field(max_length=40)  # utility, marketing, authentication, ... or "*"
    pricing_type: str = Field(default="regular", max_length=40)
    rate_micros: int = Field(ge=0)
    currency: str = Field(max_length=3)
    effective_from: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    effective_to: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    is_example: bool = Field(default=False)  # seeded illustration, not the tenant's real rates
    note: str | None = Field(default=None, max_length=255)
    created_by: str | None = Field(default=None, max_length=120)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
