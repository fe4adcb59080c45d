"""Health of the webhook pipeline: database reachable, last event, backlog, what is held.

A status that never found its message is counted here (`unmatched`), so it is seen rather
than silently dropped; so is a receipt the applier had to set aside (`failed_receipts`).
Signed-looking deliveries refused for their signature with no valid delivery since
(`core.webhooks.rejections`) make the pipeline `degraded`, with the cause in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from core.models.events import StatusEventState
from core.webhooks.apply import MAX_APPLY_ATTEMPTS
from core.webhooks.inbox import InboxBacklog, inbox_backlog, open_inbox
from core.webhooks.numbers import HELD_REPLIES_REASON
from core.webhooks.rejections import RejectionRow, read_rejections
from core.webhooks.sql import EVENTS, RECEIPTS

#: What to check when signatures are refused (said by health, `wanotify status`, dashboard).
SIGNATURE_ADVICE = (
    "check that WHATSAPP_APP_SECRET is the app secret of the Meta app that sends the webhooks"
)


@dataclass(frozen=True)
class RejectedSignatures:
    """Signed-looking deliveries refused for their signature since the last valid one."""

    count: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None

    def describe(self) -> str | None:
        """The cause in one line, or None when nothing was refused."""
        if not self.count or self.last_at is None:
            return None
        return (
            f"{self.count:,} webhook deliveries refused for a bad signature since "
            f"{_iso(self.first_at)} (last {_iso(self.last_at)}), none valid since: "
            f"{SIGNATURE_ADVICE}"
        )


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
    unknown_number: int = 0  # statuses naming a business number we do not know: held
    other_number: int = 0  # statuses naming another number than their message's
    held_replies: int = 0  # deliveries whose replies name a number we do not know
    rejected_signatures: RejectedSignatures = RejectedSignatures()

    @property
    def needs_attention(self) -> bool:
        """True when something acknowledged has not reached the messages it concerns."""
        return bool(
            self.failed_receipts
            or self.unmatched
            or self.conflicts
            or self.unknown_number
            or self.other_number
            or self.held_replies
        )

    @property
    def degraded(self) -> bool:
        """True when deliveries are being refused for their signature (none valid since)."""
        return self.rejected_signatures.count > 0

    @property
    def status(self) -> str:
        """`unavailable`, `degraded` (events refused), `attention` (events stuck) or `ok`."""
        if not self.database_ok:
            return "unavailable"
        if self.degraded:
            return "degraded"
        return "attention" if self.needs_attention else "ok"

    def causes(self) -> list[str]:
        """Each problem in one line of words (empty when all is well)."""
        found = []
        if not self.database_ok:
            found.append(f"the database cannot be read: {self.database_error}")
        signatures = self.rejected_signatures.describe()
        if signatures:
            found.append(signatures)
        if self.failed_receipts:
            found.append(f"{self.failed_receipts:,} receipts set aside after repeated errors")
        if self.unmatched:
            found.append(f"{self.unmatched:,} statuses never matched a message")
        if self.conflicts:
            found.append(f"{self.conflicts:,} statuses name a message with another wamid")
        if self.unknown_number:
            found.append(
                f"{self.unknown_number:,} statuses name a WhatsApp number we do not know: held, "
                "not applied (register the number with `wanotify numbers add` if it is ours: "
                "that applies them)"
            )
        if self.other_number:
            found.append(
                f"{self.other_number:,} statuses name another number than the one their "
                "message went out from: not applied"
            )
        if self.held_replies:
            found.append(
                f"{self.held_replies:,} replies to a WhatsApp number we do not know: held in "
                "their receipts, not applied (registering the number applies them)"
            )
        return found

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view, times in ISO 8601 UTC."""
        rejected = self.rejected_signatures
        return {
            "status": self.status,
            "causes": self.causes(),
            "database": "ok" if self.database_ok else f"unreachable: {self.database_error}",
            "last_event_at": _iso(self.last_event_at),
            "backlog": self.backlog,
            "oldest_unapplied_at": _iso(self.oldest_unapplied_at),
            "failed_receipts": self.failed_receipts,
            "held_statuses": self.held,
            "unmatched_statuses": self.unmatched,
            "conflicting_statuses": self.conflicts,
            "unknown_number_statuses": self.unknown_number,
            "other_number_statuses": self.other_number,
            "held_reply_deliveries": self.held_replies,
            "rejected_signatures": {
                "count": rejected.count,
                "first_at": _iso(rejected.first_at),
                "last_at": _iso(rejected.last_at),
            },
        }


def read_health(engine: Engine) -> WebhookHealth:
    """Read the pipeline's state; a database error is reported, never raised. Receipts
    still in the SQLite inbox count as backlog (and as the last event) too."""
    r = RECEIPTS.c
    try:
        inbox = open_inbox(engine, create=False)
        with engine.connect() as conn:
            waiting_in = inbox_backlog(conn, inbox) if inbox is not None else InboxBacklog()
            last = _last_receipt_at(conn)
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
            stored = read_rejections(conn)
    except Exception as exc:  # the health answer must not fail with the database
        return WebhookHealth(database_ok=False, database_error=type(exc).__name__)
    held_replies = sum(row.count for row in stored if row.reason == HELD_REPLIES_REASON)
    refused = [row for row in stored if row.reason != HELD_REPLIES_REASON]
    last_event_at = max(_known(last, waiting_in.last_at), default=None)
    return WebhookHealth(
        database_ok=True,
        last_event_at=last_event_at,
        backlog=int(waiting[0]) + waiting_in.count,
        oldest_unapplied_at=min(_known(waiting[1], waiting_in.oldest_at), default=None),
        failed_receipts=int(failed),
        held=int(held.get(StatusEventState.PENDING, 0)),
        unmatched=int(held.get(StatusEventState.UNMATCHED, 0)),
        conflicts=int(held.get(StatusEventState.CONFLICT, 0)),
        unknown_number=int(held.get(StatusEventState.UNKNOWN_NUMBER, 0)),
        other_number=int(held.get(StatusEventState.OTHER_NUMBER, 0)),
        held_replies=int(held_replies),
        rejected_signatures=since_last_valid(refused, last_event_at),
    )


def since_last_valid(rows: list[RejectionRow], valid_at: datetime | None) -> RejectedSignatures:
    """The refusals newer than the last valid delivery (a valid one overtakes older runs)."""
    live = [r for r in rows if valid_at is None or r.last_at > valid_at]
    if not live:
        return RejectedSignatures()
    return RejectedSignatures(
        count=sum(r.count for r in live),
        first_at=min(r.first_at for r in live),
        last_at=max(r.last_at for r in live),
    )


def last_delivery_at(engine: Engine) -> datetime | None:
    """When the last valid delivery was journalled (the receipts, and the SQLite inbox)."""
    inbox = open_inbox(engine, create=False)
    with engine.connect() as conn:
        waiting_in = inbox_backlog(conn, inbox) if inbox is not None else InboxBacklog()
        last = _last_receipt_at(conn)
    return max(_known(last, waiting_in.last_at), default=None)


def _last_receipt_at(conn: Connection) -> datetime | None:
    r = RECEIPTS.c
    value: datetime | None = conn.execute(
        select(r.received_at).order_by(r.id.desc()).limit(1)
    ).scalar()
    return value


def _known(*times: datetime | None) -> list[datetime]:
    return [t for t in times if t is not None]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
