"""Refused webhook deliveries, counted per reason so health can show them to a person.

One row per reason (`bad_signature`, `malformed_signature`): a flood of refusals updates
these rows about once a second per webhook process, never one row per request. A run of
refusals counts from `first_at` to `last_at`; health compares `last_at` with the last
valid delivery, so a valid one arriving later overtakes them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

import core.models.base  # noqa: F401  (the naming convention applies to this table too)
from core.models.types import UTCDateTime


class WebhookRejection(SQLModel, table=True):
    """How many signed-looking webhook deliveries were refused for one reason, and when."""

    __tablename__ = "webhook_rejections"

    reason: str = Field(primary_key=True, max_length=40)
    count: int = Field(sa_column=Column(BigInteger(), nullable=False))
    first_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
