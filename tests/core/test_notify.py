"""Sending notices through `core.notify`, including the seed-compatible `WhatsAppService`.

Templates are synced from the real sandbox; sends go through the outbox and the real
dispatcher to the sandbox over HTTP.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine

from core.models.messages import MessageStatus
from core.notify import (
    NoticeRejected,
    PoNotice,
    WhatsAppService,
    send_po_notice,
    sync_templates_now,
)
from core.sandbox import SandboxServer
from core.settings import get_settings
from tests.core.sender.helpers import rows, run_drain

NAMED = {"supplier_name": "Harinas Martín", "po_number": "PO-7", "total_amount": "1.234,50 €"}


@pytest.fixture
def synced(sandbox_env: SandboxServer, engine: Engine) -> SandboxServer:
    """The sandbox, with its templates copied into the registry of tenant `default`."""
    report = sync_templates_now("default", engine=engine)
    assert report.added > 0
    return sandbox_env


def test_seed_wrapper_queues_a_template_once_and_the_sender_delivers_it(
    synced: SandboxServer, engine: Engine
) -> None:
    service = WhatsAppService(engine)
    assert service.send_message("612 34 56 78", "ignored", "po_notification", NAMED) is True
    assert service.send_message("+34612345678", "ignored", "po_notification", NAMED) is True
    (message,) = rows(engine).values()  # the same content twice is one message
    assert message.status == MessageStatus.PENDING
    assert message.recipient_phone == "+34612345678" and message.tenant_id == "default"
    assert message.template_language == "es"
    assert "Harinas Martín" in (message.body_text or "")
    run_drain(engine)
    (sent,) = synced.messages()
    assert sent["biz_opaque_callback_data"] == message.id
    assert sent["template_name"] == "po_notification"
    assert rows(engine)[message.id].status == MessageStatus.ACCEPTED


def test_seed_wrapper_takes_positional_values_as_a_list(
    synced: SandboxServer, engine: Engine
) -> None:
    service = WhatsAppService(engine)
    ok = service.send_message(
        "+34612345679", "", "delivery_reminder", ["PO-8", "lunes", "Almacén 2"], tenant_id="default"
    )
    assert ok is True
    (message,) = rows(engine).values()
    assert message.template_parameters == {"1": "PO-8", "2": "lunes", "3": "Almacén 2"}
    run_drain(engine)
    assert rows(engine)[message.id].status == MessageStatus.ACCEPTED


@pytest.mark.parametrize(
    ("phone", "template", "params"),
    [
        ("+34 612", "po_notification", NAMED),  # too short
        ("not a phone", "po_notification", NAMED),
        ("+34612345678", "no_such_template", NAMED),
        ("+34612345678", "po_notification", {**NAMED, "po_number": "PO\n7"}),  # newline
        ("+34612345678", "po_notification", {"supplier_name": "X"}),  # missing values
        ("+34612345678", "old_po_notice", ["PO-1"]),  # paused by Meta
    ],
)
def test_seed_wrapper_refuses_bad_input_and_queues_nothing(
    synced: SandboxServer, engine: Engine, phone: str, template: str, params: object
) -> None:
    service = WhatsAppService(engine)
    assert service.send_message(phone, "", template, params) is False  # type: ignore[arg-type]
    assert rows(engine) == {}


def test_seed_wrapper_does_nothing_when_notifications_are_disabled(
    synced: SandboxServer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENABLE_WHATSAPP_NOTIFICATIONS", "false")
    get_settings.cache_clear()
    service = WhatsAppService(engine)
    assert service.send_message("+34612345678", "", "po_notification", NAMED) is False
    assert rows(engine) == {}


def test_seed_wrapper_text_outside_the_window_fails_with_meta_reason(
    synced: SandboxServer, engine: Engine
) -> None:
    assert WhatsAppService(engine).send_message("+34612345678", "¿Llegó el pedido?") is True
    (message,) = rows(engine).values()
    assert message.message_type == "text"
    run_drain(engine)
    failed = rows(engine)[message.id]
    assert failed.status == MessageStatus.FAILED and failed.error_code == 131047
    assert "only templates may be sent" in (failed.error_message or "")


def test_po_notice_is_one_send_per_po_and_supplier(synced: SandboxServer, engine: Engine) -> None:
    notice = PoNotice(
        tenant_id="default",
        supplier_name="Harinas Martín",
        phone="612 34 56 78",
        po_number="PO-2026-0042",
        amount=Decimal("1234.50"),
        currency="EUR",
    )
    first = send_po_notice(notice, engine=engine)
    again = send_po_notice(notice, engine=engine)
    assert first.created and not again.created
    assert again.message.id == first.message.id
    run_drain(engine)
    (sent,) = synced.messages()
    assert "1.234,50" in str(sent["body"]["template"]["components"])


def test_po_notice_with_a_bad_amount_is_refused_with_the_reason(
    synced: SandboxServer, engine: Engine
) -> None:
    notice = PoNotice("default", "Harinas", "612345678", "PO-1", Decimal("-5"), "EUR")
    with pytest.raises(NoticeRejected, match="not a valid total"):
        send_po_notice(notice, engine=engine)
    assert rows(engine) == {}


@pytest.mark.parametrize("asked", ["es_ES", "es-ES", "ES", "es_MX"])
def test_a_regional_language_falls_back_to_the_templates_own(
    synced: SandboxServer, engine: Engine, asked: str
) -> None:
    """An ERP or supplier asking for es_ES gets the `es` template (all the sandbox has),
    recorded as sent in `es`, and Meta is asked for exactly that version."""
    notice = PoNotice(
        "default", "Harinas Martín", "612 34 56 78", f"PO-LANG-{asked}", Decimal("10"), "EUR",
        language=asked,
    )  # fmt: skip
    outcome = send_po_notice(notice, engine=engine)
    assert outcome.message.template_language == "es"
    run_drain(engine)
    (sent,) = synced.messages()
    assert sent["body"]["template"]["language"]["code"] == "es"


def test_another_language_is_never_substituted(synced: SandboxServer, engine: Engine) -> None:
    notice = PoNotice(
        "default", "Harinas", "612345678", "PO-LANG-FR", Decimal("10"), "EUR", language="fr_FR"
    )
    with pytest.raises(NoticeRejected, match="has no 'fr_FR' version"):
        send_po_notice(notice, engine=engine)
    assert rows(engine) == {}
