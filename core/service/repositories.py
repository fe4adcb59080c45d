"""`WhatsAppMessageRepository` and `WhatsAppTemplateRepository`: the seed's data access.

Thin faces: a message is created through the outbox (`core.outbox.enqueue`), listed
through the message log's paged search, moved by the same order-independent fold the
webhook applier uses (`core.webhooks.statuses`, recorded in the message's timeline),
and counted by `core.stats`. Every method is a coroutine whose database work runs on a
worker thread (`core.service.access`).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.cloud_api import CloudApiClient
from core.message_log import MessageSearch, search_messages
from core.models.messages import WhatsAppMessage
from core.models.types import utcnow
from core.outbox import OutboundMessage, enqueue, get_message
from core.service.access import Database
from core.service.schemas import (
    DeliveryStats,
    MessagePageResponse,
    MessageSummary,
    WhatsAppMessageResponse,
    WhatsAppTemplateResponse,
)
from core.settings import get_settings
from core.stats import StatsFilter, cost, funnel, zone
from core.status import WEBHOOK_STAGES
from core.templates import SyncReport, get_template, list_templates, sync_templates
from core.webhooks.parse import EventError, StatusUpdate
from core.webhooks.sql import write_transaction
from core.webhooks.statuses import StatusItem, StatusReport, apply_status_items

#: Most messages one `get_by_po` returns (a PO has a handful: the notice and resends).
MAX_PER_PO = 200


class StatusUpdateRefused(ValueError):
    """A status that cannot be applied as given; the text says why."""


class WhatsAppMessageRepository:
    """The tenant's messages: create, read, list, move forward, count."""

    def __init__(self, session: Session | Engine | None = None) -> None:
        self._db = Database(session)

    async def create(self, message: OutboundMessage) -> tuple[WhatsAppMessageResponse, bool]:
        """Write a pending outbox row for a ready Cloud API body (or return the one with
        the same idempotency key); True when this call created it. Checked messages come
        from `core.notify`'s prepare functions or `WhatsAppBusinessService`."""
        result = await self._db.run(enqueue, message, engine=self._db.engine)
        return WhatsAppMessageResponse.model_validate(result.message), result.created

    async def get_by_id(
        self, message_id: str, tenant_id: str | None = None
    ) -> WhatsAppMessageResponse | None:
        """One message by our id (restricted to `tenant_id` when given)."""
        row = await self._db.run(
            get_message, message_id, engine=self._db.engine, tenant_id=tenant_id
        )
        return WhatsAppMessageResponse.model_validate(row) if row is not None else None

    async def get_by_whatsapp_id(
        self, whatsapp_message_id: str, tenant_id: str | None = None
    ) -> WhatsAppMessageResponse | None:
        """One message by Meta's wamid (restricted to `tenant_id` when given)."""
        return await self._db.run(self._by_wamid, whatsapp_message_id, tenant_id)

    async def get_by_po(self, tenant_id: str, po_number: str) -> list[WhatsAppMessageResponse]:
        """The tenant's messages for exactly this PO number, oldest first."""
        return await self._db.run(self._by_po, tenant_id, po_number.strip())

    async def list_by_tenant(
        self,
        tenant_id: str,
        *,
        statuses: tuple[str, ...] = (),
        phone: str = "",
        po_number: str = "",
        since: date | None = None,
        until: date | None = None,
        tz: str = "UTC",
        page: int = 1,
        page_size: int = 50,
    ) -> MessagePageResponse:
        """A page of the tenant's messages, newest first (the message log's search:
        status, digits of the phone, part of the PO number, days in zone `tz`).
        SearchError says what to change in a filter that cannot run."""
        search = MessageSearch(
            tenant_ids=(tenant_id,),
            phone=phone,
            po_number=po_number,
            statuses=tuple(statuses),
            start=since,
            end=until,
            tz=tz,
            page=page,
            page_size=page_size,
        )
        result = await self._db.run(search_messages, self._db.engine, search)
        return MessagePageResponse(
            items=[MessageSummary.model_validate(row) for row in result.rows],
            total=result.total,
            page=result.page,
            page_size=result.page_size,
        )

    async def update_status(
        self,
        message_id: str,
        status: str,
        *,
        at: datetime | None = None,
        error_code: int | None = None,
        error_message: str | None = None,
        tenant_id: str | None = None,
    ) -> WhatsAppMessageResponse:
        """Record a status of a sent message (sent, delivered, read, failed) as the webhook
        applier does: the earliest time of each stage is kept, the furthest stage wins,
        a `failed` counts only while nothing later than `sent` is known, the event joins
        the message's timeline, and the same event twice changes nothing.

        StatusUpdateRefused for an unknown status word, a naive time, a message of
        another tenant, or one Meta has not accepted yet (no wamid: there is nothing
        for a status to be about).
        """
        word = status.strip().lower()
        if word not in WEBHOOK_STAGES:
            raise StatusUpdateRefused(f"status must be one of {', '.join(WEBHOOK_STAGES)}")
        if at is not None and at.tzinfo is None:
            raise StatusUpdateRefused("at must be timezone-aware")
        return await self._db.run(
            self._update_status, message_id, word, at, error_code, error_message, tenant_id
        )

    async def get_delivery_stats(
        self,
        tenant_id: str,
        since: date | datetime,
        until: date | datetime,
        *,
        tz: str = "UTC",
    ) -> DeliveryStats:
        """Counts, rates and cost of the tenant's messages created on days `since` to
        `until` (inclusive, in zone `tz`; a datetime counts for its day there), from
        `core.stats`. StatsFilterError for a reversed range or an unknown zone."""
        flt = StatsFilter(
            tenant_ids=(tenant_id,), start=_day(since, tz), end=_day(until, tz), tz=tz
        )
        return await self._db.run(self._stats, flt)

    # --- on the worker thread -----------------------------------------------------------

    def _by_wamid(self, wamid: str, tenant_id: str | None) -> WhatsAppMessageResponse | None:
        with Session(self._db.engine) as session:
            query = select(WhatsAppMessage).where(col(WhatsAppMessage.whatsapp_message_id) == wamid)
            if tenant_id is not None:
                query = query.where(col(WhatsAppMessage.tenant_id) == tenant_id)
            row = session.exec(query).first()
            return WhatsAppMessageResponse.model_validate(row) if row is not None else None

    def _by_po(self, tenant_id: str, po_number: str) -> list[WhatsAppMessageResponse]:
        with Session(self._db.engine) as session:
            rows = session.exec(
                select(WhatsAppMessage)
                .where(
                    col(WhatsAppMessage.tenant_id) == tenant_id,
                    col(WhatsAppMessage.po_number) == po_number,
                )
                .order_by(col(WhatsAppMessage.created_at), col(WhatsAppMessage.id))
                .limit(MAX_PER_PO)
            ).all()
            return [WhatsAppMessageResponse.model_validate(row) for row in rows]

    def _update_status(
        self,
        message_id: str,
        word: str,
        at: datetime | None,
        error_code: int | None,
        error_message: str | None,
        tenant_id: str | None,
    ) -> WhatsAppMessageResponse:
        row = get_message(message_id, engine=self._db.engine, tenant_id=tenant_id)
        if row is None:
            raise StatusUpdateRefused(f"no message {message_id}")
        if row.whatsapp_message_id is None:
            raise StatusUpdateRefused(
                f"message {message_id} is {row.status} and has no WhatsApp id yet: statuses "
                "apply once Meta has accepted it"
            )
        now = utcnow()
        errors: tuple[EventError, ...] = ()
        if word == "failed" or error_code is not None:
            errors = (EventError(error_code, error_message, error_message, None),)
        update = StatusUpdate(
            wamid=row.whatsapp_message_id,
            status=word,
            at=at or now,
            recipient_id=None,
            callback_data=row.id,
            phone_number_id=None,
            errors=errors,
            pricing=None,
            conversation=None,
            raw={"source": "repository"},
        )
        with write_transaction(self._db.engine) as conn:
            apply_status_items(conn, [StatusItem.of(update, None, now)], now, StatusReport())
        fresh = get_message(message_id, engine=self._db.engine)
        assert fresh is not None  # messages are never deleted
        return WhatsAppMessageResponse.model_validate(fresh)

    def _stats(self, flt: StatsFilter) -> DeliveryStats:
        counts = funnel(self._db.engine, flt)
        money = cost(self._db.engine, flt)
        return DeliveryStats(
            tenant_id=flt.tenant_ids[0],
            since=flt.start,
            until=flt.end,
            tz=flt.tz,
            total=counts.total,
            sent=counts.sent,
            delivered=counts.delivered,
            read=counts.read,
            replied=counts.replied,
            failed=counts.failed,
            queued=counts.queued,
            delivery_rate=_ratio(counts.delivered, counts.sent),
            read_rate=_ratio(counts.read, counts.delivered),
            reply_rate=_ratio(counts.replied, counts.delivered),
            cost=dict(money.totals),
        )


class WhatsAppTemplateRepository:
    """The tenant's templates as synced from the WhatsApp Business Account."""

    def __init__(self, session: Session | Engine | None = None) -> None:
        self._db = Database(session)

    async def get_by_name(
        self, tenant_id: str, template_name: str, language: str
    ) -> WhatsAppTemplateResponse | None:
        """The template `template_name` in `language` (active or not), or None."""
        return await self._db.run(self._get, tenant_id, template_name, language)

    async def list_templates(
        self, tenant_id: str, *, approved_only: bool = False, include_inactive: bool = False
    ) -> list[WhatsAppTemplateResponse]:
        """The tenant's templates by name and language; `approved_only`: the sendable ones
        (approved, still on the account, not held after a 132015/132016)."""
        return await self._db.run(self._list, tenant_id, approved_only, include_inactive)

    async def get_active_templates(self, tenant_id: str) -> list[WhatsAppTemplateResponse]:
        """The templates that can be sent now (the seed's name for `approved_only`)."""
        return await self.list_templates(tenant_id, approved_only=True)

    async def sync(self, tenant_id: str) -> SyncReport:
        """Copy the account's templates (or the sandbox's) into the registry for `tenant_id`;
        a failed fetch (GraphError) changes nothing."""
        async with CloudApiClient(get_settings(), max_connections=4) as client:
            return await sync_templates(client, self._db.engine, tenant_id)

    def _get(self, tenant_id: str, name: str, language: str) -> WhatsAppTemplateResponse | None:
        with Session(self._db.engine) as session:
            row = get_template(session, tenant_id, name, language)
            return WhatsAppTemplateResponse.model_validate(row) if row is not None else None

    def _list(
        self, tenant_id: str, approved_only: bool, include_inactive: bool
    ) -> list[WhatsAppTemplateResponse]:
        with Session(self._db.engine) as session:
            rows = list_templates(
                session, tenant_id, approved_only=approved_only, include_inactive=include_inactive
            )
            return [WhatsAppTemplateResponse.model_validate(row) for row in rows]


def _day(value: date | datetime, tz: str) -> date:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("since and until must be timezone-aware datetimes, or dates")
        return value.astimezone(zone(tz)).date()
    return value


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


__all__ = ["StatusUpdateRefused", "WhatsAppMessageRepository", "WhatsAppTemplateRepository"]
