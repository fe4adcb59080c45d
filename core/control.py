"""Pausing and resuming sending, per business phone number, and the queue's depth.

A pause-class error from Meta (expired token, locked account, payment problem, ...)
pauses sending: the dispatcher stops claiming until a person resumes it, here, from the
dashboard or with `wanotify resume`. A person can also pause on purpose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, func, select

from core.alerts import events as alert_events
from core.db import session_scope
from core.models.control import SenderControl
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.types import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueDepth:
    """How many messages wait, are being sent, or need a person, right now."""

    pending: int  # in the outbox (due now or later)
    due: int  # pending and due now
    sending: int  # claimed by a dispatcher (or orphaned, awaiting a webhook)
    needs_attention: int

    def describe(self) -> str:
        """One line for the CLI and the dashboard."""
        return (
            f"{self.pending} pending ({self.due} due now), {self.sending} sending, "
            f"{self.needs_attention} need attention"
        )


@dataclass(frozen=True)
class ControlState:
    """Whether sending from a phone number is paused, why, and how deep the queue is."""

    phone_number_id: str
    paused: bool
    reason: str | None
    code: int | None
    paused_at: datetime | None
    resumed_at: datetime | None
    resumed_by: str | None
    queue: QueueDepth

    def describe(self) -> str:
        """A short human summary (the CLI's `status`)."""
        if self.paused:
            code = f" (Meta error {self.code})" if self.code is not None else ""
            since = f" since {self.paused_at:%Y-%m-%d %H:%M} UTC" if self.paused_at else ""
            head = f"Sending is PAUSED{since}: {self.reason or 'no reason given'}{code}."
            head += " Fix the cause, then resume (wanotify resume)."
        else:
            head = "Sending is running."
        return f"{head}\nQueue: {self.queue.describe()}"


def pause_sending(
    engine: Engine, phone_number_id: str, reason: str, code: int | None = None
) -> ControlState:
    """Pause sending from `phone_number_id` (a person's decision or a pause-class error)."""
    if not reason.strip():
        raise ValueError("a pause needs a reason")
    now = utcnow()
    with session_scope(engine) as session:
        row = session.get(SenderControl, phone_number_id)
        if row is None:
            row = SenderControl(phone_number_id=phone_number_id)
        if not row.paused:  # admins hear of it (a person's pause: no Meta code to fix)
            alert_events.sending_paused(session.connection(), phone_number_id, reason, code, now)
        row.paused = True
        row.pause_reason = reason
        row.pause_code = code
        row.paused_at = now
        row.updated_at = now
        session.add(row)
    log.warning("sending paused for %s: %s", phone_number_id, reason)
    return sending_state(engine, phone_number_id)


def resume_sending(engine: Engine, phone_number_id: str, by: str) -> ControlState:
    """Lift a pause; dispatchers start claiming again within a poll interval."""
    if not by.strip():
        raise ValueError("say who resumes sending")
    now = utcnow()
    with session_scope(engine) as session:
        row = session.get(SenderControl, phone_number_id)
        if row is None:
            row = SenderControl(phone_number_id=phone_number_id)
        was_paused = row.paused
        row.paused = False
        row.resumed_at = now
        row.resumed_by = by
        row.updated_at = now
        session.add(row)
    if was_paused:
        log.warning("sending resumed for %s by %s", phone_number_id, by)
    return sending_state(engine, phone_number_id)


def queue_depth(engine: Engine, tenant_id: str | None = None) -> QueueDepth:
    """Counts of pending, due, sending and needs-attention messages (one tenant or all)."""
    m = WhatsAppMessage.__table__  # type: ignore[attr-defined]
    watched = (MessageStatus.PENDING, MessageStatus.SENDING, MessageStatus.NEEDS_ATTENTION)
    now = utcnow()
    due = (m.c.status == MessageStatus.PENDING) & (
        m.c.next_attempt_at.is_(None) | (m.c.next_attempt_at <= now)
    )
    query = (
        select(m.c.status, func.count(), func.sum(case((due, 1), else_=0)))
        .where(m.c.status.in_(watched))
        .group_by(m.c.status)
    )
    if tenant_id is not None:
        query = query.where(m.c.tenant_id == tenant_id)
    counts: dict[str, int] = {}
    due_count = 0
    with engine.connect() as conn:
        for status, count, due_sum in conn.execute(query):
            counts[status] = int(count)
            if status == MessageStatus.PENDING:
                due_count = int(due_sum or 0)
    return QueueDepth(
        pending=counts.get(MessageStatus.PENDING, 0),
        due=due_count,
        sending=counts.get(MessageStatus.SENDING, 0),
        needs_attention=counts.get(MessageStatus.NEEDS_ATTENTION, 0),
    )


def sending_state(
    engine: Engine, phone_number_id: str, tenant_id: str | None = None
) -> ControlState:
    """The pause state of `phone_number_id` and the queue's depth."""
    with session_scope(engine) as session:
        row = session.get(SenderControl, phone_number_id)
        state = (
            row.paused if row else False,
            row.pause_reason if row else None,
            row.pause_code if row else None,
            row.paused_at if row else None,
            row.resumed_at if row else None,
            row.resumed_by if row else None,
        )
    paused, reason, code, paused_at, resumed_at, resumed_by = state
    return ControlState(
        phone_number_id=phone_number_id,
        paused=bool(paused),
        reason=reason if paused else None,
        code=code if paused else None,
        paused_at=paused_at if paused else None,
        resumed_at=resumed_at,
        resumed_by=resumed_by,
        queue=queue_depth(engine, tenant_id),
    )
