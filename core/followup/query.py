"""The awaiting-answer list: PO notices delivered to a supplier and not confirmed.

A PO notice is a template message with a PO number that is not itself a reminder
(`reminders.REMINDER_PREFIX`). It is listed when it was delivered (or read) and the
supplier's latest answer to the PO is not "confirmed": rejections at once, whatever
their age (someone must act on them), the rest once the tenant's waiting time
(`settings.FollowUpSettings.after_hours`, 24 h by default) has passed since delivery.
The supplier's answer to the PO may come on the notice or on one of its reminders, so
answers are looked up by PO (tenant, PO number, supplier), not by message. When a notice
was resent, only the newest delivered one of that PO to that number is listed.

Rejected notices come first, then the longest waiting. Ages are measured from the one
injectable clock (`core.clock`) unless the caller passes `now`. Filters: supplier (part
of the name, or digits of the number), template, state, minimum age. Reads are paged in
SQL and scoped to tenants the caller has already checked (`core.auth.scope_tenants`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, Engine, and_, case, func, literal, or_, select, tuple_
from sqlalchemy.sql import ColumnElement

from core import clock
from core.followup.kind import REMINDER_PREFIX
from core.followup.settings import FollowUpSettings, load
from core.i18n import N_, _, ngettext
from core.models.events import InboundMessage, PoAcknowledgement
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier
from core.paging import ResultPage, clamp_page

MAX_PAGE_SIZE = 500
MAX_TEXT = 64

_M = WhatsAppMessage.__table__  # type: ignore[attr-defined]
_SUPPLIERS = Supplier.__table__  # type: ignore[attr-defined]
_INBOUND = InboundMessage.__table__  # type: ignore[attr-defined]
_S = _SUPPLIERS.c
_I = _INBOUND.c
_A = PoAcknowledgement.__table__.c  # type: ignore[attr-defined]


class State(StrEnum):
    """Where an unconfirmed notice stands."""

    REJECTED = "rejected"  # the supplier's latest answer to the PO is "reject"
    REPLIED = "replied"  # the supplier wrote or pressed something, not a confirmation
    UNANSWERED = "unanswered"  # not a word since delivery


#: The states as lists and filters name them (shown through `_()`).
STATE_NAMES = {
    State.REJECTED: N_("Rejected"),
    State.REPLIED: N_("Replied, not confirmed"),
    State.UNANSWERED: N_("No answer"),
}


class FollowUpQueryError(ValueError):
    """A filter that cannot run as given; the message says what to change."""


@dataclass(frozen=True)
class AwaitingFilter:
    """Which unconfirmed notices to list. Empty fields match everything."""

    tenant_ids: tuple[str, ...]
    supplier: str = ""  # part of the supplier's name, or digits of the number
    template: str = ""  # the notice's template name, exactly
    states: tuple[str, ...] = ()
    #: None: each tenant's waiting time (rejections of any age); else at least this old.
    min_age_hours: int | None = None
    #: None: any age; else delivered at most this long ago (automatic runs look back 14 d).
    max_age_hours: int | None = None
    page: int = 1
    page_size: int = 50

    def __post_init__(self) -> None:
        if not self.tenant_ids:
            raise FollowUpQueryError(_("Choose at least one tenant"))
        unknown = [s for s in self.states if s not in {x.value for x in State}]
        if unknown:
            raise FollowUpQueryError(
                _("Unknown state {state}").format(state=repr(str(unknown[0])[:30]))
            )
        if len(self.supplier) > MAX_TEXT or len(self.template) > 512:
            raise FollowUpQueryError(
                _("Search texts are at most {n} characters").format(n=MAX_TEXT)
            )
        if self.min_age_hours is not None and not 0 <= self.min_age_hours <= 24 * 365:
            raise FollowUpQueryError(_("The minimum age is 0 to 8760 hours"))
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise FollowUpQueryError(_("A page holds 1 to {n} notices").format(n=MAX_PAGE_SIZE))
        if self.page < 1:
            raise FollowUpQueryError(_("Pages are numbered from 1"))


@dataclass(frozen=True)
class AwaitingNotice:
    """One delivered PO notice still waiting for the supplier's confirmation."""

    message_id: str
    tenant_id: str
    po_number: str
    supplier_id: int | None
    supplier_name: str  # the directory's name (outside text), else the number
    phone: str
    template_name: str
    language: str | None
    status: str  # the notice's own status: delivered or read
    delivered_at: datetime
    age: timedelta
    state: State
    answer: str | None  # the latest acknowledgement: rejected, other (never confirmed)
    reply_text: str | None  # the supplier's latest words on this PO (outside text)
    replied_at: datetime | None
    reminders: int  # reminders queued for this PO so far (any outcome)
    last_reminder_at: datetime | None
    max_reminders: int  # the tenant's cap

    @property
    def reminders_left(self) -> int:
        """How many more reminders this PO may get."""
        return max(0, self.max_reminders - self.reminders)


def age_words(age: timedelta) -> str:
    """An age as a list shows it: "3 d 4 h", "5 h", "12 min" (never negative)."""
    seconds = max(0, int(age.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    if days:
        return _("{days} d {hours} h").format(days=days, hours=hours)
    if hours:
        return _("{hours} h").format(hours=hours)
    return _("{minutes} min").format(minutes=rest // 60)


def state_words(state: str) -> str:
    """A state in the reader's language."""
    name = STATE_NAMES.get(State(state)) if state in {s.value for s in State} else None
    return _(name) if name else state


def reminders_words(notice: AwaitingNotice) -> str:
    """ "1 of 2" reminders, as the list shows them."""
    return ngettext("{n} of {cap}", "{n} of {cap}", notice.reminders).format(
        n=notice.reminders, cap=notice.max_reminders
    )


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isascii() and ch.isdigit())


def _inner(tenant_ids: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """Every delivered, newest-of-its-PO notice with its latest answer and whether the
    supplier wrote anything on the PO. Each row's lookups are index seeks that read no
    table row in the common case: the answer from the acknowledgements' (tenant, PO, at)
    index; "replied" and "a newer notice" from the PO thread index of migration 0023
    (tenant, PO, number, created_at, id, replied_at; `replied_at` is kept by the triggers of
    0005 for a reply or a button on any message), where a newer message's row is read
    only when there is one (a reminder, a resent notice). The page's reply texts and
    reminders are read for its rows alone (`_extras`)."""
    m = _M.alias("m")
    thread = _M.alias("thread")  # the PO's messages to the same number
    delivered = func.coalesce(m.c.delivered_at, m.c.read_at)
    same_thread = and_(
        thread.c.tenant_id == m.c.tenant_id,
        thread.c.po_number == m.c.po_number,
        thread.c.recipient_phone == m.c.recipient_phone,
    )
    ack = (
        select(_A.action)
        .where(
            _A.tenant_id == m.c.tenant_id,
            _A.po_number == m.c.po_number,
            or_(
                _A.supplier_id == m.c.supplier_id,
                _A.supplier_id.is_(None),
                m.c.supplier_id.is_(None),
            ),
        )
        .order_by(_A.at.desc(), _A.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    replied = select(literal(1)).select_from(thread).where(
        same_thread, thread.c.replied_at.is_not(None)
    ).exists()  # fmt: skip

    def newer(*when: ColumnElement[bool]) -> ColumnElement[bool]:
        """A delivered notice of the thread after this one: an index range, empty unless
        a reminder or a resend exists (only then is a row read)."""
        return (
            select(literal(1))
            .select_from(thread)
            .where(
                same_thread,
                *when,
                thread.c.message_type == "template",
                ~thread.c.idempotency_key.like(f"{REMINDER_PREFIX}%"),
                func.coalesce(thread.c.delivered_at, thread.c.read_at).is_not(None),
            )
            .exists()
        )

    # (created_at, id) after the row's own: one index range on both dialects
    superseded = newer(tuple_(thread.c.created_at, thread.c.id) > tuple_(m.c.created_at, m.c.id))
    return (
        select(
            m.c.id.label("message_id"),
            m.c.tenant_id,
            m.c.po_number,
            m.c.supplier_id,
            func.coalesce(_S.name, m.c.recipient_phone).label("supplier_name"),
            m.c.recipient_phone.label("phone"),
            m.c.template_name,
            m.c.template_language.label("language"),
            m.c.status,
            delivered.label("delivered_at"),
            ack.label("answer"),
            replied.label("replied"),
        )
        .select_from(m.outerjoin(_SUPPLIERS, _S.id == m.c.supplier_id))
        .where(
            m.c.tenant_id.in_(tenant_ids),
            m.c.po_number.is_not(None),
            m.c.message_type == "template",
            delivered.is_not(None),
            ~m.c.idempotency_key.like(f"{REMINDER_PREFIX}%"),
            ~superseded,
        )
        # computed once: the answer is used by the filters, the state and the order,
        # and PostgreSQL would run its lookup again for each use of an inlined subquery
        .cte("notices")
        .prefix_with("MATERIALIZED")
    )


def _state(row_answer: ColumnElement[str], replied: ColumnElement[bool]) -> ColumnElement[str]:
    return case(
        (row_answer == "rejected", literal(State.REJECTED.value)),
        (or_(row_answer.is_not(None), replied), literal(State.REPLIED.value)),
        else_=literal(State.UNANSWERED.value),
    )


def awaiting(
    engine: Engine, search: AwaitingFilter, *, now: datetime | None = None
) -> ResultPage[AwaitingNotice]:
    """One page of the tenants' unconfirmed notices, rejected first, then oldest first."""
    now = now or clock.now()
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # For this read's transaction only: the lookups per row make the estimate
            # large enough for JIT compilation, which costs more (1.7 s) than the query.
            conn.exec_driver_sql("SET LOCAL jit = off")
        settings = {t: load(conn, t) for t in search.tenant_ids}
        inner = _inner(search.tenant_ids)
        c = inner.c
        state = _state(c.answer, c.replied)
        conditions: list[ColumnElement[bool]] = [
            func.coalesce(c.answer, "") != "confirmed",
        ]
        if search.min_age_hours is None:
            conditions.append(
                or_(
                    *(
                        and_(
                            c.tenant_id == tenant,
                            or_(c.answer == "rejected", c.delivered_at <= now - cfg.after),
                        )
                        for tenant, cfg in settings.items()
                    )
                )
            )
        else:
            conditions.append(c.delivered_at <= now - timedelta(hours=search.min_age_hours))
        if search.max_age_hours is not None:
            conditions.append(c.delivered_at >= now - timedelta(hours=search.max_age_hours))
        if text := search.supplier.strip():
            wanted = [func.lower(c.supplier_name).like(f"%{_escape(text.lower())}%", escape="\\")]
            digits = _digits(text)
            if digits and all(ch.isdigit() or ch in " +-().\u00a0" for ch in text):
                wanted.append(c.phone.like(f"%{digits}%"))
            conditions.append(or_(*wanted))
        if search.template:
            conditions.append(c.template_name == search.template)
        if search.states:
            conditions.append(state.in_(search.states))
        order = (case((c.answer == "rejected", 0), else_=1), c.delivered_at, c.message_id)
        numbered = (
            select(inner, state.label("state"),
                   func.row_number().over(order_by=order).label("position"),
                   func.count().over().label("total"))
            .where(*conditions)
            .subquery("numbered")
        )  # fmt: skip
        # One pass gives the page and the total; a page past the end (the list shrank
        # since it was shown) is answered with the last page, still in that pass.
        size, first = search.page_size, (search.page - 1) * search.page_size
        p = numbered.c
        last_start = ((p.total - 1) // size) * size
        rows = conn.execute(
            select(numbered)
            .where(or_(and_(p.position > first, p.position <= first + size),
                       and_(p.total <= first, p.position > last_start)))
            .order_by(p.position)
        ).all()  # fmt: skip
        total = int(rows[0].total) if rows else 0
        page = clamp_page(search.page, total, size)
        extras = _extras(conn, [(r.tenant_id, r.po_number, r.phone) for r in rows])
    notices = [
        _notice(row, now, settings[row.tenant_id], extras.get((row.tenant_id, row.po_number,
                                                               row.phone), _Extras()))
        for row in rows
    ]  # fmt: skip
    return ResultPage(notices, total, page, search.page_size)


@dataclass
class _Extras:
    """What the list shows of a PO beyond its row: the latest words and the reminders."""

    reply_text: str | None = None
    replied_at: datetime | None = None
    reminders: int = 0
    last_reminder_at: datetime | None = None


def _extras(
    conn: Connection, keys: list[tuple[str, str, str]]
) -> dict[tuple[str, str, str], _Extras]:
    """Reply texts and reminder counts of a page's POs, in two indexed queries (tenant
    and PO number), never per row of the whole list."""
    found: dict[tuple[str, str, str], _Extras] = {k: _Extras() for k in keys}
    if not keys:
        return found
    tenants = sorted({k[0] for k in keys})
    pos = sorted({k[1] for k in keys})
    m = _M.c
    reminders = conn.execute(
        select(m.tenant_id, m.po_number, m.recipient_phone, m.created_at).where(
            m.tenant_id.in_(tenants),
            m.po_number.in_(pos),
            m.idempotency_key.like(f"{REMINDER_PREFIX}%"),
        )
    )
    for tenant, po, phone, at in reminders:
        if (extra := found.get((tenant, po, phone))) is not None:
            extra.reminders += 1
            when = _aware(at)
            if when is not None and (
                extra.last_reminder_at is None or when > extra.last_reminder_at
            ):
                extra.last_reminder_at = when
    replies = conn.execute(
        select(m.tenant_id, m.po_number, m.recipient_phone, _I.text, _I.at, _I.id)
        .select_from(_M.join(_INBOUND, _I.context_message_id == m.id))
        .where(m.tenant_id.in_(tenants), m.po_number.in_(pos))
        .order_by(_I.at, _I.id)
    )
    for tenant, po, phone, text, at, _id in replies:  # oldest first: the last one stays
        if (extra := found.get((tenant, po, phone))) is not None:
            extra.reply_text, extra.replied_at = text, _aware(at)
    return found


def _aware(at: datetime | str | None) -> datetime | None:
    """A time from a computed column (SQLite returns those as text, without a zone)."""
    if at is None:
        return None
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _notice(row: object, now: datetime, cfg: FollowUpSettings, extra: _Extras) -> AwaitingNotice:
    r = row  # a Row: attribute access by label
    delivered = _aware(r.delivered_at)  # type: ignore[attr-defined]
    assert delivered is not None
    return AwaitingNotice(
        message_id=r.message_id,  # type: ignore[attr-defined]
        tenant_id=r.tenant_id,  # type: ignore[attr-defined]
        po_number=r.po_number,  # type: ignore[attr-defined]
        supplier_id=r.supplier_id,  # type: ignore[attr-defined]
        supplier_name=r.supplier_name,  # type: ignore[attr-defined]
        phone=r.phone,  # type: ignore[attr-defined]
        template_name=r.template_name or "",  # type: ignore[attr-defined]
        language=r.language,  # type: ignore[attr-defined]
        status=r.status,  # type: ignore[attr-defined]
        delivered_at=delivered,
        age=now - delivered,
        state=State(r.state),  # type: ignore[attr-defined]
        answer=r.answer,  # type: ignore[attr-defined]
        reply_text=extra.reply_text,
        replied_at=extra.replied_at,
        reminders=extra.reminders,
        last_reminder_at=extra.last_reminder_at,
        max_reminders=cfg.max_reminders,
    )


def notice_templates(engine: Engine, tenant_ids: tuple[str, ...]) -> list[str]:
    """The template names the tenants' PO notices were sent with (the template filter)."""
    m = _M.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(m.template_name)
            .where(
                m.tenant_id.in_(tenant_ids),
                m.po_number.is_not(None),
                m.template_name.is_not(None),
                ~m.idempotency_key.like(f"{REMINDER_PREFIX}%"),
            )
            .distinct()
            .order_by(m.template_name)
            .limit(100)
        )
        return [str(r[0]) for r in rows]


#: The columns of `notice_record`, in order (the CLI's --csv header, the --json keys).
RECORD_FIELDS = (
    "message_id", "tenant_id", "po_number", "supplier", "phone", "template", "status",
    "state", "delivered_at", "age_hours", "reminders", "max_reminders", "last_reminder_at",
    "replied_at", "reply_text",
)  # fmt: skip


def notice_record(notice: AwaitingNotice) -> dict[str, str | int | None]:
    """One notice as plain values (ISO times, whole hours of age) for JSON and CSV."""

    def iso(at: datetime | None) -> str | None:
        return at.isoformat(timespec="seconds") if at is not None else None

    return {
        "message_id": notice.message_id,
        "tenant_id": notice.tenant_id,
        "po_number": notice.po_number,
        "supplier": notice.supplier_name,
        "phone": notice.phone,
        "template": notice.template_name,
        "status": notice.status,
        "state": notice.state.value,
        "delivered_at": iso(notice.delivered_at),
        "age_hours": int(notice.age.total_seconds() // 3600),
        "reminders": notice.reminders,
        "max_reminders": notice.max_reminders,
        "last_reminder_at": iso(notice.last_reminder_at),
        "replied_at": iso(notice.replied_at),
        "reply_text": notice.reply_text,
    }
