"""Sending notices through `core.notify`, including the seed-compatible `WhatsAppService`.

Templates are synced from the real sandbox; sends go through the outbox and the real
dispatcher to the sandbox over HTTP.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.clock import frozen
from core.models.messages import MessageStatus
from core.models.suppliers import Supplier
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
from tests.fixtures.consent import allow_unrecorded

NAMED = {"supplier_name": "Harinas Martín", "po_number": "PO-7", "total_amount": "1.234,50 €"}


@pytest.fixture
def synced(sandbox_env: SandboxServer, engine: Engine) -> SandboxServer:
    """The sandbox, with its templates copied into the registry of tenant `default`,
    which sends without recorded consent (consent itself: tests/core/test_consent*)."""
    report = sync_templates_now("default", engine=engine)
    assert report.added > 0
    allow_unrecorded(engine, "default")
    return sandbox_env


def test_seed_wrapper_queues_a_template_once_and_the_sender_delivers_it(
    synced: SandboxServer, engine: Engine
) -> None:
    service = WhatsAppService(engine)
    assert service.send_message_sync("612 34 56 78", "ignored", "po_notification", NAMED) is True
    assert service.send_message_sync("+34612345678", "ignored", "po_notification", NAMED) is True
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
    ok = service.send_message_sync(
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
    assert service.send_message_sync(phone, "", template, params) is False  # type: ignore[arg-type]
    assert rows(engine) == {}


def test_seed_wrapper_does_nothing_when_notifications_are_disabled(
    synced: SandboxServer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENABLE_WHATSAPP_NOTIFICATIONS", "false")
    get_settings.cache_clear()
    service = WhatsAppService(engine)
    assert service.send_message_sync("+34612345678", "", "po_notification", NAMED) is False
    assert rows(engine) == {}


def test_seed_wrapper_refuses_text_outside_the_24_hour_window(
    synced: SandboxServer, engine: Engine
) -> None:
    """Nobody wrote to us (or too long ago): free-form text is refused, nothing queued."""
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    service = WhatsAppService(engine)
    with frozen(now):
        assert service.send_message_sync("+34612345678", "¿Llegó el pedido?") is False
        add_supplier(engine, "+34612345678", last_inbound_at=now - timedelta(hours=24))
        assert service.send_message_sync("+34612345678", "¿Llegó el pedido?") is False
    assert rows(engine) == {}


def test_seed_wrapper_sends_text_inside_the_window(synced: SandboxServer, engine: Engine) -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    add_supplier(engine, "+34612345678", last_inbound_at=now - timedelta(hours=23, minutes=59))
    synced.inbound("+34612345678", text="Hola, ¿me reenvía el pedido?")  # Meta's window too
    with frozen(now):
        assert WhatsAppService(engine).send_message_sync("+34 612 34 56 78", "Ya va") is True
    (message,) = rows(engine).values()
    assert message.message_type == "text" and message.supplier_id is not None
    run_drain(engine)
    assert rows(engine)[message.id].status == MessageStatus.ACCEPTED
    (sent,) = synced.messages()
    assert sent["type"] == "text"


def test_seed_wrapper_fills_a_named_template_from_a_list_in_order(
    synced: SandboxServer, engine: Engine
) -> None:
    """The seed's own call: po_notification with ["Supplier", "PO-001", "€100"]."""
    service = WhatsAppService(engine)
    ok = service.send_message_sync(
        "+34612345678", "Test", "po_notification", ["Supplier", "PO-001", "€100"]
    )
    assert ok is True
    (message,) = rows(engine).values()
    assert message.template_parameters == {
        "supplier_name": "Supplier", "po_number": "PO-001", "total_amount": "€100",
    }  # fmt: skip
    assert service.send_message_sync("+34612345678", "", "po_notification", ["a", "b"]) is False


def add_supplier(engine: Engine, phone: str, *, last_inbound_at: datetime) -> None:
    """A supplier of tenant `default` whose last message to us was at `last_inbound_at`."""
    with Session(engine) as session:
        session.add(
            Supplier(
                tenant_id="default", name="Harinas", phone_e164=phone,
                last_inbound_at=last_inbound_at,
            )
        )  # fmt: skip
        session.commit()


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


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({**NAMED, "supplier_name": "A\u202eLIAME\u200b"}, "right-to-left override (U+202E)"),
        (["Harinas", "PO\u200b7", "€1"], "zero-width space (U+200B) at position 3"),
        ({**NAMED, "po_number": "=1+2"}, "like a spreadsheet formula"),
        (["@SUM(A1)", "PO-7", "€1"], "like a spreadsheet formula"),
    ],
)
def test_seed_wrapper_refuses_hidden_characters_and_formulas_and_logs_why(
    synced: SandboxServer,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
    params: object,
    reason: str,
) -> None:
    service = WhatsAppService(engine)
    with caplog.at_level("WARNING", logger="core.notify"):
        ok = service.send_message_sync("+34612345678", "", "po_notification", params)  # type: ignore[arg-type]
    assert ok is False
    assert rows(engine) == {}
    assert reason in caplog.text


def test_seed_wrapper_sends_runs_of_non_breaking_spaces_as_one_space(
    synced: SandboxServer, engine: Engine
) -> None:
    params = ["Harinas\u00a0\u00a0Martín", "PO\u202f7", "€1"]
    assert WhatsAppService(engine).send_message_sync("+34612345678", "", "po_notification", params)
    (message,) = rows(engine).values()
    assert "Harinas Martín" in (message.body_text or "") and "PO 7" in (message.body_text or "")
    run_drain(engine)
    (sent,) = synced.messages()
    assert "Harinas Martín" in str(sent) and "\u00a0" not in str(sent)
