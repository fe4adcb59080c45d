"""`WhatsAppBusinessService` and the async `WhatsAppService`: the seed's calls, verbatim.

Real parts: a migrated database, the sandbox's templates synced over HTTP, the real
dispatcher draining to the sandbox.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from core import (
    SendWhatsAppMessageRequest,
    WhatsAppBusinessService,
    WhatsAppService,
)
from core.batches import batch_progress
from core.clock import frozen
from core.control import pause_sending
from core.models.messages import MessageStatus
from core.sandbox import SandboxServer
from core.sender import drain
from core.settings import get_settings, load_settings
from tests.core.sender.helpers import fast_options, rows
from tests.core.service.helpers import WriteLock, add_supplier

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


async def test_the_seed_snippets_run_verbatim_in_an_event_loop_without_blocking_it(
    synced: SandboxServer, engine: Engine
) -> None:
    """Both seed snippets, as written, inside a running loop. While the database refuses
    writes (a held lock) the loop stays free: it is this coroutine that lets them in."""
    session = Session(engine)
    with WriteLock(engine) as lock:

        async def seed_caller() -> bool:
            whatsapp_service = WhatsAppService()
            return await whatsapp_service.send_message(
                to_phone="+34612345678",
                message="Test",
                template_name="po_notification",
                template_params=["Supplier", "PO-001", "€100"]
            )  # fmt: skip

        async def seed_business_caller() -> object:
            service = WhatsAppBusinessService(session)
            request = SendWhatsAppMessageRequest(
                to_phone="+34612345679",
                template_name="po_notification",
                template_params=["Supplier", "PO-002", "€250"],
                po_number="PO-002",
            )
            response = await service.send_message(request)
            return response

        first = asyncio.create_task(seed_caller())
        second = asyncio.create_task(seed_business_caller())
        for _ in range(20):
            await asyncio.sleep(0)  # the loop turns while both wait for the database
        assert not first.done() and not second.done()
        lock.release()  # only a free loop gets here
        assert await first is True
        response = await second
    assert lock.released_by_test
    session.close()
    assert response.success and response.created, response  # type: ignore[attr-defined]
    await drain(load_settings(), engine, timeout=60, options=fast_options())
    messages = {m.po_number or m.template_parameters["po_number"]: m for m in rows(engine).values()}
    assert set(messages) == {"PO-001", "PO-002"}
    assert all(m.status == MessageStatus.ACCEPTED for m in messages.values())
    assert messages["PO-002"].id == response.message_id  # type: ignore[attr-defined]
    assert {s["template_name"] for s in synced.messages()} == {"po_notification"}


async def test_templates_are_queued_once_and_refusals_say_why(
    synced: SandboxServer, engine: Engine
) -> None:
    service = WhatsAppBusinessService(engine)
    params = {"supplier_name": "Harinas Martín", "po_number": "PO-7", "total_amount": "12 €"}
    first = await service.send_template_message("612 34 56 78", "po_notification", params)
    again = await service.send_template_message(
        "+34612345678", "po_notification", params, language="es"
    )
    assert first.success and first.created and first.status == "pending"
    assert again.success and not again.created and again.message_id == first.message_id
    other = await service.send_template_message(
        "+34612345670", "delivery_reminder", ["PO-8", "lunes", "Almacén 2"], tenant_id="default",
        po_number="PO-8",
    )  # fmt: skip
    assert other.success
    refused = [
        await service.send_template_message("+34612345678", "no_such_template", params),
        await service.send_template_message("+34 612", "po_notification", params),
        await service.send_template_message("+34612345678", "po_notification", {"x": "\n"}),
        await service.send_template_message("\x00" * 50, "po_notification", params),
    ]
    for response in refused:
        assert not response.success and response.errors and response.message_id is None
    assert "no_such_template" in (refused[0].error or "")
    assert len(rows(engine)) == 2


async def test_text_only_inside_the_24_hour_window(synced: SandboxServer, engine: Engine) -> None:
    add_supplier(engine, "+34612345678", last_inbound_at=NOW - timedelta(hours=2))
    add_supplier(engine, "+34612345679", last_inbound_at=NOW - timedelta(hours=25))
    synced.inbound("+34612345678", text="¿Me reenvía el pedido?")  # the sandbox's window
    service = WhatsAppBusinessService(engine)
    with frozen(NOW):
        inside = await service.send_text_message("+34612345678", "Se lo reenvío ahora")
        closed = await service.send_text_message("+34612345679", "Hola")
        unknown = await service.send_text_message("+34612345670", "Hola")
    assert inside.success and inside.created
    assert not closed.success and "within 24 hours" in (closed.error or "")
    assert not unknown.success and "never written" in (unknown.error or "")
    with frozen(NOW + timedelta(hours=22, minutes=1)):  # the window closed meanwhile
        late = await service.send_text_message("+34612345678", "Otro mensaje")
    assert not late.success
    await drain(load_settings(), engine, timeout=60, options=fast_options())
    (message,) = rows(engine).values()
    assert message.message_type == "text" and message.status == MessageStatus.ACCEPTED


async def test_bulk_is_one_batch_through_the_outbox(synced: SandboxServer, engine: Engine) -> None:
    service = WhatsAppBusinessService(engine, created_by="erp")
    named = ["Harinas", "PO-{}", "10 €"]
    requests = [
        SendWhatsAppMessageRequest(
            to_phone=f"+3461234560{i}",
            template_name="po_notification",
            template_params=[v.format(i) for v in named],
        )
        for i in range(3)
    ] + [
        SendWhatsAppMessageRequest(to_phone="+34 612", template_name="po_notification"),
        SendWhatsAppMessageRequest(to_phone="+34612345699", message="Hola"),  # window closed
        SendWhatsAppMessageRequest(
            to_phone="+34612345601", template_name="po_notification", tenant_id="elsewhere"
        ),
    ]
    result = await service.send_bulk_messages(requests, name="nightly POs")
    assert (result.total, result.queued, result.refused) == (6, 3, 3)
    assert [r.success for r in result.results] == [True, True, True, False, False, False]
    assert "24 hours" in (result.results[4].error or "")
    assert result.results[5].error == "another tenant's request"
    assert result.batch_id is not None
    progress = batch_progress(engine, result.batch_id)
    assert progress.total_rows == 6 and progress.invalid_rows == 3
    await drain(load_settings(), engine, timeout=60, options=fast_options())
    assert len(synced.messages()) == 3
    with pytest.raises(ValueError, match="1 to 5000"):
        await service.send_bulk_messages([])


async def test_health_check_reports_the_sandbox_and_a_pause(
    synced: SandboxServer, engine: Engine
) -> None:
    service = WhatsAppBusinessService(engine)
    health = await service.health_check()
    assert health.healthy and health.sandbox_mode and health.api_reachable and health.token_ok
    assert health.templates_approved > 0 and health.problems == []
    pause_sending(engine, get_settings().phone_number_id, "Meta flagged the number", 368)
    paused = await service.health_check()
    assert not paused.healthy and paused.sending_paused
    assert paused.problems == ["Sending is paused: Meta flagged the number"]


async def test_nothing_is_queued_while_notifications_are_disabled(
    synced: SandboxServer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENABLE_WHATSAPP_NOTIFICATIONS", "false")
    get_settings.cache_clear()
    service = WhatsAppBusinessService(engine)
    request = SendWhatsAppMessageRequest(to_phone="+34612345678", template_name="po_notification")
    response = await service.send_message(request)
    bulk = await service.send_bulk_messages([request])
    assert not response.success and "disabled" in (response.error or "")
    assert bulk.batch_id is None and bulk.refused == 1
    assert await WhatsAppService(engine).send_message("+34612345678", "Hola") is False
    assert rows(engine) == {}


@pytest.mark.parametrize(
    "fields",
    [
        {"to_phone": ""},
        {"to_phone": "+34612345678"},  # neither template nor text
        {"to_phone": "+34612345678", "message": "   "},
        {"to_phone": "+34612345678", "message": "x", "template_name": "t", "message_type": "text"},
        {"to_phone": "+34612345678", "message_type": "template", "message": "x"},
        {"to_phone": "+34612345678", "template_name": "t", "unknown": 1},
        {"to_phone": "+34612345678", "message": "x" * 4097},
        {"to_phone": "+34612345678", "template_name": "t", "tenant_id": "x" * 65},
        {"to_phone": ["+34612345678"], "template_name": "t"},
        {"to_phone": "+34612345678", "template_name": "t", "template_params": "abc"},
    ],
)
def test_a_malformed_request_is_refused_naming_the_field(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SendWhatsAppMessageRequest(**fields)  # type: ignore[arg-type]
