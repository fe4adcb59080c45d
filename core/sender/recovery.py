"""Crash recovery: a send that was in flight when its worker died is never sent again;
one whose request had not started is sent, once, automatically.

A row in `sending` was claimed by a worker. Before a pacing slice's requests go out the
worker marks the slice's rows `request_started_at` in one UPDATE
(core.sender.store.mark_started), so after a crash the two cases differ:

- no mark: the request never started. The row goes back to `pending` once its claim is
  older than `unstarted_seconds` and is sent like any other (safe even if its worker
  still lives: that worker sends only rows its mark UPDATE still finds claimed by it).
- marked: nobody knows whether Meta received the request. Sending it again could
  notify a supplier twice, so recovery never does: the row stays `sending`, waiting for
  a status webhook that carries its id in `biz_opaque_callback_data` (the webhook app
  moves it forward), and once the grace period is over it becomes `needs_attention`
  with a reason, for a person to check WhatsApp and resend if needed.

Two durations, both explicit:
- `lease_seconds`: how long a live worker may hold a claimed row (longer than a request
  timeout plus the worker's small prefetch); older rows belong to a dead worker.
- `grace_seconds`: how long to wait for a webhook after the claim before asking a person.
A row turns `needs_attention` once its claim is older than both.
- `unstarted_seconds` (default: the lease): how long a claimed row may wait in a
  worker's local queue before recovery takes it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, case, func, select, update

from core.i18n import N_
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.types import utcnow

M = WhatsAppMessage.__table__  # type: ignore[attr-defined]

#: Stored in English; shown through `_()` (marked so the catalogue holds them).
INFLIGHT_LOST_MESSAGE = N_(
    "Send was in flight when the sender stopped; Meta's answer was lost. "
    "Check WhatsApp before resending."
)
NO_ANSWER_MESSAGE = N_(
    "No answer from Meta (the request may have been sent); waiting for a status "
    "webhook. Check WhatsApp before resending."
)
INFLIGHT_LOST_CLASS = "unknown"


@dataclass(frozen=True)
class RecoveryReport:
    """What one recovery pass did."""

    needs_attention: int  # in flight too long with no sign from Meta: a person decides
    settled_by_webhook: int  # had a wamid from a webhook: marked accepted
    waiting: int  # orphaned but still within the grace period
    returned: int = 0  # claimed but never requested: back to pending, sent automatically


def recover_stale(
    engine: Engine,
    *,
    lease_seconds: float,
    grace_seconds: float,
    unstarted_seconds: float | None = None,
    now: datetime | None = None,
) -> RecoveryReport:
    """Settle stale `sending` rows: resend the never-requested, never the rest.

    - Without `request_started_at`, claimed longer ago than `unstarted_seconds`: the
      request never started, so back to `pending` (claim cleared, attempt unchanged).
    - With a wamid (a webhook matched it by our id, or our accept write raced a crash),
      claimed longer ago than the lease: Meta has it, so it is `accepted` at least.
    - Started, without a wamid, claimed longer ago than both the lease and the grace
      period: `needs_attention` with `INFLIGHT_LOST_MESSAGE`.
    - Otherwise it keeps waiting (counted in `waiting`).
    """
    unstarted = lease_seconds if unstarted_seconds is None else unstarted_seconds
    if lease_seconds <= 0 or grace_seconds <= 0 or unstarted <= 0:
        raise ValueError("lease_seconds, grace_seconds and unstarted_seconds must be positive")
    now = now or utcnow()
    lease_cutoff = now - timedelta(seconds=lease_seconds)
    attention_cutoff = now - timedelta(seconds=max(lease_seconds, grace_seconds))
    claimed_at = func.coalesce(M.c.claimed_at, M.c.updated_at)
    started = M.c.request_started_at.is_not(None)
    with engine.begin() as conn:
        returned = conn.execute(
            update(M)
            .where(
                M.c.status == MessageStatus.SENDING,
                M.c.request_started_at.is_(None),
                M.c.whatsapp_message_id.is_(None),
                claimed_at < now - timedelta(seconds=unstarted),
            )
            .values(status=MessageStatus.PENDING, claimed_by=None, updated_at=now)
        )
        settled = conn.execute(
            update(M)
            .where(
                M.c.status == MessageStatus.SENDING,
                M.c.whatsapp_message_id.is_not(None),
                claimed_at < lease_cutoff,
            )
            .values(status=MessageStatus.ACCEPTED, updated_at=now)
        )
        lost = conn.execute(
            update(M)
            .where(
                M.c.status == MessageStatus.SENDING,
                M.c.whatsapp_message_id.is_(None),
                started,
                claimed_at < attention_cutoff,
            )
            .values(
                status=MessageStatus.NEEDS_ATTENTION,
                error_class=INFLIGHT_LOST_CLASS,
                # a timeout recorded by a live worker keeps its own, more precise words
                error_message=case(
                    (
                        and_(
                            M.c.error_class == INFLIGHT_LOST_CLASS,
                            M.c.error_message.is_not(None),
                        ),
                        M.c.error_message,
                    ),
                    else_=INFLIGHT_LOST_MESSAGE,
                ),
                updated_at=now,
            )
        )
        waiting = conn.execute(
            select(func.count()).where(
                M.c.status == MessageStatus.SENDING,
                M.c.whatsapp_message_id.is_(None),
                started,
                claimed_at < lease_cutoff,
            )
        ).scalar_one()
    return RecoveryReport(
        needs_attention=max(0, lost.rowcount or 0),
        settled_by_webhook=max(0, settled.rowcount or 0),
        waiting=int(waiting),
        returned=max(0, returned.rowcount or 0),
    )
