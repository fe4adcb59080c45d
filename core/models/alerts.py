"""Alerts to people: what happened (events), what each person wants, and the outbox.

- `alert_events`: one row per thing worth telling (a supplier rejected a PO, sending
  paused, ...), written by the code where it happened, in that code's own transaction.
  Who it is for is an *audience* (users by name, or a role), resolved later.
- `alert_outbox`: one row per event, recipient and channel (an e-mail address, or a
  chat webhook named by tenant), written when the delivery loop fans an event out. A row
  stays `pending` until a mail or chat post carrying it succeeds; a failure keeps it with
  its attempt count, last error and next attempt time. Rows of one recipient and kind
  sent together (a digest) share a `delivery_id`.
- `alert_preferences`: a user's choice per kind of alert and channel; no row means the
  defaults (`core.alerts.preferences`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, PrimaryKeyConstraint, Text
from sqlmodel import Field, SQLModel

import core.models.base  # noqa: F401  (the naming convention applies to these tables too)
from core.models.types import PortableJSON, UTCDateTime, utcnow


class AlertEvent(SQLModel, table=True):
    """Something a person should be told, with the facts to tell it (outside text as data)."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_fanned_out_created", "fanned_out", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40)
    #: The tenant it concerns; None for the whole installation (e.g. webhook signatures).
    tenant_id: str | None = Field(default=None, max_length=64)
    #: Who it is for: {"usernames": [...]} and/or {"role": "admin"} (core.alerts.events).
    audience: dict[str, Any] = Field(sa_column=Column(PortableJSON, nullable=False))
    #: What happened: plain values (PO number, supplier's reply, Meta's reason, counts).
    facts: dict[str, Any] = Field(sa_column=Column(PortableJSON, nullable=False))
    fanned_out: bool = Field(default=False)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class AlertOutboxRow(SQLModel, table=True):
    """One event to tell one recipient on one channel, until a delivery carrying it works."""

    __tablename__ = "alert_outbox"
    __table_args__ = (
        Index("ix_alert_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_alert_outbox_recipient_kind_sent", "channel", "recipient", "kind", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="alert_events.id", index=True)
    kind: str = Field(max_length=40)
    tenant_id: str | None = Field(default=None, max_length=64)
    channel: str = Field(max_length=10)  # email, chat
    #: An e-mail address, or `tenant:<id>` / `global` for a chat webhook (never its URL).
    recipient: str = Field(max_length=254)
    user_id: int | None = Field(default=None)
    #: The recipient's language for the text (`users.locale`), None: English.
    locale: str | None = Field(default=None, max_length=16)
    status: str = Field(default="pending", max_length=12)  # pending, sent
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_error: str | None = Field(default=None, sa_column=Column(Text()))
    claim_token: str | None = Field(default=None, max_length=36)
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    delivery_id: str | None = Field(default=None, max_length=36)
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class AlertPreference(SQLModel, table=True):
    """A user's choice for one kind of alert: by e-mail, in the chat channel, both or none."""

    __tablename__ = "alert_preferences"
    __table_args__ = (PrimaryKeyConstraint("user_id", "kind"),)

    #: Removing a user removes their choices with them.
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(max_length=40)
    email: bool = Field(default=True)
    chat: bool = Field(default=True)
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
