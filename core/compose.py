"""Composing one PO notice in the dashboard: pick a supplier and template, check, send, follow.

The send page only draws widgets; everything it shows comes from here: the tenant's
suppliers matching a search, the approved templates that can carry a PO notice, a
*draft* (what the supplier will see and every problem, without writing anything), the
send itself (role checked, idempotent per PO, supplier and template) and the message's
live status as webhooks arrive.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, func, or_
from sqlmodel import Session, col, select

from core.auth import Action, require, write_tenant
from core.consent import consent_state, refusal_for
from core.consent.policy import ConsentStateName, source_label
from core.formatting import format_moment
from core.i18n import _
from core.keys import po_notice_key
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.suppliers import Supplier
from core.money import DecimalMark, InvalidAmount, normalize_currency, parse_amount
from core.notify import (
    NoticeRejected,
    PoNotice,
    normalised_phone,
    prepare_po_notice,
    resolve_template,
    send_po_notice,
    supplier_at,
)
from core.supplier_labels import supplier_label
from core.templates import (
    Preview,
    TemplateDefinition,
    build_po_notice_params,
    definition_of,
    is_po_notice_template,
    list_templates,
    render_preview,
    validate_parameters,
)
from core.templates.definition import NAMED
from core.templates.po import PO_FIELDS
from core.users import UserInfo

MAX_SEARCH = 50
#: Statuses after which nothing more will happen to a message on its own.
FINAL_STATUSES = frozenset(
    {
        MessageStatus.READ,
        MessageStatus.FAILED,
        MessageStatus.CANCELLED,
        MessageStatus.NEEDS_ATTENTION,
    }
)


@dataclass(frozen=True)
class SupplierChoice:
    """A supplier the buyer may pick: enough to fill the form and label the option."""

    id: int
    name: str
    phone_e164: str
    language: str
    consent: ConsentStateName = "unknown"
    external_ref: str | None = None  # the ERP's id, shown when another shares the name
    namesake: bool = False  # another supplier in the same list has this name

    @property
    def label(self) -> str:
        """How the option reads in a select box (an opted-out supplier says so)."""
        if self.consent == "opted_out":
            return _("{name} · {phone} · opted out").format(name=self.name, phone=self.phone_e164)
        return supplier_label(self.name, self.phone_e164, self.external_ref, with_ref=self.namesake)


@dataclass(frozen=True)
class ConsentInfo:
    """A number's consent, as the send page shows it before anything is sent.

    `state`: consenting, opted_out or unknown (no supplier, or none recorded). `refusal`:
    why a send would be refused unless the buyer confirms consent (None: it may go).
    `detail`: how and when consent or the opt-out was recorded, in words.
    """

    state: ConsentStateName
    known: bool
    refusal: str | None
    detail: str | None

    @property
    def can_confirm(self) -> bool:
        """True when the buyer may record consent with this send (never over an opt-out)."""
        return self.state == "unknown"


@dataclass(frozen=True)
class TemplateChoice:
    """An approved template (one language) that can carry a PO notice."""

    name: str
    language: str
    category: str
    needs_document: bool = False  # the header is the PO's PDF: a link is required
    po_notice: bool = True  # takes a PO notice's values (supplier, PO number, amount)

    @property
    def label(self) -> str:
        """How the option reads in a select box."""
        return f"{self.name} ({self.language})"


@dataclass(frozen=True)
class NoticeForm:
    """What the buyer typed, as text: parsed and checked by `draft_notice`."""

    supplier_name: str
    phone: str
    po_number: str
    amount: str
    currency: str
    template_name: str
    language: str
    document_url: str = ""
    decimal: DecimalMark = "auto"
    consent_confirmed: bool = False  # the buyer ticked "the supplier agreed"
    #: one of the tenant's numbers to send from (None: its default; `core.routing`)
    phone_number_id: str | None = None


@dataclass(frozen=True)
class Draft:
    """A checked form: the supplier's view and every problem; nothing has been written."""

    preview: Preview | None
    problems: list[str]
    notice: PoNotice | None = None  # set when the values parse (even if other checks fail)
    recipient: str | None = None  # E.164
    idempotency_key: str | None = None

    @property
    def ok(self) -> bool:
        """True when one click may send it."""
        return not self.problems and self.notice is not None


@dataclass(frozen=True)
class SendOutcome:
    """What a click on Send did: the message, and whether an earlier one already existed."""

    message_id: str
    created: bool
    status: str


@dataclass(frozen=True)
class StatusStep:
    """One stage of a message's life and when it was reached (None: not yet)."""

    name: str
    at: datetime | None


@dataclass(frozen=True)
class MessageState:
    """A message's status for the live panel, with the time of each stage."""

    id: str
    status: str
    recipient: str
    po_number: str | None
    steps: list[StatusStep] = field(default_factory=list)
    error: str | None = None

    @property
    def final(self) -> bool:
        """True when no further webhook is expected to change it."""
        return self.status in FINAL_STATUSES


def search_suppliers(
    engine: Engine, tenant_id: str, query: str = "", *, limit: int = 20
) -> list[SupplierChoice]:
    """The tenant's active suppliers whose name or phone contains `query`, by name.

    The query is matched case-insensitively as plain text (never as a pattern: `%` and
    `_` are literal), and phone digits match whatever spacing the buyer types.
    """
    limit = max(1, min(limit, MAX_SEARCH))
    text = (query or "").strip()[:100]
    stmt = select(Supplier).where(
        col(Supplier.tenant_id) == tenant_id, col(Supplier.is_active).is_(True)
    )
    if text:
        needle = f"%{_escape_like(text.lower())}%"
        conditions = [func.lower(col(Supplier.name)).like(needle, escape="\\")]
        digits = "".join(ch for ch in text if ch.isdigit())
        if digits:
            conditions.append(col(Supplier.phone_e164).like(f"%{digits}%"))
        stmt = stmt.where(or_(*conditions))
    stmt = stmt.order_by(func.lower(col(Supplier.name)), col(Supplier.id)).limit(limit)
    with Session(engine) as session:
        found = session.exec(stmt).all()
        names = Counter(s.name.strip().casefold() for s in found)
        return [
            SupplierChoice(
                s.id or 0,
                s.name,
                s.phone_e164,
                s.language,
                consent_state(s),
                external_ref=s.external_ref,
                namesake=names[s.name.strip().casefold()] > 1,
            )
            for s in found
        ]


def supplier_consent(engine: Engine, tenant_id: str, phone: str) -> ConsentInfo | None:
    """The consent of the tenant's supplier at `phone` (None when the phone is not valid).

    For the send page, before the buyer sends: an opted-out supplier is refused with the
    reason; one without recorded consent is refused unless the tenant allows it or the
    buyer confirms consent.
    """
    try:
        recipient = normalised_phone(phone)
    except NoticeRejected:
        return None
    with Session(engine) as session:
        supplier = supplier_at(session, tenant_id, recipient)
        refusal = refusal_for(session, tenant_id, supplier)
        state = consent_state(supplier)
        detail = None
        if supplier is not None and state == "opted_out" and supplier.opted_out_at:
            detail = _("Opted out on {date} by {source}").format(
                date=f"{format_moment(supplier.opted_out_at, 'UTC')} UTC",  # the one format
                source=source_label(supplier.opt_out_source),
            )
        elif supplier is not None and state == "consenting" and supplier.opted_in_at:
            detail = _("Consent recorded on {date} by {source}").format(
                date=f"{format_moment(supplier.opted_in_at, 'UTC')} UTC",
                source=source_label(supplier.consent_source),
            )
            if supplier.consent_by:
                detail += f" ({supplier.consent_by})"
    return ConsentInfo(
        state, supplier is not None, refusal.reason if refusal else None, detail
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def sendable_templates(engine: Engine, tenant_id: str) -> list[TemplateChoice]:
    """The tenant's sendable templates (approved, active, not held), by name and language."""
    with Session(engine) as session:
        rows = list_templates(session, tenant_id, approved_only=True)
        definitions = [definition_of(row) for row in rows]
    return [
        TemplateChoice(
            d.name,
            d.language,
            d.category,
            d.header_format == "DOCUMENT",
            is_po_notice_template(d),
        )
        for d in definitions
        if d.is_sendable
    ]


def po_notice_templates(engine: Engine, tenant_id: str) -> list[TemplateChoice]:
    """The sendable templates that can carry a PO notice (what the send page offers)."""
    return [t for t in sendable_templates(engine, tenant_id) if t.po_notice]


def draft_notice(engine: Engine, user: UserInfo, form: NoticeForm) -> Draft:
    """Check the form as the send would, and render what the supplier will see.

    Every problem is listed at once (the amount, the phone, the template, each
    parameter), and the preview is shown even while the phone is still wrong. Nothing
    is written: a supplier the notice would add is rolled back.
    """
    tenant = write_tenant(user)
    problems: list[str] = []
    amount: Decimal | None = None
    currency: str | None = None
    try:
        amount = parse_amount(form.amount, form.decimal)
    except InvalidAmount as exc:
        problems.append(_("Amount: {reason}").format(reason=exc))
    try:
        currency = normalize_currency(form.currency)
    except InvalidAmount as exc:
        problems.append(_("Currency: {reason}").format(reason=exc))
    recipient: str | None = None
    if form.phone.strip():
        try:
            recipient = normalised_phone(form.phone)
        except NoticeRejected as exc:
            problems.extend(exc.problems)
    else:
        problems.append(_("The phone number is missing"))
    if not form.supplier_name.strip():
        problems.append(_("The supplier name is empty"))
    if not form.po_number.strip():
        problems.append(_("The PO number is empty"))
    preview: Preview | None = None
    notice: PoNotice | None = None
    with Session(engine) as session:
        try:
            definition = resolve_template(session, tenant, form.template_name, form.language)
        except NoticeRejected as exc:
            return Draft(None, _unique(problems + exc.problems))
        if amount is not None and currency is not None:
            try:
                params = build_po_notice_params(
                    definition,
                    form.supplier_name.strip(),
                    form.po_number.strip(),
                    amount,
                    currency,
                    document_link=form.document_url.strip() or None,
                )
                preview = render_preview(definition, params)
                problems.extend(p.message for p in validate_parameters(definition, params))
            except ValueError as exc:
                problems.append(str(exc))
            notice = PoNotice(
                tenant_id=tenant,
                supplier_name=form.supplier_name,
                phone=form.phone,
                po_number=form.po_number,
                amount=amount,
                currency=currency,
                language=form.language,
                template_name=form.template_name,
                document_url=form.document_url.strip() or None,
                created_by=user.username,
                source="dashboard",
                consent_confirmed=form.consent_confirmed,
                phone_number_id=form.phone_number_id,
            )
            if recipient is not None:
                try:  # the send's own checks, so the draft never promises more than it does
                    prepare_po_notice(session, notice)
                except NoticeRejected as exc:
                    problems.extend(exc.problems)
        session.rollback()
        if preview is None:  # a partial form previews honestly: unfilled {{names}} stay
            preview = render_preview(definition, _partial_params(definition, form))
    key = None
    if recipient is not None and form.po_number.strip():
        key = po_notice_key(form.po_number, recipient, form.template_name)
    return Draft(preview, _unique(problems), notice, recipient, key)


def send_notice(engine: Engine, user: UserInfo, draft: Draft) -> SendOutcome:
    """Queue the drafted notice once (PermissionDenied unless the user may send).

    The same PO, supplier and template give the same idempotency key, so a double
    click, a rerun or a second buyer returns the first message (`created` False).
    Raises NoticeRejected when the draft has problems.
    """
    require(user, Action.SEND)
    if not draft.ok or draft.notice is None:
        raise NoticeRejected(draft.problems or ["Nothing to send"])
    notice = draft.notice
    if notice.tenant_id != write_tenant(user):
        raise NoticeRejected(["This notice belongs to another tenant"])
    result = send_po_notice(notice, engine=engine)
    return SendOutcome(result.message.id, result.created, str(result.message.status))


def message_state(engine: Engine, tenant_id: str, message_id: str) -> MessageState | None:
    """The message's status and stage times, or None if it is not the tenant's."""
    with Session(engine) as session:
        row = session.get(WhatsAppMessage, message_id)
        if row is None or row.tenant_id != tenant_id:
            return None
        steps = [
            StatusStep("queued", row.created_at),
            StatusStep("accepted", row.accepted_at),
            StatusStep("sent", row.sent_at),
            StatusStep("delivered", row.delivered_at),
            StatusStep("read", row.read_at),
        ]
        if row.failed_at is not None:
            steps.append(StatusStep("failed", row.failed_at))
        error = None
        if row.status in (MessageStatus.FAILED, MessageStatus.NEEDS_ATTENTION):
            error = row.error_message or row.error_title or "No reason given"
        return MessageState(
            row.id, str(row.status), row.recipient_phone, row.po_number, steps, error
        )


def _partial_params(definition: TemplateDefinition, form: NoticeForm) -> dict[str, str]:
    """The PO notice values the form already has, keyed as the template names them."""
    keys = PO_FIELDS if definition.parameter_format == NAMED else ("1", "2", "3")
    values = (form.supplier_name.strip(), form.po_number.strip())
    return {key: value for key, value in zip(keys, values, strict=False) if value}


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
