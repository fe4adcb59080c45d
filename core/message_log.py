"""The message log: find messages by phone, PO number, status and date; one message's
timeline of events; a person's deliberate resend of a failed or stuck message.

The messages page draws these. Searches are scoped to tenants the caller has already
checked (`core.auth.scope_tenants`), paged in SQL (a page never ships more than
`MAX_PAGE_SIZE` rows), and treat typed text as plain text, never as a LIKE pattern.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select
from sqlmodel import Session

from core.auth import Action, PermissionDenied, require, write_tenant
from core.errors import human_reason, resend_cannot_fix
from core.i18n import N_, _
from core.meta_words import category_words, pricing_type_words
from core.models.events import InboundMessage, MessageStatusEvent, PoAcknowledgement
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.suppliers import Supplier
from core.outbox import RESENDABLE, OutboxError, resend
from core.paging import ResultPage
from core.stats import StatsFilterError, local_midnight
from core.users import UserInfo

MAX_PAGE_SIZE = 200
MAX_TEXT = 64
_DEMO_PREFIX = "demo:"

_M = WhatsAppMessage.__table__.c  # type: ignore[attr-defined]
_S = Supplier.__table__.c  # type: ignore[attr-defined]
_E = MessageStatusEvent.__table__.c  # type: ignore[attr-defined]
_I = InboundMessage.__table__.c  # type: ignore[attr-defined]
_A = PoAcknowledgement.__table__.c  # type: ignore[attr-defined]


class SearchError(ValueError):
    """A search that cannot run as given; the message says what to change."""


@dataclass(frozen=True)
class MessageSearch:
    """What to look for. Empty fields match everything; dates are days in zone `tz`."""

    tenant_ids: tuple[str, ...]
    phone: str = ""  # any digits of the number, spacing ignored
    po_number: str = ""  # part of the PO number, case-insensitive
    statuses: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None
    tz: str = "UTC"
    page: int = 1
    page_size: int = 50

    def __post_init__(self) -> None:
        if not self.tenant_ids:
            raise SearchError(_("Choose at least one tenant"))
        known = {s.value for s in MessageStatus}
        unknown = [s for s in self.statuses if s not in known]
        if unknown:
            shown = repr(str(unknown[0])[:30])
            raise SearchError(_("Unknown status {status}").format(status=shown))
        if self.start and self.end and self.end < self.start:
            raise SearchError(_("The end date is before the start date"))
        if len(self.phone) > MAX_TEXT or len(self.po_number) > MAX_TEXT:
            raise SearchError(_("Search texts are at most {n} characters").format(n=MAX_TEXT))
        if self.phone.strip() and not _digits(self.phone):
            raise SearchError(_("A phone search needs some digits"))
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise SearchError(_("A page holds 1 to {n} messages").format(n=MAX_PAGE_SIZE))
        if self.page < 1:
            raise SearchError(_("Pages are numbered from 1"))
        try:
            local_midnight(date(2000, 1, 1), self.tz)
        except StatsFilterError as exc:
            raise SearchError(str(exc)) from None


#: Why a failed message is not offered for a resend (`MessageDetail.resend_futile`).
RESEND_FUTILE = N_(
    "{reason}: a resend sends the same message and would fail the same way. Fix the "
    "template or the data, then send a new notice."
)


@dataclass(frozen=True)
class MessageRow:
    """One line of the result list."""

    id: str
    tenant_id: str
    created_at: datetime
    recipient_phone: str
    supplier: str | None
    po_number: str | None
    template_name: str | None
    status: str
    error: str | None  # a human reason for failed / needs-attention messages
    delivered_at: datetime | None
    read_at: datetime | None
    replied_at: datetime | None
    is_demo: bool

    @property
    def resendable(self) -> bool:
        """True when a person may deliberately resend it."""
        return self.status in RESENDABLE


#: One page of MessageRow rows.
MessagePage = ResultPage[MessageRow]


@dataclass(frozen=True)
class TimelineEvent:
    """Something that happened to a message, in time order."""

    at: datetime
    kind: str  # queued, accepted, sent, delivered, read, failed, reply, acknowledgement...
    title: str
    detail: str | None = None


@dataclass(frozen=True)
class MessageDetail:
    """A message with everything the detail panel shows."""

    row: MessageRow
    body_text: str | None
    template_language: str | None
    attempt_count: int
    error_code: int | None
    created_by: str | None
    resend_of: str | None
    resent_as: tuple[str, ...]
    events: list[TimelineEvent]
    reached_meta: bool = False  # WhatsApp accepted it (it has an accepted or sent time)

    @property
    def attempts(self) -> int:
        """How many times it was handed to WhatsApp: the failed tries the sender counts
        (`attempt_count`), plus the one WhatsApp accepted. 0 means never sent (still
        queued, or stopped before sending: a held template, a refusal)."""
        return self.attempt_count + (1 if self.reached_meta else 0)

    @property
    def resend_futile(self) -> bool:
        """True when a resend would fail the same way (see `core.errors.resend_cannot_fix`):
        the page says so instead of offering it."""
        return self.row.status == MessageStatus.FAILED and resend_cannot_fix(self.error_code)


def search_messages(engine: Engine, search: MessageSearch) -> MessagePage:
    """The page `search.page` of matching messages, newest first, and the total count."""
    conditions: list[Any] = [_M.tenant_id.in_(list(search.tenant_ids))]
    if digits := _digits(search.phone):
        conditions.append(_M.recipient_phone.like(f"%{digits}%"))
    if po := search.po_number.strip():
        conditions.append(func.lower(_M.po_number).like(f"%{_escape(po.lower())}%", escape="\\"))
    if search.statuses:
        conditions.append(_M.status.in_(list(search.statuses)))
    if search.start is not None:
        conditions.append(_M.created_at >= local_midnight(search.start, search.tz))
    if search.end is not None:
        conditions.append(
            _M.created_at < local_midnight(search.end + timedelta(days=1), search.tz)
        )
    where = and_(*conditions)
    query = (
        select(*_ROW_COLUMNS, _S.name.label("supplier_name"))
        .select_from(WhatsAppMessage.__table__.outerjoin(  # type: ignore[attr-defined]
            Supplier.__table__, _S.id == _M.supplier_id  # type: ignore[attr-defined]
        ))
        .where(where)
        .order_by(_M.created_at.desc(), _M.id.desc())
        .limit(search.page_size)
        .offset((search.page - 1) * search.page_size)
    )  # fmt: skip
    with engine.connect() as conn:
        total = int(conn.execute(select(func.count()).where(where)).scalar_one())
        rows = [_row(r) for r in conn.execute(query)]
    return MessagePage(rows=rows, total=total, page=search.page, page_size=search.page_size)


@dataclass(frozen=True)
class UnlinkedReply:
    """A supplier's message tied to no notice (no `context.id`, no PO that names one)."""

    at: datetime
    tenant_id: str
    supplier: str | None  # the supplier's name; None when the number is unknown or shared
    from_wa_id: str
    message_type: str
    text: str | None  # the supplier's words: show as text, never Markdown
    payload: str | None


#: Unlinked replies listed at most.
MAX_UNLINKED = 200


def unlinked_replies(
    engine: Engine, tenant_ids: tuple[str, ...], *, limit: int = 50
) -> list[UnlinkedReply]:
    """The newest supplier messages of `tenant_ids` that answer no notice, so a person
    sees what the webhook could not tie to a PO (at most `limit`, capped at 200)."""
    if not tenant_ids:
        return []
    limit = max(1, min(limit, MAX_UNLINKED))
    query = (
        select(_I.at, _I.tenant_id, _S.name.label("supplier_name"), _I.from_wa_id,
               _I.message_type, _I.text, _I.payload)
        .select_from(_I.id.table.outerjoin(_S.id.table, _S.id == _I.supplier_id))
        .where(_I.tenant_id.in_(list(tenant_ids)), _I.context_message_id.is_(None),
               _I.message_type != "system")
        .order_by(_I.at.desc(), _I.id)
        .limit(limit)
    )  # fmt: skip
    with engine.connect() as conn:
        return [
            UnlinkedReply(r.at, r.tenant_id, r.supplier_name, r.from_wa_id, r.message_type,
                          r.text, r.payload)
            for r in conn.execute(query)
        ]  # fmt: skip


def message_detail(
    engine: Engine, tenant_ids: tuple[str, ...], message_id: str
) -> MessageDetail | None:
    """A message of one of `tenant_ids` with its timeline; None if unknown or foreign."""
    query = (
        select(*_ROW_COLUMNS, _S.name.label("supplier_name"), _M.body_text,
               _M.template_language, _M.attempt_count, _M.error_code, _M.created_by,
               _M.metadata, _M.accepted_at, _M.sent_at, _M.failed_at, _M.error_message,
               _M.error_title)
        .select_from(WhatsAppMessage.__table__.outerjoin(  # type: ignore[attr-defined]
            Supplier.__table__, _S.id == _M.supplier_id  # type: ignore[attr-defined]
        ))
        .where(_M.id == str(message_id)[:36], _M.tenant_id.in_(list(tenant_ids)))
    )  # fmt: skip
    with engine.connect() as conn:
        found = conn.execute(query).first()
        if found is None:
            return None
        events = _timeline(conn, found)
    meta = found.metadata if isinstance(found.metadata, dict) else {}
    resent = meta.get("resent_as")
    return MessageDetail(
        row=_row(found),
        body_text=found.body_text,
        template_language=found.template_language,
        attempt_count=int(found.attempt_count or 0),
        error_code=found.error_code,
        created_by=found.created_by,
        resend_of=str(meta["resend_of"]) if meta.get("resend_of") else None,
        resent_as=tuple(str(x) for x in resent) if isinstance(resent, list) else (),
        events=events,
        reached_meta=found.accepted_at is not None or found.sent_at is not None,
    )


def resend_message(engine: Engine, user: UserInfo, message_id: str) -> str:
    """Resend a failed or needs-attention message on a person's word; the new message's id.

    The role is checked here (not only by the page), and only messages of the user's
    own tenant can be resent: sending always happens for the home tenant.
    """
    require(user, Action.RESEND)
    tenant = write_tenant(user)
    with Session(engine) as session:
        row = session.get(WhatsAppMessage, str(message_id)[:36])
        if row is None or row.tenant_id not in user.tenants:
            raise OutboxError(_("No such message"))
        if row.tenant_id != tenant:
            raise PermissionDenied(_("Messages of another tenant cannot be resent from here"))
        if row.status == MessageStatus.FAILED and resend_cannot_fix(row.error_code):
            raise OutboxError(_(RESEND_FUTILE).format(reason=human_reason(row.error_code)))
    copy = resend(message_id, user.username, engine=engine, tenant_id=tenant)
    return copy.id


# --- helpers -------------------------------------------------------------------------

_ROW_COLUMNS = (
    _M.id, _M.tenant_id, _M.created_at, _M.recipient_phone, _M.po_number, _M.template_name,
    _M.status, _M.error_code.label("code"), _M.error_title.label("title"),
    _M.delivered_at, _M.read_at, _M.replied_at, _M.idempotency_key,
)  # fmt: skip


def _row(r: Any) -> MessageRow:
    status = str(r.status)
    error = None
    if status == MessageStatus.FAILED:
        error = human_reason(r.code, r.title)
    elif status == MessageStatus.NEEDS_ATTENTION:
        error = _("Outcome unknown after an interruption: check, then resend or leave it")
    return MessageRow(
        id=r.id,
        tenant_id=r.tenant_id,
        created_at=r.created_at,
        recipient_phone=r.recipient_phone,
        supplier=r.supplier_name,
        po_number=r.po_number,
        template_name=r.template_name,
        status=status,
        error=error,
        delivered_at=r.delivered_at,
        read_at=r.read_at,
        replied_at=r.replied_at,
        is_demo=str(r.idempotency_key).startswith(_DEMO_PREFIX),
    )


def _timeline(conn: Any, m: Any) -> list[TimelineEvent]:
    """The outbox's own moments, every status webhook, replies and button presses."""
    by = _("by {who}").format(who=m.created_by or _("the system"))
    events = [TimelineEvent(m.created_at, "queued", _("Queued"), by)]
    if m.accepted_at is not None:
        events.append(TimelineEvent(m.accepted_at, "accepted", _("Accepted by WhatsApp")))
    seen_status = False
    for e in conn.execute(
        select(_E.at, _E.status, _E.error_code, _E.error_title, _E.error_details,
               _E.pricing_category, _E.pricing_type)
        .where(_E.message_id == m.id)
        .order_by(_E.at, _E.id)
    ):  # fmt: skip
        seen_status = True
        detail = None
        if e.error_code is not None or e.error_title:
            detail = f"{human_reason(e.error_code, e.error_title)}"
            if e.error_code is not None:
                detail = _("{reason} (Meta error {code})").format(reason=detail, code=e.error_code)
            if e.error_details:
                detail += f": {e.error_details}"
        elif e.pricing_category:
            detail = _("Pricing: {category}, {type}").format(
                category=category_words(e.pricing_category),
                type=pricing_type_words(e.pricing_type) if e.pricing_type else _("type not given"),
            )
        events.append(TimelineEvent(e.at, str(e.status), _status_title(str(e.status)), detail))
    if not seen_status:  # statuses folded without a stored event (older rows)
        for at, kind in ((m.sent_at, "sent"), (m.delivered_at, "delivered"),
                         (m.read_at, "read"), (m.failed_at, "failed")):  # fmt: skip
            if at is not None:
                detail = human_reason(m.code, m.title) if kind == "failed" else None
                events.append(TimelineEvent(at, kind, _status_title(kind), detail))
    for i in conn.execute(
        select(_I.at, _I.message_type, _I.text, _I.payload)
        .where(_I.context_message_id == m.id)
        .order_by(_I.at)
    ):
        pressed = i.message_type in ("button", "interactive")
        label = _("Button pressed") if pressed else _("Reply")
        events.append(TimelineEvent(i.at, "reply", label, i.text or f"({i.message_type})"))
    if m.po_number:
        for a in conn.execute(
            select(_A.at, _A.action, _A.button_text)
            .where(_A.tenant_id == m.tenant_id, _A.po_number == m.po_number,
                   or_(_A.message_id == m.id, _A.message_id.is_(None)))
            .order_by(_A.at)
        ):  # fmt: skip
            events.append(
                TimelineEvent(a.at, "acknowledgement", _po_action(str(a.action)), a.button_text)
            )
    if m.status == MessageStatus.NEEDS_ATTENTION and m.error_message:
        events.append(
            TimelineEvent(m.created_at, "attention", _("Needs attention"), _(m.error_message))
        )
    events.sort(key=_timeline_order)
    return events


#: Within one second, the order a message's moments happen in. Meta dates its webhooks
#: to the second while our own times carry fractions, so "sent" at 12:00:00 would
#: otherwise come before "accepted" at 12:00:00.4.
_STAGE_ORDER = {"queued": 0, "accepted": 1, "sent": 2, "failed": 3, "delivered": 3, "read": 4}


def _timeline_order(event: TimelineEvent) -> tuple[datetime, int]:
    return event.at.replace(microsecond=0), _STAGE_ORDER.get(event.kind, len(_STAGE_ORDER))


#: A status webhook's title on the timeline, per status (translated where it is read).
_STATUS_TITLES = {
    "sent": N_("Status: sent"),
    "delivered": N_("Status: delivered"),
    "read": N_("Status: read"),
    "failed": N_("Status: failed"),
    "deleted": N_("Status: deleted"),
}
#: A supplier's button answer on a PO, per action.
_PO_ACTIONS = {"confirmed": N_("PO confirmed"), "rejected": N_("PO rejected")}


def _status_title(status: str) -> str:
    known = _STATUS_TITLES.get(status)
    return _(known) if known else _("Status: {status}").format(status=status)


def _po_action(action: str) -> str:
    known = _PO_ACTIONS.get(action)
    return _(known) if known else _("PO {action}").format(action=action)


def _digits(text: str) -> str:
    return "".join(ch for ch in (text or "") if ch.isascii() and ch.isdigit())


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
