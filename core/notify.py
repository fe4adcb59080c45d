"""Sending notices: the one path from "notify this supplier" to a pending outbox row.

The dashboard, the CLI, ERP events (RabbitMQ and HTTP) and batches all come through
here: the phone is normalised, the template looked up and checked, the parameters
validated and previewed, and the exact Cloud API body stored with an idempotency key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core import clock
from core.cloud_api import text_message
from core.consent import ConsentGrant, grant, refusal_for
from core.consent.policy import ConsentHolder
from core.db import get_engine, session_scope
from core.i18n import _
from core.keys import content_key, po_notice_key
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier
from core.models.types import utcnow
from core.outbox import EnqueueResult, OutboundMessage, OutboxError, enqueue
from core.phones import (
    InvalidPhoneNumber,
    checked_e164,
    country_calling_code,
    normalize_phone,
    wa_digits,
)
from core.routing import NumberError, SenderNumber, engine_of, route_id
from core.sender import drain
from core.settings import get_settings
from core.templates import (
    Preview,
    SyncReport,
    TemplateDefinition,
    build_po_notice_params,
    definition_of,
    get_template,
    list_templates,
)
from core.templates.definition import NAMED
from core.templates.fill import fill
from core.templates.languages import pick_language
from core.templates.payload import payload_of
from core.templates.preview import preview_of
from core.templates.validate import content_problems, unsendable_problems

DEFAULT_LANGUAGE = "es"

log = logging.getLogger(__name__)


class NoticeRejected(ValueError):
    """A notice that cannot be sent as given; `problems` says why, in a buyer's words."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class PoNotice:
    """An approved PO to announce to its supplier (from the dashboard, CLI or ERP)."""

    tenant_id: str
    supplier_name: str
    phone: str  # as the ERP or the buyer wrote it; normalised here
    po_number: str
    amount: Decimal
    currency: str  # ISO 4217
    language: str | None = None  # None: the supplier's stored language, else "es"
    template_name: str = "po_notification"
    po_id: str | None = None
    supplier_ref: str | None = None  # the ERP's supplier id
    document_url: str | None = None
    created_by: str | None = None
    source: str = "api"  # dashboard, cli, rabbitmq, http, csv
    #: The sender confirms the supplier agreed to WhatsApp messages (the send page's
    #: checkbox, an ERP event's supplier.whatsapp_consent, `send --consent`): recorded
    #: as consent with `source` and `created_by`; never lifts an opt-out.
    consent_confirmed: bool = False
    #: one of the tenant's WhatsApp numbers to send from (None: the tenant's default)
    phone_number_id: str | None = None

    @property
    def consent(self) -> ConsentGrant | None:
        """The consent this notice records, if it confirms any."""
        if not self.consent_confirmed:
            return None
        return ConsentGrant(CONSENT_SOURCES.get(self.source, "api"), self.created_by)


#: How a notice's source is recorded as the source of the consent it confirms.
CONSENT_SOURCES = {
    "dashboard": "send_page",
    "cli": "cli",
    "rabbitmq": "erp",
    "http": "erp",
    "csv": "csv",
    "api": "api",
    "seed-api": "api",
}


class SupplierState(ConsentHolder, Protocol):
    """What preparing a message reads of its supplier: a `Supplier`, or a row of the
    suppliers table a batch read in bulk."""

    @property
    def id(self) -> int | None: ...


@dataclass(frozen=True)
class PreparedMessage:
    """A checked message ready for the outbox, and what the supplier will see."""

    outbound: OutboundMessage
    preview: Preview
    definition: TemplateDefinition


def resolve_template(
    session: Session, tenant_id: str, name: str, language: str
) -> TemplateDefinition:
    """The sendable template `name` in `language` (or in the same language's closest
    version, `core.templates.languages`), or NoticeRejected saying what exists."""
    row = get_template(session, tenant_id, name, language)
    if row is None:
        languages = sorted(
            t.language for t in list_templates(session, tenant_id) if t.template_name == name
        )
        closest = pick_language(language, languages)
        if closest is not None:
            row = get_template(session, tenant_id, name, closest)
    if row is None:
        if languages:
            raise NoticeRejected(
                [f"The template {name} has no {language!r} version ({', '.join(languages)} exist)"]
            )
        raise NoticeRejected(
            [f"There is no template {name!r}: sync templates from WhatsApp, or check the name"]
        )
    definition = definition_of(row)
    if (reason := definition.unsendable_reason) is not None:
        raise NoticeRejected([reason])
    return definition


def normalised_phone(raw: str) -> str:
    """E.164 for `raw` with the configured default region, or NoticeRejected with the reason."""
    try:
        return normalize_phone(raw, get_settings().whatsapp_default_region)
    except InvalidPhoneNumber as exc:
        raise NoticeRejected([str(exc)]) from None


def _checked(phone_e164: str) -> str:
    """A number the caller already normalised, checked to be E.164 (NoticeRejected if not)."""
    try:
        return checked_e164(phone_e164)
    except InvalidPhoneNumber as exc:
        raise NoticeRejected([str(exc)]) from None


def supplier_at(session: Session, tenant_id: str, phone_e164: str) -> Supplier | None:
    """The tenant's supplier at this E.164 number, if the directory has one."""
    return session.exec(
        select(Supplier).where(
            col(Supplier.tenant_id) == tenant_id, col(Supplier.phone_e164) == phone_e164
        )
    ).first()


def find_or_add_supplier(
    session: Session,
    tenant_id: str,
    phone_e164: str,
    *,
    name: str | None = None,
    language: str | None = None,
    external_ref: str | None = None,
    consent: ConsentGrant | None = None,
) -> Supplier:
    """The tenant's supplier at this number; a new one is recorded when a notice names it.

    A new supplier has no consent unless `consent` confirms it; given for a known
    supplier without consent, it is recorded now (`core.consent.grant`: never over an
    opt-out).
    """
    supplier = supplier_at(session, tenant_id, phone_e164)
    if supplier is None:
        now = utcnow()
        supplier = Supplier(
            tenant_id=tenant_id,
            name=(name or phone_e164).strip()[:200],
            phone_e164=phone_e164,
            language=language or DEFAULT_LANGUAGE,
            external_ref=external_ref,
            opted_in=False,
            created_at=now,
            updated_at=now,
        )
        session.add(supplier)
        session.flush()
    if consent is not None:
        grant(session, supplier, source=consent.source, by=consent.by)
    return supplier


def prepare_template_message(
    session: Session,
    *,
    tenant_id: str,
    phone: str,
    template_name: str,
    language: str,
    params: Mapping[str, Any] | None,
    idempotency_key: str | None = None,
    supplier: SupplierState | None = None,
    po_number: str | None = None,
    po_id: str | None = None,
    created_by: str | None = None,
    source: str = "api",
    batch_id: str | None = None,
    batch_row: int | None = None,
    definition: TemplateDefinition | None = None,
    phone_number_id: str | SenderNumber | None = None,
    phone_normalised: bool = False,
    unrecorded_allowed: bool | None = None,
) -> PreparedMessage:
    """Check and build one template message; NoticeRejected lists every problem found.

    Every template path (dashboard, CSV, ERP, CLI, seed call) comes through here, so the
    consent rule (`core.consent.refusal_for`) is applied here: an opted-out supplier, or
    one without recorded consent when the tenant refuses those, is refused with the
    reason before anything else.

    A caller preparing many messages of one template (a batch) passes its `definition`
    (resolved once by `resolve_template`), each row's `supplier` (looked up in bulk),
    the tenant's `unrecorded_allowed` consent setting (read once), and, with
    `phone_normalised`, a `phone` it already normalised with `normalised_phone` (a CSV
    plan does for every row; it is then only checked to be E.164), instead of having
    each looked up or parsed again for every message.
    """
    recipient = _checked(phone) if phone_normalised else normalised_phone(phone)
    if supplier is None:
        supplier = supplier_at(session, tenant_id, recipient)
    refusal = refusal_for(session, tenant_id, supplier, unrecorded_allowed=unrecorded_allowed)
    if refusal is not None:
        raise NoticeRejected([refusal.reason])  # consent first: no other problem matters
    if definition is None:
        definition = resolve_template(session, tenant_id, template_name, language)
    language = definition.language  # the version sent (es for es_ES when only es exists)
    filled = fill(definition, params)  # resolved once: checked, sent and previewed alike
    problems = unsendable_problems(definition) + content_problems(definition, filled)
    if problems:
        raise NoticeRejected([problem.message for problem in problems])
    payload = payload_of(definition, wa_digits(recipient), filled)
    preview = preview_of(definition, filled)
    plain_params = dict(params or {})
    sender_id = _sender_id(session, tenant_id, phone_number_id)
    outbound = OutboundMessage(
        tenant_id=tenant_id,
        idempotency_key=idempotency_key
        or content_key(recipient, [template_name, language, plain_params]),
        recipient_phone=recipient,
        request_payload=payload,
        message_type="template",
        template_name=template_name,
        template_language=language,
        template_parameters=_jsonable(plain_params),
        body_text=preview.body,
        recipient_country=country_calling_code(recipient),
        po_number=po_number,
        po_id=po_id,
        supplier_id=supplier.id if supplier is not None else None,
        batch_id=batch_id,
        batch_row=batch_row,
        created_by=created_by,
        meta={"source": source},
        phone_number_id=sender_id,
    )
    return PreparedMessage(outbound, preview, definition)


def _sender_id(session: Session, tenant_id: str, chosen: str | SenderNumber | None) -> str:
    """The number a tenant's message goes out from (`core.routing`): its default, or the
    chosen one when it is the tenant's; NoticeRejected saying why otherwise. A caller
    preparing many messages (a batch) routes once and passes the `SenderNumber`."""
    if isinstance(chosen, SenderNumber):
        if chosen.tenant_id != tenant_id and not chosen.from_environment:
            raise NoticeRejected([_("That WhatsApp number is not this tenant's")])
        return chosen.phone_number_id
    try:
        return route_id(engine_of(session), get_settings(), tenant_id, chosen)
    except NumberError as exc:
        raise NoticeRejected([str(exc)]) from None


def prepare_po_notice(
    session: Session,
    notice: PoNotice,
    *,
    batch_id: str | None = None,
    batch_row: int | None = None,
) -> PreparedMessage:
    """Check a PO notice and build its message; the key makes it one send per PO."""
    problems = _notice_problems(notice)
    if problems:
        raise NoticeRejected(problems)
    recipient = normalised_phone(notice.phone)
    supplier = find_or_add_supplier(
        session,
        notice.tenant_id,
        recipient,
        name=notice.supplier_name,
        language=notice.language,
        external_ref=notice.supplier_ref,
        consent=notice.consent,
    )
    language = notice.language or supplier.language or DEFAULT_LANGUAGE
    definition = resolve_template(session, notice.tenant_id, notice.template_name, language)
    try:
        params = build_po_notice_params(
            definition,
            notice.supplier_name.strip(),
            notice.po_number.strip(),
            notice.amount,
            notice.currency.strip().upper(),
            document_link=notice.document_url,
        )
    except ValueError as exc:
        raise NoticeRejected([str(exc)]) from None
    return prepare_template_message(
        session,
        tenant_id=notice.tenant_id,
        phone=recipient,
        template_name=notice.template_name,
        language=language,
        params=params,
        idempotency_key=po_notice_key(notice.po_number, recipient, notice.template_name),
        supplier=supplier,
        po_number=notice.po_number.strip(),
        po_id=notice.po_id,
        created_by=notice.created_by,
        source=notice.source,
        batch_id=batch_id,
        batch_row=batch_row,
        phone_number_id=notice.phone_number_id,
    )


def _notice_problems(notice: PoNotice) -> list[str]:
    problems = []
    if not notice.supplier_name or not notice.supplier_name.strip():
        problems.append(_("The supplier name is empty"))
    if not notice.po_number or not notice.po_number.strip():
        problems.append(_("The PO number is empty"))
    elif len(notice.po_number.strip()) > 64:
        problems.append(_("The PO number is longer than 64 characters"))
    if not notice.amount.is_finite() or notice.amount < 0:
        problems.append(_("The amount {amount} is not a valid total").format(amount=notice.amount))
    return problems


def send_po_notice(notice: PoNotice, *, engine: Engine | None = None) -> EnqueueResult:
    """Queue a PO notice once: the same PO to the same supplier returns the first message."""
    engine = engine or get_engine()
    with session_scope(engine) as session:
        prepared = prepare_po_notice(session, notice)
    return enqueue(prepared.outbound, engine=engine)


def send_template_message(
    *,
    tenant_id: str,
    phone: str,
    template_name: str,
    language: str,
    params: Mapping[str, Any] | None,
    idempotency_key: str | None = None,
    po_number: str | None = None,
    created_by: str | None = None,
    source: str = "api",
    consent: ConsentGrant | None = None,
    engine: Engine | None = None,
    phone_number_id: str | None = None,
) -> EnqueueResult:
    """Queue any approved template; without a key, the same content to the same number
    is one message. `consent` records the sender's confirmation that the supplier agreed.
    `phone_number_id` picks one of the tenant's numbers (default: the tenant's default)."""
    engine = engine or get_engine()
    with session_scope(engine) as session:
        recipient = normalised_phone(phone)
        supplier = find_or_add_supplier(session, tenant_id, recipient, consent=consent)
        prepared = prepare_template_message(
            session,
            tenant_id=tenant_id,
            phone=recipient,
            template_name=template_name,
            language=language,
            params=params,
            idempotency_key=idempotency_key,
            supplier=supplier,
            po_number=po_number,
            created_by=created_by,
            source=source,
            phone_number_id=phone_number_id,
        )
    return enqueue(prepared.outbound, engine=engine)


def dispatch_until_settled(
    message_ids: Sequence[str], *, timeout: float = 60.0, engine: Engine | None = None
) -> dict[str, WhatsAppMessage]:
    """Run a dispatcher here until the queue is drained, then return the messages' rows.

    For the CLI's one-off sends; long-running deployments use `wanotify worker` or the
    dashboard's embedded sender instead.
    """
    engine = engine or get_engine()
    asyncio.run(drain(get_settings(), engine, timeout=timeout))
    with Session(engine) as session:
        rows = session.exec(
            select(WhatsAppMessage).where(col(WhatsAppMessage.id).in_(list(message_ids)))
        ).all()
    return {row.id: row for row in rows}


def sync_templates_now(tenant_id: str, *, engine: Engine | None = None) -> SyncReport:
    """Copy the templates of every WABA of the tenant's numbers (the sandbox's in sandbox
    mode) into its registry: templates belong to their WABA (core.numbers.templates).
    While no number is registered every tenant shares the environment's number and its
    WABA (as routing does); once any is, `NumberError` for a tenant with no number of its
    own: no other business's templates."""
    from core.numbers.templates import sync_tenant_now

    return sync_tenant_now(engine or get_engine(), get_settings(), tenant_id)


#: Meta accepts free-form text only this long after the supplier's last message to us.
CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)


def text_window_problem(supplier: Supplier | None, now: datetime) -> str | None:
    """Why a free-form text to `supplier` cannot be sent at `now`, or None when it can.

    WhatsApp allows free-form text only inside the 24-hour customer-service window that
    the supplier's last inbound message opened (`Supplier.last_inbound_at`, kept by the
    webhook applier); outside it Meta refuses with 131047, so we refuse before queueing.
    """
    last = supplier.last_inbound_at if supplier is not None else None
    if last is None:
        return (
            "Free-form text is only allowed within 24 hours of the supplier's last message, "
            "and this supplier has never written to us: send an approved template instead"
        )
    if now - last >= CUSTOMER_SERVICE_WINDOW:
        return (
            "Free-form text is only allowed within 24 hours of the supplier's last message "
            f"(last one {last:%Y-%m-%d %H:%M} UTC): send an approved template instead"
        )
    return None


def prepare_text_message(
    session: Session,
    *,
    tenant_id: str,
    phone: str,
    body: str,
    now: datetime | None = None,
    idempotency_key: str | None = None,
    created_by: str | None = None,
    source: str = "api",
    phone_number_id: str | None = None,
) -> OutboundMessage:
    """Check and build one free-form text; NoticeRejected outside the 24 h window.

    `now` is the time the window is measured at (default: `core.clock.now()`).
    `phone_number_id` picks one of the tenant's numbers (default: the tenant's default).
    """
    recipient = normalised_phone(phone)
    try:
        payload = text_message(wa_digits(recipient), body)
    except ValueError as exc:
        raise NoticeRejected([str(exc)]) from None
    supplier = supplier_at(session, tenant_id, recipient)
    if (problem := text_window_problem(supplier, now or clock.now())) is not None:
        raise NoticeRejected([problem])
    assert supplier is not None  # the window is open only for a known supplier
    return OutboundMessage(
        tenant_id=tenant_id,
        idempotency_key=idempotency_key or content_key(recipient, ["text", body]),
        recipient_phone=recipient,
        request_payload=payload,
        message_type="text",
        body_text=body,
        recipient_country=country_calling_code(recipient),
        supplier_id=supplier.id,
        created_by=created_by,
        meta={"source": source},
        phone_number_id=_sender_id(session, tenant_id, phone_number_id),
    )


def send_text_message(
    *,
    tenant_id: str,
    phone: str,
    body: str,
    idempotency_key: str | None = None,
    created_by: str | None = None,
    source: str = "api",
    now: datetime | None = None,
    engine: Engine | None = None,
    phone_number_id: str | None = None,
) -> EnqueueResult:
    """Queue a free-form text, only inside the supplier's 24 h customer-service window
    (else NoticeRejected with the reason: Meta would refuse it with 131047), from the
    tenant's default number or `phone_number_id` (one of the tenant's)."""
    engine = engine or get_engine()
    with session_scope(engine) as session:
        outbound = prepare_text_message(
            session,
            tenant_id=tenant_id,
            phone=phone,
            body=body,
            now=now,
            idempotency_key=idempotency_key,
            created_by=created_by,
            source=source,
            phone_number_id=phone_number_id,
        )
    return enqueue(outbound, engine=engine)


def prepare_seed_template(
    session: Session,
    *,
    tenant_id: str,
    phone: str,
    template_name: str,
    params: Mapping[str, Any] | Sequence[Any] | None,
    language: str | None = None,
    idempotency_key: str | None = None,
    po_number: str | None = None,
    created_by: str | None = None,
    source: str = "seed-api",
) -> PreparedMessage:
    """A template message as the seed system's callers ask for it.

    The language is `language`, else the supplier's, else Spanish, else the only one the
    template has; `params` is a mapping of parameter names to values, or a list of values
    in order (for positional templates, and for named ones in their body's order, so
    `["Supplier", "PO-001", "€100"]` fills po_notification's three names).
    """
    recipient = normalised_phone(phone)
    supplier = find_or_add_supplier(session, tenant_id, recipient)
    if language is None:
        language = _seed_language(session, tenant_id, supplier, template_name)
    definition = resolve_template(session, tenant_id, template_name, language)
    return prepare_template_message(
        session,
        tenant_id=tenant_id,
        phone=recipient,
        template_name=template_name,
        language=definition.language,
        params=_seed_params(params, definition),
        idempotency_key=idempotency_key,
        supplier=supplier,
        po_number=po_number,
        created_by=created_by,
        source=source,
        definition=definition,
    )


def _seed_language(session: Session, tenant_id: str, supplier: Supplier, template_name: str) -> str:
    languages = sorted(
        t.language for t in list_templates(session, tenant_id) if t.template_name == template_name
    )
    for wanted in (supplier.language, DEFAULT_LANGUAGE):
        if wanted and (choice := pick_language(wanted, languages)) is not None:
            return choice
    return languages[0] if len(languages) == 1 else DEFAULT_LANGUAGE


class WhatsAppService:
    """The seed system's interface, kept so its callers work unchanged.

    `await send_message(...)` (a coroutine, as the seed's callers await it) no longer
    talks to Meta itself: it queues the message in the outbox (idempotent: the same
    content to the same number is one message) and the sender delivers it under Meta's
    limits. True means "queued" (or queued before). Its database work runs on a worker
    thread, never on the event loop. Synchronous callers use `send_message_sync`.
    """

    def __init__(self, engine: Engine | None = None) -> None:
        self._engine = engine

    async def send_message(
        self,
        to_phone: str,
        message: str,
        template_name: str | None = None,
        template_params: Mapping[str, Any] | Sequence[Any] | None = None,
        tenant_id: str | None = None,
    ) -> bool:
        """Queue a template (when `template_name` is given) or a text; False if refused.

        The seed's signature and meaning; see `send_message_sync` for the details. Runs
        the database work off the event loop (`asyncio.to_thread`).
        """
        return await asyncio.to_thread(
            self.send_message_sync, to_phone, message, template_name, template_params, tenant_id
        )

    def send_message_sync(
        self,
        to_phone: str,
        message: str,
        template_name: str | None = None,
        template_params: Mapping[str, Any] | Sequence[Any] | None = None,
        tenant_id: str | None = None,
    ) -> bool:
        """`send_message` for code without an event loop (scripts, threads, the CLI).

        `template_params` is a mapping of parameter names to values, or a list of values
        in order (`prepare_seed_template`). Without a template, `message` is sent as
        free-form text, allowed only inside the supplier's 24-hour customer-service
        window. The reason for a refusal (notifications disabled, bad number, unknown
        template, bad parameters, window closed) is logged; nothing is queued then.
        """
        settings = get_settings()
        if not settings.enable_whatsapp_notifications:
            log.info("WhatsApp notifications are disabled (ENABLE_WHATSAPP_NOTIFICATIONS)")
            return False
        tenant = tenant_id or settings.default_tenant
        engine = self._engine or get_engine()
        try:
            with session_scope(engine) as session:
                if template_name:
                    outbound = prepare_seed_template(
                        session,
                        tenant_id=tenant,
                        phone=to_phone,
                        template_name=template_name,
                        params=template_params,
                    ).outbound
                else:
                    outbound = prepare_text_message(
                        session,
                        tenant_id=tenant,
                        phone=to_phone,
                        body=message,
                        source="seed-api",
                    )
            enqueue(outbound, engine=engine)
        except (NoticeRejected, OutboxError) as exc:
            log.warning("message to %s not queued: %s", _masked(to_phone), exc)
            return False
        return True


def _seed_params(
    params: Mapping[str, Any] | Sequence[Any] | None, definition: TemplateDefinition
) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, Mapping):
        return {str(k): v for k, v in params.items()}
    if isinstance(params, str):
        params = [params]
    values = list(params)
    names = definition.body_params
    if definition.parameter_format == NAMED and len(values) == len(names):
        return dict(zip(names, values, strict=True))
    return {str(i): value for i, value in enumerate(values, start=1)}


def _masked(phone: str) -> str:
    digits = "".join(ch for ch in str(phone) if ch.isdigit())
    return f"…{digits[-4:]}" if len(digits) >= 4 else "…"


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as stored: Decimals as text, so JSON keeps them exact."""

    def convert(value: Any) -> Any:
        if type(value) is str:  # nearly every value: not through the ABC checks below
            return value
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, Mapping):
            return {str(k): convert(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        return value

    return {str(k): convert(v) for k, v in params.items()}


__all__ = [
    "ConsentGrant",
    "NoticeRejected",
    "PoNotice",
    "PreparedMessage",
    "WhatsAppService",
    "dispatch_until_settled",
    "find_or_add_supplier",
    "prepare_po_notice",
    "prepare_seed_template",
    "prepare_template_message",
    "prepare_text_message",
    "resolve_template",
    "send_po_notice",
    "send_template_message",
    "send_text_message",
    "sync_templates_now",
    "text_window_problem",
]
