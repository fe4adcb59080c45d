"""Health of the webhook pipeline: database reachable, last event, backlog, what is held.

A status that never found its message is counted here (`unmatched`), so it is seen rather
than silently dropped; so is a receipt the applier had to set aside (`failed_receipts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from core.models.events import StatusEventState
from core.webhooks.apply import MAX_APPLY_ATTEMPTS
from core.webhooks.inbox import InboxBacklog, inbox_backlog, open_inbox
from core.webhooks.sql import EVENTS, RECEIPTS


@dataclass(frozen=True)
class WebhookHealth:
    """One reading of the pipeline's state."""

    database_ok: bool
    database_error: str | None = None
    last_event_at: datetime | None = None
    backlog: int = 0  # acknowledged receipts not applied yet
    oldest_unapplied_at: datetime | None = None
    failed_receipts: int = 0  # set aside after repeated apply failures
    held: int = 0  # statuses waiting for their message
    unmatched: int = 0  # statuses that never found their message
    conflicts: int = 0  # statuses whose callback data names a message with another wamid

    @property
    def needs_attention(self) -> bool:
        """True when something acknowledged has not reached the messages it concerns."""
        return bool(self.failed_receipts or self.unmatched or self.conflicts)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view, times in ISO 8601 UTC."""
        if not self.database_ok:
            status = "unavailable"
        else:
            status = "attention" if self.needs_attention else "ok"
        return {
            "status": status,
            "database": "ok" if self.database_ok else f"unreachable: {self.database_error}",
            "last_event_at": _iso(self.last_event_at),
            "backlog": self.backlog,
            "oldest_unapplied_at": _iso(self.oldest_unapplied_at),
            "failed_receipts": self.failed_receipts,
            "held_statuses": self.held,
            "unmatched_statuses": self.unmatched,
            "conflicting_statuses": self.conflicts,
        }


def read_health(engine: Engine) -> WebhookHealth:
    """Read the pipeline's state; a database error is reported, never raised. Receipts
    still in the SQLite inbox count as backlog (and as the last event) too."""
    r = RECEIPTS.c
    try:
        inbox = open_inbox(engine, create=False)
        with engine.connect() as conn:
            waiting_in = inbox_backlog(conn, inbox) if inbox is not None else InboxBacklog()
            last = conn.execute(select(r.received_at).order_by(r.id.desc()).limit(1)).scalar()
            unapplied = r.applied_at.is_(None)
            waiting = conn.execute(
                select(func.count(), func.min(r.received_at)).where(
                    unapplied, r.apply_attempts < MAX_APPLY_ATTEMPTS
                )
            ).one()
            failed = conn.execute(
                select(func.count()).where(unapplied, r.apply_attempts >= MAX_APPLY_ATTEMPTS)
            ).scalar_one()
            rows = conn.execute(
                select(EVENTS.c.state, func.count())
                .where(EVENTS.c.state != StatusEventState.APPLIED)
                .group_by(EVENTS.c.state)
            )
            held = {str(row[0]): int(row[1]) for row in rows}
    except Exception as exc:  # the health answer must not fail with the database
        return WebhookHealth(database_ok=False, database_error=type(exc).__name__)
    return WebhookHealth(
        database_ok=True,
        last_event_at=max(_known(last, waiting_in.last_at), default=None),
        backlog=int(waiting[0]) + waiting_in.count,
        oldest_unapplied_at=min(_known(waiting[1], waiting_in.oldest_at), default=None),
        failed_receipts=int(failed),
        held=int(held.get(StatusEventState.PENDING, 0)),
        unmatched=int(held.get(StatusEventState.UNMATCHED, 0)),
        conflicts=int(held.get(StatusEventState.CONFLICT, 0)),
    )


def _known(*times: datetime | None) -> list[datetime]:
    return [t for t in times if t is not None]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
