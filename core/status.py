"""The one-way street of message status, as pure functions.

`pending -> sending -> accepted -> sent -> delivered -> read`; `failed` from anything
before `delivered`. Webhooks arrive at least once and in any order, so applying an event
must be idempotent and monotonic: the final state depends only on the *set* of events.
The furthest delivery stage wins, a `failed` counts only while nothing later than `sent`
was reported, and each stage keeps its earliest timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from core.models.messages import MessageStatus

#: How far a message has gone; a higher rank is never undone by a lower one.
RANK: dict[str, int] = {
    MessageStatus.PENDING: 0,
    MessageStatus.CANCELLED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.NEEDS_ATTENTION: 1,
    MessageStatus.ACCEPTED: 2,
    MessageStatus.SENT: 3,
    MessageStatus.FAILED: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.READ: 5,
}

#: Status words Meta sends in webhooks that move a message forward.
WEBHOOK_STAGES = ("sent", "delivered", "read", "failed")


@dataclass(frozen=True)
class Progress:
    """The delivery facts of one message: stage timestamps and the failure, if any."""

    status: str
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    failed_at: datetime | None = None


def _earliest(current: datetime | None, new: datetime) -> datetime:
    return new if current is None or new < current else current


def apply_stage(progress: Progress, stage: str, at: datetime) -> Progress:
    """Fold one webhook status into `progress`; unknown stages change nothing.

    `read` implies delivered and sent, `delivered` implies sent, so a skipped or late
    event still leaves every earlier stage with a time (the earliest seen).
    """
    if stage not in WEBHOOK_STAGES:
        return progress
    if stage == "failed":
        failed = replace(progress, failed_at=_earliest(progress.failed_at, at))
        return replace(failed, status=derive_status(failed))
    updated = progress
    if stage in ("read",):
        updated = replace(updated, read_at=_earliest(updated.read_at, at))
    if stage in ("read", "delivered"):
        updated = replace(updated, delivered_at=_earliest(updated.delivered_at, at))
    updated = replace(updated, sent_at=_earliest(updated.sent_at, at))
    return replace(updated, status=derive_status(updated))


def derive_status(progress: Progress) -> str:
    """The status the stage timestamps imply; pre-webhook statuses are kept as they are."""
    if progress.read_at is not None:
        return MessageStatus.READ
    if progress.delivered_at is not None:
        return MessageStatus.DELIVERED
    if progress.failed_at is not None:
        return MessageStatus.FAILED
    if progress.sent_at is not None:
        return MessageStatus.SENT
    return progress.status


def is_final(status: str) -> bool:
    """True when nothing the sender does can change the message any more."""
    return status in (MessageStatus.READ, MessageStatus.FAILED, MessageStatus.CANCELLED)


def may_move(current: str, new: str) -> bool:
    """True when a status change made by the sender (not a webhook) moves forward."""
    if current == new:
        return False
    if new == MessageStatus.FAILED:
        return RANK.get(current, 0) < RANK[MessageStatus.DELIVERED]
    return RANK.get(new, 0) > RANK.get(current, 0)
