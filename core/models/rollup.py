"""Exact pre-aggregated counts of messages, kept by database triggers (migration 0009).

The cost chart, the PO acknowledgement tiles and the per-supplier table read whole
buckets of a range from these tables and only the partial edges from the messages, so
a range of months costs a few thousand rows instead of every message. No code writes
them: the triggers of `0009_analytics_rollup` add each message's counts to its cell in
the same transaction as the message's insert, update or delete (cancelled messages
count nowhere, as in every chart).

A dimension that is NULL on the message is stored as '' (0 for a supplier) with its bit
set in `null_bits`, so the keys are NOT NULL on both databases and a real '' stays apart.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Date, SmallInteger
from sqlmodel import Field, SQLModel

from core.models.types import UTCDateTime

#: Bits of `AnalyticsHourly.null_bits`.
HOURLY_NULL_TEMPLATE, HOURLY_NULL_PRICING_TYPE = 1, 2
HOURLY_NULL_CATEGORY, HOURLY_NULL_MARKET = 4, 8
#: Bits of `SupplierWeekly.null_bits`.
WEEKLY_NULL_TEMPLATE, WEEKLY_NULL_SUPPLIER = 1, 2


def _count() -> int:
    return Field(default=0, sa_column=Column(BigInteger(), server_default="0", nullable=False))


class AnalyticsHourly(SQLModel, table=True):
    """Per tenant, UTC hour of creation, template and Meta's pricing: delivered messages
    (for cost) and PO notices with their acknowledgements."""

    __tablename__ = "analytics_hourly"
    __table_args__ = {"sqlite_with_rowid": False}

    tenant_id: str = Field(primary_key=True, max_length=64)
    hour: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True, nullable=False))
    template_name: str = Field(primary_key=True, max_length=512)
    pricing_type: str = Field(primary_key=True, max_length=40)
    pricing_category: str = Field(primary_key=True, max_length=40)
    recipient_country: str = Field(primary_key=True, max_length=4)
    null_bits: int = Field(sa_column=Column(SmallInteger(), primary_key=True, nullable=False))
    delivered: int = _count()
    notices: int = _count()
    notices_delivered: int = _count()
    acknowledged: int = _count()
    confirmed: int = _count()
    rejected: int = _count()


class SupplierWeekly(SQLModel, table=True):
    """Per tenant, supplier, UTC week of creation (from Monday) and template: the
    per-supplier table's counts."""

    __tablename__ = "analytics_supplier_weekly"
    __table_args__ = {"sqlite_with_rowid": False}

    tenant_id: str = Field(primary_key=True, max_length=64)
    supplier_id: int = Field(primary_key=True)
    week: date = Field(sa_column=Column(Date(), primary_key=True, nullable=False))
    template_name: str = Field(primary_key=True, max_length=512)
    null_bits: int = Field(sa_column=Column(SmallInteger(), primary_key=True, nullable=False))
    messages: int = _count()
    sent: int = _count()
    delivered: int = _count()
    read_count: int = _count()
    failed: int = _count()
    replied: int = _count()


#: `AnalyticsHourlyStages.kind`: what `value` is.
STAGES_KIND_FLAGS, STAGES_KIND_DELIVER, STAGES_KIND_READ = 0, 1, 2
#: Bit of `AnalyticsHourlyStages.null_bits`.
STAGES_NULL_TEMPLATE = 1


class AnalyticsHourlyStages(SQLModel, table=True):
    """Per tenant, kind, UTC hour of creation and template: messages by stage bits (kind
    0, value = `stage_flags`), by time-to-deliver bin (1) and by time-to-read bin (2),
    for the funnel, the daily rates and the latency charts (migration 0026)."""

    __tablename__ = "analytics_hourly_stages"
    __table_args__ = {"sqlite_with_rowid": False}

    tenant_id: str = Field(primary_key=True, max_length=64)
    kind: int = Field(sa_column=Column(SmallInteger(), primary_key=True, nullable=False))
    hour: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True, nullable=False))
    template_name: str = Field(primary_key=True, max_length=512)
    null_bits: int = Field(sa_column=Column(SmallInteger(), primary_key=True, nullable=False))
    value: int = Field(sa_column=Column(SmallInteger(), primary_key=True, nullable=False))
    messages: int = _count()
