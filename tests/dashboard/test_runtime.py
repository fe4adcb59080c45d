"""dashboard/runtime.py: the embedded sender runs once per process and really sends."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.compose import NoticeForm, draft_notice, send_notice
from core.models.messages import WhatsAppMessage
from core.outbox import enqueue_many
from core.sandbox import SandboxServer
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.settings import get_settings
from core.templates import upsert_templates
from dashboard import runtime
from tests.core.sender.helpers import notice
from tests.dashboard.pages import person
from tests.fixtures.consent import consenting_supplier


@pytest.fixture
def fresh_sender(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No sender cached before or after the test; whatever started is stopped."""
    monkeypatch.setenv("DASHBOARD_EMBEDDED_SENDER", "true")
    get_settings.cache_clear()
    runtime.embedded_sender.clear()
    yield
    for thread in threading.enumerate():
        if thread.name == "wanotify-sender":
            sender = runtime.embedded_sender()
            if sender is not None:
                sender.stop_and_wait()
    runtime.embedded_sender.clear()


def _wait_status(engine: Engine, message_id: str, wanted: set[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as session:
            row = session.get(WhatsAppMessage, message_id)
            assert row is not None
            if row.status in wanted or time.monotonic() > deadline:
                return row.status
        time.sleep(0.1)


def test_one_sender_per_process_sends_what_the_pages_queue(
    engine: Engine, sandbox_env: SandboxServer, fresh_sender: None
) -> None:
    upsert_templates(
        engine, "default", [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    )
    started: list[runtime.EmbeddedSender | None] = []
    callers = [
        threading.Thread(target=lambda: started.append(runtime.embedded_sender())) for _ in range(4)
    ]  # four browser sessions opening the dashboard at the same moment
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(30)
    assert len(started) == 4 and all(s is started[0] for s in started)
    sender = started[0]
    assert sender is not None and sender.running and sender.error is None
    assert [t for t in threading.enumerate() if t.name == "wanotify-sender"] == [sender.thread]

    user = person("buyer")
    consenting_supplier(engine, "612 34 56 78", name="Harinas")
    form = NoticeForm("Harinas", "612 34 56 78", "PO-RT-1", "10,50", "EUR", "po_notification", "es")
    outcome = send_notice(engine, user, draft_notice(engine, user, form))
    assert _wait_status(engine, outcome.message_id, {"accepted", "sent", "delivered"}) in {
        "accepted",
        "sent",
        "delivered",
    }
    (sent,) = sandbox_env.messages()
    assert "34612345678" in str(sent)

    assert sender.stop_and_wait(timeout=30)
    assert not sender.running


def test_the_sender_can_be_switched_off(
    fresh_sender: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD_EMBEDDED_SENDER", "false")
    get_settings.cache_clear()
    runtime.embedded_sender.clear()
    assert runtime.embedded_sender() is None
    assert not [t for t in threading.enumerate() if t.name == "wanotify-sender"]


def test_the_embedded_sender_serves_its_metrics_when_asked(
    engine: Engine,
    sandbox_env: SandboxServer,
    fresh_sender: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DASHBOARD_METRICS_PORT", str(port))
    get_settings.cache_clear()
    sender = runtime.embedded_sender()
    assert sender is not None and sender.metrics_server is not None
    [queued] = enqueue_many([notice("+34612345679", "metrics-1")], engine=engine)
    wanted = {"accepted", "sent", "delivered"}
    assert _wait_status(engine, queued.message.id, wanted) in wanted
    number = get_settings().phone_number_id
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert (
        f'wanotify_sender_messages_total{{outcome="sent",phone_number_id="{number}"}} 1.0' in text
    )
    assert f'wanotify_sender_queue_messages{{phone_number_id="{number}",state="pending"}} 0.0' in (
        text
    )
    assert sender.stop_and_wait(timeout=30)
    with pytest.raises(httpx.TransportError):  # the endpoint stops with the sender
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
