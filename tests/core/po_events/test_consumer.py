"""The RabbitMQ consumer against the real broker and a real SQLite/PostgreSQL database."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from core.db import is_sqlite
from core.keys import po_notice_key
from core.models import MessageStatus
from core.po_events.consumer import PoConsumerError, consume_po_events
from core.po_events.intake import handle_po_event
from core.po_events.publish import publish_po_event
from core.po_events.topology import PROBLEMS_HEADER, REASON_HEADER
from core.sandbox import SandboxServer
from core.sender import drain
from core.settings import get_settings, load_settings
from tests.core.po_events.conftest import body_parameters, outbox, po_event, wait_until
from tests.fixtures.rabbitmq import Broker

REPO = Path(__file__).resolve().parents[3]


@asynccontextmanager
async def running_consumer(broker: Broker, engine: Engine) -> AsyncIterator[asyncio.Task[None]]:
    """The consumer as a task on this loop; stopped (gracefully) and awaited on exit."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        consume_po_events(
            get_settings(), engine, stop=stop, queue_prefix=broker.prefix, ready=ready,
            retry_delay=0.2, max_retry_delay=1.0, reconnect_interval=0.5,
        )
    )  # fmt: skip
    ready_wait = asyncio.create_task(ready.wait())
    await asyncio.wait({task, ready_wait}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready_wait.cancel()
        task.result()  # raises what stopped it
    assert ready.is_set(), "the consumer did not start consuming"
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30) -> Any:
    """Poll an async check until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := await check()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
    return value


async def test_an_event_becomes_one_pending_notice(broker: Broker, po_templates: Engine) -> None:
    event_ = po_event()
    async with running_consumer(broker, po_templates):
        await publish_po_event(broker.url, event_, queue_prefix=broker.prefix)
        [row] = await wait_until(lambda: outbox(po_templates), "the outbox row")
    assert row.status == MessageStatus.PENDING
    assert row.template_name == "po_notification" and row.template_language == "es"
    assert row.idempotency_key == po_notice_key("4500012345", "+34612345678", "po_notification")
    assert body_parameters(row) == {
        "supplier_name": "Aceros del Norte S.L.",
        "po_number": "4500012345",
        "total_amount": "1.234,50 €",
        "currency": ("EUR", 1234500),
    }
    assert (row.meta or {}).get("source") == "rabbitmq"
    assert await broker.counts(broker.names.queue) == (0, 0)  # acked; consumer gone
    assert await broker.drain(broker.names.dead_queue) == []


async def test_replays_and_redeliveries_send_nothing_new(
    broker: Broker, po_templates: Engine
) -> None:
    event_ = po_event()
    # The consumer committed this event once and died before its ack ...
    assert handle_po_event(event_, engine=po_templates, source="rabbitmq").status == "enqueued"
    # ... so the broker redelivers it (a nack with requeue is what a lost channel does).
    await publish_po_event(broker.url, event_, queue_prefix=broker.prefix)
    first = await broker.get(broker.names.queue, requeue=True)
    assert not first.redelivered
    # The ERP replays the same PO twice more: once verbatim, once under a new event id.
    await publish_po_event(broker.url, event_, queue_prefix=broker.prefix)
    await publish_po_event(broker.url, po_event(event_id="evt-replay"), queue_prefix=broker.prefix)
    assert (await broker.counts(broker.names.queue))[0] == 3
    async with running_consumer(broker, po_templates):
        await eventually(
            lambda: _ready_is_zero(broker), "the consumer to take every message", timeout=30
        )
    assert len(outbox(po_templates)) == 1
    assert await broker.counts(broker.names.queue) == (0, 0)  # all three acked
    assert await broker.drain(broker.names.dead_queue) == []


async def test_copies_delivered_together_are_one_notice(
    broker: Broker, po_templates: Engine
) -> None:
    """With prefetch, copies of one event are handled concurrently: all are acked, one
    row exists, and none is dead-lettered as an error."""
    event_ = po_event()
    for _ in range(6):
        await publish_po_event(broker.url, event_, queue_prefix=broker.prefix)
    async with running_consumer(broker, po_templates):
        await eventually(lambda: _ready_is_zero(broker), "the consumer to take every copy")
    assert len(outbox(po_templates)) == 1
    assert await broker.counts(broker.names.queue) == (0, 0)
    assert await broker.drain(broker.names.dead_queue) == []


async def test_each_po_reaches_the_sandbox_once_through_the_sender(
    broker: Broker, po_templates: Engine, sandbox_env: SandboxServer
) -> None:
    """The whole road: ERP events on the broker (each PO published three times, once
    under a new event id), the consumer, the outbox, the real sender and the sandbox's
    HTTP API. Every PO is sent exactly once, to its own supplier."""
    pos = [(f"45000123{n:02d}", f"+34 61234{n:04d}") for n in range(6)]
    for round_ in range(3):
        for number, phone in pos:
            event_ = po_event(
                event_id=f"evt-{number}-{round_ if round_ < 2 else 'replayed'}",
                po={"id": number, "number": number},
            )
            event_["supplier"]["phone"] = phone
            await publish_po_event(broker.url, event_, queue_prefix=broker.prefix)
    async with running_consumer(broker, po_templates):
        await eventually(lambda: _ready_is_zero(broker), "the consumer to take every event")
    assert len(outbox(po_templates)) == len(pos)
    report = await drain(get_settings(), po_templates, timeout=120)
    assert report.stats.accepted == len(pos), report
    sent = await asyncio.to_thread(sandbox_env.messages)
    assert sorted(m["to"] for m in sent) == sorted(f"3461234{n:04d}" for n in range(6))
    assert (await asyncio.to_thread(sandbox_env.stats))["duplicates"] == []
    rows = outbox(po_templates)
    assert {row.status for row in rows} == {MessageStatus.ACCEPTED}
    assert {row.whatsapp_message_id for row in rows} == {m["id"] for m in sent}


async def _ready_is_zero(broker: Broker) -> bool:
    return (await broker.counts(broker.names.queue))[0] == 0


def _phoneless() -> dict[str, Any]:
    event_ = po_event()
    del event_["supplier"]["phone"]
    return event_


def _with_phone(phone: str) -> dict[str, Any]:
    event_ = po_event()
    event_["supplier"]["phone"] = phone
    return event_


MALFORMED: dict[str, tuple[bytes, str]] = {
    "not-json": (b"PO 4500012345 approved", "not valid JSON"),
    "json-array": (json.dumps([po_event()]).encode(), "must be a JSON object, not a list"),
    "no-phone": (json.dumps(_phoneless()).encode(), "supplier.phone is missing"),
    "bad-phone": (json.dumps(_with_phone("+34 12")).encode(), "+34 12 is too short for Spain"),
    "bad-amount": (
        json.dumps(po_event(total={"amount": "abc", "currency": "EUR"})).encode(),
        "total.amount: 'abc' is not a number",
    ),
    "bad-currency": (
        json.dumps(po_event(total={"amount": "10.00", "currency": "EURO"})).encode(),
        "'EURO' is not a currency code",
    ),
    "two-megabytes": (b'{"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}', "the limit is 65,536"),
    "other-type": (
        json.dumps(po_event(event_type="po.cancelled")).encode(),
        "'po.cancelled' is not handled here",
    ),
}


async def test_malformed_events_go_to_the_dead_letter_queue_with_a_reason(
    broker: Broker, po_templates: Engine
) -> None:
    async with running_consumer(broker, po_templates):
        for name, (body, _) in MALFORMED.items():
            await publish_po_event(
                broker.url, body, queue_prefix=broker.prefix, message_id=name,
                headers={"x-erp": "sap"},
            )  # fmt: skip
        dead = [await broker.get(broker.names.dead_queue) for _ in MALFORMED]
    by_id = {message.message_id: message for message in dead}
    assert set(by_id) == set(MALFORMED)
    for name, (body, expected) in MALFORMED.items():
        message = by_id[name]
        reason = str(message.headers[REASON_HEADER])
        assert expected.lower() in reason.lower(), (name, reason)
        problems = message.headers[PROBLEMS_HEADER]
        assert isinstance(problems, list) and problems  # the same, one problem per item
        assert message.body == body  # the original, untouched
        assert message.headers["x-erp"] == "sap"  # original headers kept
        assert message.headers["x-wanotify-original-routing-key"] == "po.approved"
    assert outbox(po_templates) == []
    assert await broker.counts(broker.names.queue) == (0, 0)


@pytest.fixture
def read_only(engine: Engine) -> Any:
    """Switch the database read-only for every connection the engine hands out (a real
    SQLite `query_only` / PostgreSQL read-only session), like a full or remounted disk."""
    state = {"on": False}

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if is_sqlite(engine):
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA query_only = {1 if state['on'] else 0}")
            cursor.close()
        else:
            dbapi_connection.read_only = state["on"]

    event.listen(engine, "checkout", on_checkout)
    yield state
    event.remove(engine, "checkout", on_checkout)


async def test_acks_only_after_the_commit(
    broker: Broker, po_templates: Engine, read_only: dict[str, bool],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.WARNING, logger="core.po_events.consumer")
    read_only["on"] = True
    async with running_consumer(broker, po_templates):
        await publish_po_event(broker.url, po_event(), queue_prefix=broker.prefix)
        await wait_until(
            lambda: caplog.text.count("requeued") >= 2, "the event to be requeued twice"
        )
        assert outbox(po_templates) == []
        assert await broker.drain(broker.names.dead_queue) == []  # transient: not dead
        read_only["on"] = False
        await wait_until(lambda: outbox(po_templates), "the row once the database is back")
    assert len(outbox(po_templates)) == 1
    assert "database unavailable" in caplog.text
    assert await broker.counts(broker.names.queue) == (0, 0)


async def test_unacked_events_survive_a_stop_while_the_database_is_down(
    broker: Broker, po_templates: Engine, read_only: dict[str, bool],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.WARNING, logger="core.po_events.consumer")
    read_only["on"] = True
    async with running_consumer(broker, po_templates):
        await publish_po_event(broker.url, po_event(), queue_prefix=broker.prefix)
        await wait_until(lambda: "requeued" in caplog.text, "a failed attempt")
    assert await broker.counts(broker.names.queue) == (1, 0)  # still there, not lost
    read_only["on"] = False
    async with running_consumer(broker, po_templates):
        await wait_until(lambda: outbox(po_templates), "the row after the restart")
    assert len(outbox(po_templates)) == 1


async def test_reconnects_after_the_broker_drops_the_connection(
    broker: Broker, po_templates: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.po_events.consumer")
    async with running_consumer(broker, po_templates):
        await publish_po_event(broker.url, po_event(), queue_prefix=broker.prefix)
        await wait_until(lambda: len(outbox(po_templates)) == 1, "the first row")
        assert await asyncio.to_thread(broker.close_consumer_connections) == 1
        await publish_po_event(
            broker.url, po_event(po={"id": "98122", "number": "4500012346"}),
            queue_prefix=broker.prefix,
        )  # fmt: skip
        await wait_until(lambda: len(outbox(po_templates)) == 2, "the row published after")
        await wait_until(lambda: "reconnected" in caplog.text, "the reconnect log line")
    assert {row.po_number for row in outbox(po_templates)} == {"4500012345", "4500012346"}
    assert "lost the RabbitMQ connection" in caplog.text


@pytest.mark.skipif(
    os.environ.get("WANOTIFY_TEST_BROKER_RESTART") != "1",
    reason="restarts the shared broker app; set WANOTIFY_TEST_BROKER_RESTART=1 to run",
)
async def test_survives_a_full_broker_restart(
    broker: Broker, po_templates: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.fixtures.rabbitmq import _rabbitmqctl

    caplog.set_level(logging.INFO, logger="core.po_events.consumer")
    async with running_consumer(broker, po_templates):
        try:
            await asyncio.to_thread(_rabbitmqctl, "stop_app")
        finally:
            await asyncio.to_thread(_rabbitmqctl, "start_app")
        await asyncio.to_thread(_rabbitmqctl, "await_startup")
        await publish_po_event(broker.url, po_event(), queue_prefix=broker.prefix)
        await wait_until(lambda: outbox(po_templates), "the row after the restart", 90)
    assert "lost the RabbitMQ connection" in caplog.text and "reconnected" in caplog.text
    assert len(outbox(po_templates)) == 1
    assert await broker.counts(broker.names.queue) == (0, 0)  # the broker is up again


async def test_sigterm_stops_the_consumer_gracefully(
    broker: Broker, po_templates: Engine, database_url: str, tmp_path: Path
) -> None:
    code = (
        "import asyncio, logging; logging.basicConfig(level=logging.INFO);"
        "from core.po_events.consumer import consume_po_events;"
        f"asyncio.run(consume_po_events(queue_prefix={broker.prefix!r}))"
    )
    env = {
        **os.environ, "DATABASE_URL": database_url, "RABBITMQ_URL": broker.url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        await publish_po_event(broker.url, po_event(), queue_prefix=broker.prefix)
        await wait_until(lambda: outbox(po_templates), "the subprocess to enqueue the event")
        await eventually(
            lambda: _has_consumer(broker), "the subprocess to be consuming", timeout=30
        )
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(process.communicate, timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "PO event consumer stopped" in stderr
    assert await broker.counts(broker.names.queue) == (0, 0)


async def _has_consumer(broker: Broker) -> bool:
    return (await broker.counts(broker.names.queue))[1] == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_broker_is_retried_until_stopped(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(RABBITMQ_URL=f"amqp://guest:secret@127.0.0.1:{_free_port()}/")
    stop = asyncio.Event()
    task = asyncio.create_task(
        consume_po_events(settings, engine, stop=stop, queue_prefix="unused",
                          reconnect_interval=0.2)
    )  # fmt: skip
    await wait_until(lambda: caplog.text.count("not reachable") >= 2, "two connect attempts")
    stop.set()
    await asyncio.wait_for(task, 30)
    assert "secret" not in caplog.text  # the password never reaches the log
    assert "guest:***@" in caplog.text


async def test_a_refused_login_is_a_clear_error(rabbitmq_url: str, engine: Engine) -> None:
    from yarl import URL

    wrong = str(URL(rabbitmq_url).with_password("not-the-password"))
    settings = load_settings(RABBITMQ_URL=wrong)
    with pytest.raises(PoConsumerError, match="refused the login") as caught:
        await consume_po_events(settings, engine, stop=asyncio.Event(), queue_prefix="unused")
    assert "not-the-password" not in str(caught.value)
