"""`WhatsAppBusinessService(session)`: the seed's async sending service, over `core.notify`.

Every send is checked and queued exactly as the dashboard's, the CLI's and the ERP's
are (`core.notify` prepares, `core.outbox` stores, `core.sender` delivers under Meta's
limits); bulk sends become a batch (`core.batches`) that the dashboard follows like an
upload. A refusal is a response with `success=False` and the reasons, never an
exception: wanotify's callers check `response.success`, as the seed's did.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from core.batches import BatchInput, batch_results, create_batch
from core.db import session_scope
from core.notify import (
    NoticeRejected,
    prepare_seed_template,
    prepare_text_message,
)
from core.outbox import EnqueueResult, OutboundMessage, OutboxError, enqueue
from core.service.access import Database
from core.service.schemas import (
    BulkSendResponse,
    HealthCheckResponse,
    Params,
    SendWhatsAppMessageRequest,
    SendWhatsAppMessageResponse,
)
from core.settings import get_settings
from core.system_health import check_api, read_system_health

#: Most requests one `send_bulk_messages` call takes (larger sends: a CSV batch).
MAX_BULK = 5000

log = logging.getLogger(__name__)


class WhatsAppBusinessService:
    """Send templates and texts to suppliers, in bulk too, and check the service's health.

    `session` is the caller's SQLModel/SQLAlchemy session (what a FastAPI dependency
    hands over) or an engine; only its database is used (see `core.service`). The
    24-hour window of free-form text is measured on `core.clock` (tests set it).
    """

    def __init__(
        self,
        session: Session | Engine | None = None,
        *,
        tenant_id: str | None = None,
        created_by: str | None = None,
    ) -> None:
        self._db = Database(session)
        self._tenant = tenant_id
        self._created_by = created_by

    async def send_message(
        self, request: SendWhatsAppMessageRequest
    ) -> SendWhatsAppMessageResponse:
        """Queue one message (template or text) as the request describes."""
        return await self._db.run(self._send_one, request)

    async def send_template_message(
        self,
        to_phone: str,
        template_name: str,
        template_params: Params | None = None,
        *,
        language: str | None = None,
        tenant_id: str | None = None,
        po_number: str | None = None,
        idempotency_key: str | None = None,
    ) -> SendWhatsAppMessageResponse:
        """Queue an approved template; the same content to the same number is one message."""
        return await self.send_message(
            SendWhatsAppMessageRequest(
                to_phone=to_phone,
                template_name=template_name,
                template_params=template_params,
                language=language,
                tenant_id=tenant_id,
                po_number=po_number,
                idempotency_key=idempotency_key,
            )
        )

    async def send_text_message(
        self,
        to_phone: str,
        message: str,
        *,
        tenant_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> SendWhatsAppMessageResponse:
        """Queue a free-form text; refused (with the reason) outside the 24-hour
        customer-service window opened by the supplier's last message to us."""
        return await self.send_message(
            SendWhatsAppMessageRequest(
                to_phone=to_phone,
                message=message,
                message_type="text",
                tenant_id=tenant_id,
                idempotency_key=idempotency_key,
            )
        )

    async def send_bulk_messages(
        self,
        requests: Sequence[SendWhatsAppMessageRequest],
        *,
        name: str = "API bulk send",
        tenant_id: str | None = None,
    ) -> BulkSendResponse:
        """Queue many messages as one batch (one transaction): each request is checked on
        its own, refused ones are recorded with their reasons, and the dispatcher sends
        the rest under the same rate limits as any other message. All requests must be
        for one tenant (`tenant_id`, else the service's or the default)."""
        if not 1 <= len(requests) <= MAX_BULK:
            raise ValueError(f"a bulk send takes 1 to {MAX_BULK} requests")
        return await self._db.run(self._send_bulk, list(requests), name, tenant_id)

    async def health_check(self) -> HealthCheckResponse:
        """Can wanotify send and track now: the Cloud API (or sandbox) answers and takes
        the token, sending is not paused, the database and webhook pipeline are fine."""
        settings = get_settings()
        api = await check_api(settings)
        tenant = self._tenant or settings.default_tenant
        report = await self._db.run(read_system_health, self._db.engine, settings, tenant, api=api)
        problems = [p for p in (api.problem,) if p]
        if report.sending.paused:
            problems.append(f"Sending is paused: {report.sending.reason or 'no reason given'}")
        if not report.webhooks.database_ok:
            problems.append(f"Database unreachable: {report.webhooks.database_error}")
        if not settings.enable_whatsapp_notifications:
            problems.append("WhatsApp notifications are disabled (ENABLE_WHATSAPP_NOTIFICATIONS)")
        return HealthCheckResponse(
            healthy=api.ok
            and not report.sending.paused
            and report.webhooks.database_ok
            and settings.enable_whatsapp_notifications,
            sandbox_mode=report.sandbox_mode,
            api_reachable=api.reachable,
            token_ok=api.token_ok,
            sending_paused=report.sending.paused,
            pause_reason=report.sending.reason,
            queue_pending=report.sending.queue.pending,
            queue_needs_attention=report.sending.queue.needs_attention,
            database_ok=report.webhooks.database_ok,
            webhook_backlog=report.webhooks.backlog,
            last_webhook_at=report.webhooks.last_event_at,
            templates_approved=report.templates.approved,
            problems=problems,
        )

    # --- on the worker thread -----------------------------------------------------------

    def _tenant_of(self, request: SendWhatsAppMessageRequest, default: str | None = None) -> str:
        return request.tenant_id or default or self._tenant or get_settings().default_tenant

    def _prepare(
        self, session: Session, request: SendWhatsAppMessageRequest, tenant: str
    ) -> OutboundMessage:
        """The checked outbox message for `request` (NoticeRejected says why not)."""
        if request.message_type == "text":
            return prepare_text_message(
                session,
                tenant_id=tenant,
                phone=request.to_phone,
                body=request.message or "",
                idempotency_key=request.idempotency_key,
                created_by=self._created_by,
                source="seed-api",
            )
        assert request.template_name is not None  # the request's validator ensures it
        return prepare_seed_template(
            session,
            tenant_id=tenant,
            phone=request.to_phone,
            template_name=request.template_name,
            params=request.template_params,
            language=request.language,
            idempotency_key=request.idempotency_key,
            po_number=request.po_number,
            created_by=self._created_by,
        ).outbound

    def _send_one(self, request: SendWhatsAppMessageRequest) -> SendWhatsAppMessageResponse:
        if (disabled := _disabled()) is not None:
            return disabled
        tenant = self._tenant_of(request)
        try:
            with session_scope(self._db.engine) as session:
                outbound = self._prepare(session, request, tenant)
            result = enqueue(outbound, engine=self._db.engine)
        except NoticeRejected as exc:
            return SendWhatsAppMessageResponse(success=False, errors=exc.problems)
        except OutboxError as exc:
            return SendWhatsAppMessageResponse(success=False, errors=[str(exc)])
        return _queued(result)

    def _send_bulk(
        self, requests: list[SendWhatsAppMessageRequest], name: str, tenant_id: str | None
    ) -> BulkSendResponse:
        if (disabled := _disabled()) is not None:  # nothing is recorded, every one refused
            return BulkSendResponse(
                batch_id=None,
                total=len(requests),
                queued=0,
                refused=len(requests),
                results=[disabled] * len(requests),
            )
        tenant = tenant_id or self._tenant or get_settings().default_tenant
        rows: list[BatchInput] = []
        with session_scope(self._db.engine) as session:
            for number, request in enumerate(requests, start=1):
                raw = _raw(request)
                if request.tenant_id not in (None, tenant):
                    rows.append(BatchInput(number, raw, error="another tenant's request"))
                    continue
                try:
                    message = self._prepare(session, request, tenant)
                except NoticeRejected as exc:
                    rows.append(BatchInput(number, raw, error="; ".join(exc.problems)))
                    continue
                rows.append(BatchInput(number, raw, message=message))
        templates = {
            (r.message.template_name, r.message.template_language) for r in rows if r.message
        }
        template, language = templates.pop() if len(templates) == 1 else (None, None)
        batch = create_batch(
            self._db.engine, tenant, name, template, language, rows, self._created_by, source="api"
        )
        results = [
            SendWhatsAppMessageResponse(
                success=bool(entry["message_id"]),
                message_id=entry["message_id"] or None,
                status=entry["status"] or None,
                whatsapp_message_id=entry["wamid"] or None,
                created=bool(entry["message_id"]),
                errors=[entry["error"]] if entry["error"] and not entry["message_id"] else [],
            )
            for entry in batch_results(self._db.engine, batch.id, tenant_id=tenant)
        ]
        queued = sum(result.success for result in results)
        return BulkSendResponse(
            batch_id=batch.id,
            total=len(results),
            queued=queued,
            refused=len(results) - queued,
            results=results,
        )


def _disabled() -> SendWhatsAppMessageResponse | None:
    if get_settings().enable_whatsapp_notifications:
        return None
    reason = "WhatsApp notifications are disabled (ENABLE_WHATSAPP_NOTIFICATIONS)"
    log.info(reason)
    return SendWhatsAppMessageResponse(success=False, errors=[reason])


def _queued(result: EnqueueResult) -> SendWhatsAppMessageResponse:
    message = result.message
    return SendWhatsAppMessageResponse(
        success=True,
        message_id=message.id,
        status=message.status,
        whatsapp_message_id=message.whatsapp_message_id,
        created=result.created,
    )


def _raw(request: SendWhatsAppMessageRequest) -> dict[str, Any]:
    """The request as its batch row keeps it (JSON), for the batch's results file."""
    return request.model_dump(mode="json", exclude_none=True)
