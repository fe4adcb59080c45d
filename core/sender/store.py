"""The dispatcher's database work: claim pending rows, record outcomes in batches.

Plain synchronous functions, run by the dispatcher on one dedicated thread so the event
loop never waits on the database and SQLite sees a single writer. Every outcome is a
conditional UPDATE that never moves a row backwards: a status webhook may have moved a
message to `sent` or `delivered` before our send call returned.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Text,
    bindparam,
    case,
    cast,
    func,
    or_,
    select,
    update,
)

from core.alerts import events as alert_events
from core.consent.dispatch import refuse_opted_out
from core.db import is_sqlite
from core.models.batches import BatchStatus, SendBatch
from core.models.control import SenderControl
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.suppliers import Supplier
from core.models.templates import WhatsAppTemplate
from core.models.types import utcnow

M = WhatsAppMessage.__table__  # type: ignore[attr-defined]
B = SendBatch.__table__  # type: ignore[attr-defined]
T = WhatsAppTemplate.__table__  # type: ignore[attr-defined]
S = Supplier.__table__  # type: ignore[attr-defined]
C = SenderControl.__table__  # type: ignore[attr-defined]

TemplateKey = tuple[str, str, str]  # tenant_id, template_name, language
#: Batch statuses whose messages the dispatcher leaves alone.
STOPPED_BATCHES = (BatchStatus.PAUSED, BatchStatus.CANCELLED)


@dataclass(frozen=True)
class ClaimedMessage:
    """A row this worker moved from pending to sending, with what it needs to send it."""

    id: str
    tenant_id: str
    recipient_phone: str
    payload: dict[str, Any]
    message_type: str
    template_name: str | None
    template_language: str | None
    attempt_count: int
    batch_id: str | None
    supplier_id: int | None

    @property
    def recipient(self) -> str:
        """The recipient's digits as the Cloud API takes them (the pair-limit key)."""
        return self.recipient_phone.lstrip("+")

    @property
    def template_key(self) -> TemplateKey | None:
        """(tenant, template, language) for template messages, else None."""
        if self.message_type != "template" or not self.template_name:
            return None
        return (self.tenant_id, self.template_name, self.template_language or "")


@dataclass(frozen=True)
class PauseInfo:
    """Why sending is paused for a phone number id."""

    reason: str | None
    code: int | None


@dataclass
class ClaimCycle:
    """One trip to the database: control state, held templates, stopped batches, claims."""

    started: float  # monotonic time the reads began: older local decisions win over it
    paused: PauseInfo | None
    held_templates: dict[TemplateKey, str]
    stopped_batches: frozenset[str]
    claimed: list[ClaimedMessage] = field(default_factory=list)
    waiting: int = 0  # pending rows left (due or not), outside stopped batches
    next_due: datetime | None = None  # earliest next_attempt_at among waiting rows


def claim_cycle(
    engine: Engine,
    *,
    worker_id: str,
    phone_number_id: str,
    limit: int,
    count_waiting: bool = False,
) -> ClaimCycle:
    """Read the control state and claim up to `limit` due pending rows, in one transaction.

    Only the rows going out from `phone_number_id` are claimed (each sending number
    has its own dispatcher), and only its pause applies. Rows of paused or cancelled
    batches are skipped. On PostgreSQL the candidate rows
    are locked with FOR UPDATE SKIP LOCKED, so several workers claim disjoint sets.
    """
    started = time.monotonic()
    now = utcnow()
    with engine.begin() as conn:
        control = conn.execute(
            select(C.c.paused, C.c.pause_reason, C.c.pause_code).where(
                C.c.phone_number_id == phone_number_id
            )
        ).first()
        paused = (
            PauseInfo(control.pause_reason, control.pause_code)
            if control and control.paused
            else None
        )
        held = {
            (r.tenant_id, r.template_name, r.language): r.held_reason
            for r in conn.execute(
                select(T.c.tenant_id, T.c.template_name, T.c.language, T.c.held_reason).where(
                    T.c.held_reason.is_not(None)
                )
            )
        }
        stopped = frozenset(
            conn.execute(select(B.c.id).where(B.c.status.in_(STOPPED_BATCHES))).scalars()
        )
        cycle = ClaimCycle(started, paused, held, stopped)
        if paused is None and limit > 0:
            claimed = _claim(conn, worker_id, phone_number_id, limit, now, is_sqlite(engine))
            cycle.claimed = refuse_opted_out(conn, claimed, now)  # opted out since queued
        if count_waiting and not cycle.claimed:
            row = conn.execute(
                select(func.count(), func.min(M.c.next_attempt_at)).where(
                    M.c.phone_number_id == phone_number_id,
                    M.c.status == MessageStatus.PENDING,
                    _outside_stopped_batches(),
                )
            ).one()
            cycle.waiting = int(row[0])
            cycle.next_due = row[1]
    return cycle


def _outside_stopped_batches() -> Any:
    stopped = select(B.c.id).where(B.c.status.in_(STOPPED_BATCHES))
    return or_(M.c.batch_id.is_(None), M.c.batch_id.not_in(stopped))


def _claim(
    conn: Connection,
    worker_id: str,
    phone_number_id: str,
    limit: int,
    now: datetime,
    sqlite: bool,
) -> list[ClaimedMessage]:
    candidates = (
        select(M.c.id)
        .where(
            M.c.phone_number_id == phone_number_id,
            M.c.status == MessageStatus.PENDING,
            or_(M.c.next_attempt_at.is_(None), M.c.next_attempt_at <= now),
            _outside_stopped_batches(),
        )
        .order_by(M.c.created_at)
        .limit(limit)
    )
    if sqlite:  # one writer at a time: the subquery runs once, under the write lock
        chosen = M.c.id.in_(candidates.scalar_subquery())
    else:
        # A CTE, not `IN (subquery)`: PostgreSQL may re-run a subquery per row, and with
        # SKIP LOCKED every run finds new rows, so one claim would take the whole queue.
        claimable = candidates.with_for_update(skip_locked=True, of=M).cte("claimable")
        chosen = M.c.id == claimable.c.id
    result = conn.execute(
        update(M)
        .where(chosen, M.c.status == MessageStatus.PENDING)
        .values(
            status=MessageStatus.SENDING,
            claimed_by=worker_id,
            claimed_at=now,
            request_started_at=None,
            updated_at=now,
        )
        .returning(
            M.c.id,
            M.c.tenant_id,
            M.c.recipient_phone,
            M.c.request_payload,
            M.c.message_type,
            M.c.template_name,
            M.c.template_language,
            M.c.attempt_count,
            M.c.batch_id,
            M.c.supplier_id,
            M.c.created_at,
        )
    )
    rows = sorted(result.all(), key=lambda r: (r.created_at, r.id))
    return [
        ClaimedMessage(
            id=r.id,
            tenant_id=r.tenant_id,
            recipient_phone=r.recipient_phone,
            payload=dict(r.request_payload or {}),
            message_type=r.message_type,
            template_name=r.template_name,
            template_language=r.template_language,
            attempt_count=r.attempt_count,
            batch_id=r.batch_id,
            supplier_id=r.supplier_id,
        )
        for r in rows
    ]


def mark_started(engine: Engine, ids: Sequence[str], worker_id: str) -> set[str]:
    """Date the requests of one pacing slice as started, in one UPDATE; returns the ids
    still ours to send.

    Written (and committed) before any of the slice's requests goes out, so after a
    crash a `sending` row without the mark was never requested and recovery may send it
    again, while a marked row keeps the never-resend rule. Only rows still `sending`
    under this worker's claim are marked: a row recovery took back (or another worker
    claimed since) is left alone, and the caller must not send it.
    """
    if not ids:
        return set()
    now = utcnow()
    with engine.begin() as conn:
        result = conn.execute(
            update(M)
            .where(
                M.c.id.in_(list(ids)),
                M.c.status == MessageStatus.SENDING,
                M.c.claimed_by == worker_id,
            )
            .values(request_started_at=now)
            .returning(M.c.id)
        )
        return set(result.scalars().all())


# --- outcomes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """Meta accepted the message: it has a wamid."""

    message: ClaimedMessage
    wamid: str
    wa_id: str | None
    response: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class Retry:
    """A retry-class error: back to pending, due at `due`."""

    message: ClaimedMessage
    attempt: int
    due: datetime
    error: ErrorFields


@dataclass(frozen=True)
class Failed:
    """Failed for good (permanent error, template held, or retries used up)."""

    message: ClaimedMessage
    attempt: int
    error: ErrorFields
    at: datetime


@dataclass(frozen=True)
class Released:
    """Never reached the network: back to pending unchanged, due at `due`."""

    message: ClaimedMessage
    due: datetime | None


@dataclass(frozen=True)
class Unknown:
    """The request may have reached Meta but no answer came: wait for a webhook."""

    message: ClaimedMessage
    attempt: int
    error: ErrorFields


@dataclass(frozen=True)
class HoldTemplate:
    """Meta paused or disabled a template: hold it and fail its pending messages."""

    key: TemplateKey
    error: ErrorFields
    at: datetime


@dataclass(frozen=True)
class PauseSending:
    """A pause-class error: stop the queue for this phone number until a person resumes."""

    phone_number_id: str
    error: ErrorFields
    at: datetime


@dataclass(frozen=True)
class ErrorFields:
    """An error as stored on a message: code, class, plain reason and Meta's own words."""

    code: int | None
    error_class: str
    reason: str
    title: str | None
    details: dict[str, Any]


Outcome = Accepted | Retry | Failed | Released | Unknown | HoldTemplate | PauseSending


@dataclass
class ApplyReport:
    """How many rows each kind of outcome changed (for stats and tests)."""

    accepted: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    unknown: int = 0
    held_failed: int = 0


def apply_outcomes(engine: Engine, outcomes: Sequence[Outcome], worker_id: str) -> ApplyReport:
    """Write a batch of outcomes in one transaction (executemany per kind)."""
    report = ApplyReport()
    groups: dict[type, list[Any]] = {}
    for outcome in outcomes:
        groups.setdefault(type(outcome), []).append(outcome)
    now = utcnow()
    with engine.begin() as conn:
        if accepted := groups.get(Accepted):
            report.accepted = _write_accepted(conn, accepted, now)
        if retries := groups.get(Retry):
            report.retried = _write_retries(conn, retries, now)
        if failures := groups.get(Failed):
            report.failed = _write_failures(conn, failures, now)
        if released := groups.get(Released):
            report.released = _write_released(conn, released, worker_id, now)
        if unknown := groups.get(Unknown):
            report.unknown = _write_unknown(conn, unknown, now)
        for hold in groups.get(HoldTemplate, []):
            report.held_failed += _write_hold(conn, hold, now)
        for pause in groups.get(PauseSending, []):
            _write_pause(conn, pause)
    return report


def _fill_json(column: Any, value: Any) -> Any:
    """`value` where `column` holds nothing yet, else the column unchanged.

    "Nothing" is SQL NULL or a JSON `null`: rows inserted through the ORM with None store
    JSON `null`, which a plain COALESCE would keep.
    """
    empty = or_(column.is_(None), cast(column, Text) == "null")
    return case((empty, value), else_=column)


def _rowcount(result: Any) -> int:
    return max(0, int(getattr(result, "rowcount", 0) or 0))


def _write_accepted(conn: Connection, items: list[Accepted], now: datetime) -> int:
    # Two equalities, not IN (...): an IN list is an "expanding" parameter, which
    # SQLAlchemy refuses in an executemany (one UPDATE for several accepted messages).
    moving = or_(
        M.c.status == MessageStatus.SENDING, M.c.status == MessageStatus.NEEDS_ATTENTION
    )
    params = [
        {
            "b_id": a.message.id,
            "b_wamid": a.wamid,
            "b_wa_id": a.wa_id,
            "b_at": a.at,
            "b_response": a.response,
            "b_now": now,
        }
        for a in items
    ]
    # Facts of the accept are filled in whatever the status now is (only where still
    # empty); the status itself moves only from sending/needs_attention.
    fill = (
        update(M)
        .where(M.c.id == bindparam("b_id"))
        .values(
            whatsapp_message_id=func.coalesce(M.c.whatsapp_message_id, bindparam("b_wamid")),
            wa_id=func.coalesce(M.c.wa_id, bindparam("b_wa_id")),
            accepted_at=func.coalesce(
                M.c.accepted_at, bindparam("b_at", type_=M.c.accepted_at.type)
            ),
            provider_response=_fill_json(
                M.c.provider_response, bindparam("b_response", type_=M.c.provider_response.type)
            ),
            status=case((moving, MessageStatus.ACCEPTED), else_=M.c.status),
            error_code=case((moving, None), else_=M.c.error_code),
            error_class=case((moving, None), else_=M.c.error_class),
            error_message=case((moving, None), else_=M.c.error_message),
            error_title=case((moving, None), else_=M.c.error_title),
            updated_at=bindparam("b_now", type_=M.c.updated_at.type),
        )
    )
    result = conn.execute(fill, params)
    sent = Counter(a.message.template_key for a in items if a.message.template_key)
    if sent:
        conn.execute(
            update(T)
            .where(
                T.c.tenant_id == bindparam("b_tenant"),
                T.c.template_name == bindparam("b_name"),
                T.c.language == bindparam("b_lang"),
            )
            .values(sent_count=T.c.sent_count + bindparam("b_n")),
            [{"b_tenant": k[0], "b_name": k[1], "b_lang": k[2], "b_n": n} for k, n in sent.items()],
        )
    wa_ids = {a.message.supplier_id: a.wa_id for a in items if a.message.supplier_id and a.wa_id}
    if wa_ids:
        conn.execute(
            update(S)
            .where(
                S.c.id == bindparam("b_sid"),
                or_(S.c.wa_id.is_(None), S.c.wa_id != bindparam("b_wa")),
            )
            .values(
                wa_id=bindparam("b_wa"), updated_at=bindparam("b_now", type_=S.c.updated_at.type)
            ),
            [{"b_sid": sid, "b_wa": wa, "b_now": now} for sid, wa in wa_ids.items()],
        )
    return _rowcount(result)


def _error_values() -> dict[str, Any]:
    return {
        "error_code": bindparam("b_code"),
        "error_class": bindparam("b_class"),
        "error_message": bindparam("b_reason"),
        "error_title": bindparam("b_title"),
    }


def _error_params(error: ErrorFields) -> dict[str, Any]:
    return {
        "b_code": error.code,
        "b_class": error.error_class,
        "b_reason": error.reason,
        "b_title": (error.title or "")[:255] or None,
        "b_details": {"error": error.details},
    }


def _write_retries(conn: Connection, items: list[Retry], now: datetime) -> int:
    result = conn.execute(
        update(M)
        .where(M.c.id == bindparam("b_id"), M.c.status == MessageStatus.SENDING)
        .values(
            status=MessageStatus.PENDING,
            attempt_count=bindparam("b_attempt"),
            next_attempt_at=bindparam("b_due", type_=M.c.next_attempt_at.type),
            claimed_by=None,
            request_started_at=None,
            updated_at=bindparam("b_now", type_=M.c.updated_at.type),
            **_error_values(),
        ),
        [
            {
                "b_id": r.message.id,
                "b_attempt": r.attempt,
                "b_due": r.due,
                "b_now": now,
                **_error_params(r.error),
            }
            for r in items
        ],
    )
    return _rowcount(result)


def _write_failures(conn: Connection, items: list[Failed], now: datetime) -> int:
    result = conn.execute(
        update(M)
        .where(M.c.id == bindparam("b_id"), M.c.status == MessageStatus.SENDING)
        .values(
            status=MessageStatus.FAILED,
            attempt_count=bindparam("b_attempt"),
            failed_at=bindparam("b_at", type_=M.c.failed_at.type),
            provider_response=_fill_json(
                M.c.provider_response, bindparam("b_details", type_=M.c.provider_response.type)
            ),
            updated_at=bindparam("b_now", type_=M.c.updated_at.type),
            **_error_values(),
        ),
        [
            {
                "b_id": f.message.id,
                "b_attempt": f.attempt,
                "b_at": f.at,
                "b_now": now,
                **_error_params(f.error),
            }
            for f in items
        ],
    )
    return _rowcount(result)


def _write_released(conn: Connection, items: list[Released], worker_id: str, now: datetime) -> int:
    result = conn.execute(
        update(M)
        .where(
            M.c.id == bindparam("b_id"),
            M.c.status == MessageStatus.SENDING,
            M.c.claimed_by == worker_id,
        )
        .values(
            status=MessageStatus.PENDING,
            next_attempt_at=bindparam("b_due", type_=M.c.next_attempt_at.type),
            claimed_by=None,
            request_started_at=None,
            updated_at=bindparam("b_now", type_=M.c.updated_at.type),
        ),
        [{"b_id": r.message.id, "b_due": r.due, "b_now": now} for r in items],
    )
    return _rowcount(result)


def _write_unknown(conn: Connection, items: list[Unknown], now: datetime) -> int:
    # Stays `sending`: recovery turns it into needs_attention after the grace period
    # unless a status webhook (matched by biz_opaque_callback_data) settles it first.
    result = conn.execute(
        update(M)
        .where(M.c.id == bindparam("b_id"), M.c.status == MessageStatus.SENDING)
        .values(
            attempt_count=bindparam("b_attempt"),
            updated_at=bindparam("b_now", type_=M.c.updated_at.type),
            **_error_values(),
        ),
        [
            {"b_id": u.message.id, "b_attempt": u.attempt, "b_now": now, **_error_params(u.error)}
            for u in items
        ],
    )
    return _rowcount(result)


def _write_hold(conn: Connection, hold: HoldTemplate, now: datetime) -> int:
    tenant_id, name, language = hold.key
    conn.execute(
        update(T)
        .where(
            T.c.tenant_id == tenant_id,
            T.c.template_name == name,
            T.c.language == language,
            T.c.held_reason.is_(None),
        )
        .values(held_reason=hold.error.reason, updated_at=now)
    )
    result = conn.execute(
        update(M)
        .where(
            M.c.status == MessageStatus.PENDING,
            M.c.tenant_id == tenant_id,
            M.c.template_name == name,
            M.c.template_language == language,
            M.c.message_type == "template",
        )
        .values(
            status=MessageStatus.FAILED,
            failed_at=hold.at,
            error_code=hold.error.code,
            error_class=hold.error.error_class,
            error_message=held_message(hold.error.reason),
            error_title=hold.error.title,
            updated_at=now,
        )
    )
    return _rowcount(result)


def held_message(reason: str) -> str:
    """The error text of a message not sent because its template is held."""
    return f"Not sent: the template is held ({reason})"


def _write_pause(conn: Connection, pause: PauseSending) -> None:
    values = {
        "paused": True,
        "pause_reason": pause.error.reason,
        "pause_code": pause.error.code,
        "paused_at": pause.at,
        "updated_at": pause.at,
    }
    changed = conn.execute(
        update(C)
        .where(C.c.phone_number_id == pause.phone_number_id, C.c.paused.is_(False))
        .values(**values)
    )
    if _rowcount(changed) == 0:
        exists = conn.execute(
            select(C.c.phone_number_id).where(C.c.phone_number_id == pause.phone_number_id)
        ).first()
        if exists is not None:
            return  # already paused: the admins were told then
        conn.execute(C.insert().values(phone_number_id=pause.phone_number_id, **values))
    alert_events.sending_paused(  # the admins hear why, and what to do
        conn, pause.phone_number_id, pause.error.reason, pause.error.code, pause.at
    )


def recent_recipients(
    engine: Engine, since: datetime, phone_number_id: str | None = None
) -> list[tuple[str, datetime]]:
    """(recipient digits, last send start) for sends started after `since` (pair limit),
    from `phone_number_id` when given (Meta counts the pair limit per business number)."""
    number = [] if phone_number_id is None else [M.c.phone_number_id == phone_number_id]
    with engine.connect() as conn:
        rows = conn.execute(
            select(M.c.recipient_phone, func.max(M.c.claimed_at))
            .where(
                *number,
                M.c.claimed_at > since,
                M.c.status.not_in((MessageStatus.PENDING, MessageStatus.CANCELLED)),
            )
            .group_by(M.c.recipient_phone)
        ).all()
    return [(str(phone).lstrip("+"), at) for phone, at in rows if at is not None]


__all__ = [
    "Accepted",
    "ApplyReport",
    "ClaimCycle",
    "ClaimedMessage",
    "ErrorFields",
    "Failed",
    "HoldTemplate",
    "Outcome",
    "PauseInfo",
    "PauseSending",
    "Released",
    "Retry",
    "TemplateKey",
    "Unknown",
    "apply_outcomes",
    "claim_cycle",
    "held_message",
    "mark_started",
    "recent_recipients",
]
