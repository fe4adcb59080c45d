"""The one-way street of message status, as pure functions.

`pending -> sending -> accepted -> sent -> delivered -> read`; `failed` from anything
before `delivered`. Webhooks arrive at least once and in any order, so applying an event
must be idempotent and monotonic: the final state depends only on the *set* of events.
The furthest delivery stage wins, a `failed` counts only while nothing later than `sent`
was reported, and each stage keeps its earliest timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    sent_at, delivered_at, read_at = progress.sent_at, progress.delivered_at, progress.read_at
    failed_at = progress.failed_at
    if stage == "failed":
        failed_at = _earliest(failed_at, at)
    else:
        if stage == "read":
            read_at = _earliest(read_at, at)
        if stage in ("read", "delivered"):
            delivered_at = _earliest(delivered_at, at)
        sent_at = _earliest(sent_at, at)
    # One construction per event (this runs for every status at Meta's peak rate).
    return Progress(
        status=_status_of(progress.status, sent_at, delivered_at, read_at, failed_at),
        sent_at=sent_at,
        delivered_at=delivered_at,
        read_at=read_at,
        failed_at=failed_at,
    )


def _status_of(
    current: str,
    sent_at: datetime | None,
    delivered_at: datetime | None,
    read_at: datetime | None,
    failed_at: datetime | None,
) -> str:
    if read_at is not None:
        return MessageStatus.READ
    if delivered_at is not None:
        return MessageStatus.DELIVERED
    if failed_at is not None:
        return MessageStatus.FAILED
    if sent_at is not None:
        return MessageStatus.SENT
    return current


def derive_status(progress: Progress) -> str:
    """The status the stage timestamps imply; pre-webhook statuses are kept as they are."""
    return _status_of(
        progress.status,
        progress.sent_at,
        progress.delivered_at,
        progress.read_at,
        progress.failed_at,
    )


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
