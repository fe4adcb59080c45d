"""Reminders: the `po_reminder` template to a supplier who has not confirmed a PO notice.

A reminder is an ordinary template message through the one gate
(`core.notify.prepare_template_message`: consent, template, parameters) and the outbox
(so the same rate limits, pause and retries apply). Its idempotency key is built from
the PO, the number and the reminder's number (`reminder_key`): two clicks, two
buyers or two sender processes asking for the same reminder make one message. Before
it is queued, the rules of the PO are checked in this order:

1. the notice is the tenant's delivered PO notice and its PO is neither confirmed nor
   rejected (both are answers);
2. fewer reminders than the tenant's cap (default 2, any outcome counts) were queued;
3. the waiting time (the tenant's `after_hours`) has passed since the notice was
   delivered, or since the last reminder: one reminder per PO and interval;
4. the supplier may receive templates (`core.consent`: never an opted-out supplier).

A rejected PO gets no reminder, manual or automatic (`Outcome.REJECTED_PO`): the
supplier has answered, and a person calls them or sends a new notice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from core import clock
from core.auth import Action, require, write_tenant
from core.db import session_scope
from core.followup.kind import REMINDER_PREFIX, REMINDER_TEMPLATE
from core.followup.settings import FollowUpSettings, load
from core.i18n import N_, _
from core.models.events import PoAcknowledgement
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier
from core.notify import DEFAULT_LANGUAGE, NoticeRejected, prepare_template_message
from core.outbox import enqueue_many
from core.users import UserInfo

_A = PoAcknowledgement.__table__.c  # type: ignore[attr-defined]
_M = WhatsAppMessage.__table__.c  # type: ignore[attr-defined]


class Outcome(StrEnum):
    """What asking for a reminder did."""

    QUEUED = "queued"  # a new reminder is in the outbox
    ALREADY_QUEUED = "already_queued"  # this reminder (same key) existed: nothing new
    TOO_SOON = "too_soon"  # the waiting time since delivery or the last reminder runs
    CAPPED = "capped"  # the PO had its last reminder
    CONFIRMED = "confirmed"  # the supplier confirmed the PO meanwhile
    REJECTED_PO = "rejected_po"  # the supplier rejected the PO: answered, a person calls
    REFUSED = "refused"  # consent, template or parameters: `reason` says which
    NOT_FOUND = "not_found"  # no such PO notice of this tenant


#: Each outcome as a person reads it (shown through `_()`).
OUTCOME_WORDS = {
    Outcome.QUEUED: N_("Reminder queued"),
    Outcome.ALREADY_QUEUED: N_("Already reminded: this reminder was queued before"),
    Outcome.TOO_SOON: N_("Too soon: the waiting time since the last message has not passed"),
    Outcome.CAPPED: N_("No reminders left for this PO"),
    Outcome.CONFIRMED: N_("The supplier has confirmed this PO"),
    Outcome.REJECTED_PO: N_(
        "The supplier rejected this PO: it has been answered, so it gets no reminder; "
        "call the supplier or send a new PO notice"
    ),
    Outcome.REFUSED: N_("Refused"),
    Outcome.NOT_FOUND: N_("No such PO notice"),
}


@dataclass(frozen=True)
class ReminderResult:
    """The outcome for one notice; `reminder_id` and `number` when a reminder exists."""

    notice_id: str
    po_number: str | None
    outcome: Outcome
    reason: str | None = None  # the gate's words for REFUSED
    reminder_id: str | None = None
    number: int | None = None

    @property
    def words(self) -> str:
        """The outcome in the reader's language (with the refusal's reason)."""
        said = _(OUTCOME_WORDS[self.outcome])
        return f"{said}: {self.reason}" if self.reason else said


def reminder_key(po_number: str, recipient_e164: str, number: int) -> str:
    """The key of "reminder `number` of this PO to this number": one message, ever."""
    return f"{REMINDER_PREFIX}{po_number.strip()}:{recipient_e164}:{number}"


def send_reminders(
    engine: Engine, user: UserInfo, notice_ids: Sequence[str], *, now: datetime | None = None
) -> list[ReminderResult]:
    """A person's reminders for the chosen notices of their tenant (role checked), one
    result per notice in the order given; duplicates in the choice are asked once."""
    tenant = write_tenant(require(user, Action.FOLLOW_UP))
    now = now or clock.now()
    return [
        remind(engine, tenant, notice_id, now=now, by=user.username)
        for notice_id in dict.fromkeys(notice_ids)
    ]


def remind(
    engine: Engine,
    tenant_id: str,
    notice_id: str,
    *,
    now: datetime,
    by: str,
    automatic: bool = False,
) -> ReminderResult:
    """Queue the next reminder of one PO notice if the rules allow it (see the module)."""
    with session_scope(engine) as session:
        notice = session.get(WhatsAppMessage, str(notice_id)[:36])
        if notice is None or notice.tenant_id != tenant_id or not _is_notice(notice):
            return ReminderResult(str(notice_id)[:36], None, Outcome.NOT_FOUND)
        result = _remind_in(session, notice, load(session, tenant_id), now, by, automatic)
    return result


def _is_notice(message: WhatsAppMessage) -> bool:
    return (
        message.po_number is not None
        and message.message_type == "template"
        and not message.idempotency_key.startswith(REMINDER_PREFIX)
        and (message.delivered_at is not None or message.read_at is not None)
    )


def latest_answer(session: Session, notice: WhatsAppMessage) -> str | None:
    """The supplier's latest button answer to the notice's PO (on it or a reminder)."""
    query = (
        select(_A.action)
        .where(_A.tenant_id == notice.tenant_id, _A.po_number == notice.po_number)
        .order_by(_A.at.desc(), _A.id.desc())
        .limit(1)
    )
    if notice.supplier_id is not None:
        query = query.where((_A.supplier_id == notice.supplier_id) | _A.supplier_id.is_(None))
    value = session.execute(query).scalar()
    return str(value) if value is not None else None


def _reminders_so_far(session: Session, notice: WhatsAppMessage) -> tuple[int, datetime | None]:
    """How many reminders the PO got and when the last was queued. The few rows are read
    whole: an aggregate's MAX(created_at) lets SQLite walk the tenant's created_at index
    instead of the (tenant, PO) one."""
    times = session.execute(
        select(_M.created_at).where(
            _M.tenant_id == notice.tenant_id,
            _M.po_number == notice.po_number,
            _M.recipient_phone == notice.recipient_phone,
            _M.idempotency_key.like(f"{REMINDER_PREFIX}%"),
        )
    ).scalars()
    moments = [at if at.tzinfo is not None else at.replace(tzinfo=UTC) for at in times]
    return len(moments), max(moments, default=None)


def _remind_in(
    session: Session,
    notice: WhatsAppMessage,
    cfg: FollowUpSettings,
    now: datetime,
    by: str,
    automatic: bool,
) -> ReminderResult:
    po = notice.po_number or ""
    answer = latest_answer(session, notice)
    if answer == "confirmed":
        return ReminderResult(notice.id, po, Outcome.CONFIRMED)
    if answer == "rejected":  # answered ("no"): a reminder would ask a question again
        return ReminderResult(notice.id, po, Outcome.REJECTED_PO)
    count, last = _reminders_so_far(session, notice)
    if count >= cfg.max_reminders:
        return ReminderResult(notice.id, po, Outcome.CAPPED, number=count or None)
    delivered = notice.delivered_at or notice.read_at
    assert delivered is not None
    since = last or delivered
    if now - since < cfg.after:
        return ReminderResult(notice.id, po, Outcome.TOO_SOON, number=count or None)
    number = count + 1
    supplier = session.get(Supplier, notice.supplier_id) if notice.supplier_id else None
    try:
        prepared = prepare_template_message(
            session,
            tenant_id=notice.tenant_id,
            phone=notice.recipient_phone,
            template_name=REMINDER_TEMPLATE,
            language=notice.template_language
            or (supplier.language if supplier else None)
            or DEFAULT_LANGUAGE,
            params=_params(notice, supplier),
            idempotency_key=reminder_key(po, notice.recipient_phone, number),
            supplier=supplier,
            po_number=po,
            po_id=notice.po_id,
            created_by=by[:120],
            source="reminder",
        )
    except NoticeRejected as exc:
        return ReminderResult(notice.id, po, Outcome.REFUSED, reason="; ".join(exc.problems))
    outbound = prepared.outbound
    meta = {**(outbound.meta or {}), "reminder_of": notice.id, "reminder": number,
            "automatic": automatic}  # fmt: skip
    (queued,) = enqueue_many([replace(outbound, meta=meta)], session=session)
    if not queued.created:
        return ReminderResult(notice.id, po, Outcome.ALREADY_QUEUED, None,
                              queued.message.id, number)  # fmt: skip
    queued.message.created_at = now  # the clock that decided the interval dates it too
    queued.message.updated_at = now
    return ReminderResult(notice.id, po, Outcome.QUEUED, None, queued.message.id, number)


def _params(notice: WhatsAppMessage, supplier: Supplier | None) -> dict[str, Any]:
    given = notice.template_parameters or {}
    name = supplier.name if supplier is not None else given.get("supplier_name")
    return {"supplier_name": str(name or notice.recipient_phone), "po_number": notice.po_number}
