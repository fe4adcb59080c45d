"""One "PO approved" event in, at most one PO notice in the outbox out.

Both intakes (the RabbitMQ consumer and the HTTP endpoint) call `handle_po_event`, so
validation, idempotency and the outcome words are the same on either road. The
idempotency key comes from the PO (tenant + PO number + recipient + template, built by
`core.notify` with `core.keys.po_notice_key`), never from the event id: an ERP that
replays an event, or a broker that redelivers one, gets "duplicate" and nothing is sent.

Database errors (locked, read-only, connection lost) are *not* caught here: they are
transient, and the caller decides to retry (the consumer requeues, HTTP answers 503).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine
from sqlalchemy.exc import (
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from core.notify import NoticeRejected, PoNotice, send_po_notice
from core.outbox import EnqueueResult
from core.po_events.schema import InvalidPoEvent, PoApprovedEvent, parse_po_event

log = logging.getLogger(__name__)

IntakeStatus = Literal["enqueued", "duplicate", "rejected", "forbidden"]

#: Database errors that pass (locked, read-only, server gone, pool exhausted): callers
#: retry the event later instead of rejecting it.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    InternalError,  # e.g. PostgreSQL's "read-only transaction"
    DisconnectionError,
    PoolTimeoutError,
)

#: Tries of one event when a concurrent writer wins a unique constraint first (the same
#: event delivered twice at once, or two POs for one new supplier): the retry reads the
#: winner's row back. Past this, the IntegrityError is a real fault and is raised.
RACE_ATTEMPTS = 3


@dataclass(frozen=True)
class IntakeResult:
    """What became of one event.

    `enqueued`: a new pending outbox row (`message_id`). `duplicate`: the PO was already
    notified or queued; `message_id` is that earlier message and nothing new is sent.
    `rejected`: the event can never be used as sent; `problems` says why, `reason` is
    the same in one line. `forbidden`: the event is for another tenant than the one the
    caller may act for; nothing was written.
    """

    status: IntakeStatus
    message_id: str | None = None
    reason: str | None = None
    problems: tuple[str, ...] = ()
    event_id: str | None = None
    tenant_id: str | None = None
    po_number: str | None = None


def handle_po_event(
    raw: bytes | str | Mapping[str, Any],
    *,
    engine: Engine | None = None,
    source: str,
    tenant_id: str | None = None,
) -> IntakeResult:
    """Validate one event and queue its PO notice once; blocking (run it off the loop).

    `raw` is the event as received (bytes or text; JSON numbers are read exactly) or an
    already decoded object. `source` ("rabbitmq", "http", ...) is recorded on the row.
    `tenant_id`, when given, is the only tenant the caller may act for (the HTTP key's):
    an event for any other is `forbidden` before anything is written. Returns a result
    for every bad input; raises only on infrastructure errors (database unavailable),
    which the caller should treat as "try again later".
    """
    try:
        event = parse_po_event(raw)
    except InvalidPoEvent as exc:
        log.warning("PO event rejected (%s): %s", source, exc)
        return _rejected(exc.problems)
    if tenant_id is not None and event.tenant_id != tenant_id:
        return _forbidden(event, tenant_id, source)
    notice = notice_for(event, source=source)
    try:
        enqueued = _send_once(notice, engine)
    except NoticeRejected as exc:
        problems = list(getattr(exc, "problems", None) or [str(exc)])
        log.warning(
            "PO event %s for PO %s (tenant %s) rejected (%s): %s",
            event.event_id, event.po.number, event.tenant_id, source, "; ".join(problems),
        )  # fmt: skip
        return _rejected(problems, event)
    message = enqueued.message
    status: IntakeStatus = "enqueued" if enqueued.created else "duplicate"
    reason = None
    if not enqueued.created:
        reason = (
            f"PO {event.po.number} was already notified to this supplier "
            f"(message {message.id}, status {message.status}); nothing new is sent"
        )
    log.info(
        "PO event %s for PO %s (tenant %s) via %s: %s, message %s",
        event.event_id, event.po.number, event.tenant_id, source, status, message.id,
    )  # fmt: skip
    return IntakeResult(
        status=status,
        message_id=message.id,
        reason=reason,
        event_id=event.event_id,
        tenant_id=event.tenant_id,
        po_number=event.po.number,
    )


def notice_for(event: PoApprovedEvent, *, source: str) -> PoNotice:
    """The PO notice an approved-PO event asks for (the `po_notification` template)."""
    return PoNotice(
        tenant_id=event.tenant_id,
        supplier_name=event.supplier.name,
        phone=event.supplier.phone,
        po_number=event.po.number,
        amount=event.total.amount,
        currency=event.total.currency,
        language=event.supplier.language,
        po_id=event.po.id,
        supplier_ref=event.supplier.id,
        document_url=event.document_url,
        created_by=f"erp event {event.event_id}"[:120],
        source=source,
        consent_confirmed=event.supplier.whatsapp_consent is True,
        phone_number_id=event.sender_phone_number_id,
    )


def _send_once(notice: PoNotice, engine: Engine | None) -> EnqueueResult:
    """`send_po_notice`, tried again when a concurrent writer won a unique constraint."""
    for attempt in range(1, RACE_ATTEMPTS + 1):
        try:
            return send_po_notice(notice, engine=engine)
        except IntegrityError:
            if attempt == RACE_ATTEMPTS:
                raise
            log.info(
                "PO %s (tenant %s): a concurrent writer got there first; reading it back",
                notice.po_number, notice.tenant_id,
            )  # fmt: skip
    raise AssertionError("unreachable")  # pragma: no cover


def _rejected(problems: list[str], event: PoApprovedEvent | None = None) -> IntakeResult:
    return IntakeResult(
        status="rejected",
        reason="; ".join(problems),
        problems=tuple(problems),
        event_id=event.event_id if event else None,
        tenant_id=event.tenant_id if event else None,
        po_number=event.po.number if event else None,
    )


def _forbidden(event: PoApprovedEvent, allowed: str, source: str) -> IntakeResult:
    reason = (
        f"this API key may send events for tenant {allowed!r} only;"
        f" the event is for tenant {event.tenant_id!r}"
    )
    log.warning("PO event %s refused (%s): %s", event.event_id, source, reason)
    return IntakeResult(
        status="forbidden",
        reason=reason,
        problems=(reason,),
        event_id=event.event_id,
        tenant_id=event.tenant_id,
        po_number=event.po.number,
    )


def short_error(exc: BaseException) -> str:
    """One line about an error for logs, without the SQL statement and its parameters."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner)
    first = text.splitlines()[0] if text else ""
    return f"{type(inner).__name__}: {first}"[:300] if first else type(inner).__name__
