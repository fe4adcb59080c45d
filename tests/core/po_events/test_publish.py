"""Publishing events as an ERP would, from code and from the command line (real broker)."""

from __future__ import annotations

import asyncio
import json
import socket
from decimal import Decimal
from pathlib import Path

import pytest

from core.po_events.publish import encode_event, example_po_event, main, publish_po_event
from core.po_events.schema import parse_po_event
from core.settings import get_settings
from tests.fixtures.live import set_live_env
from tests.fixtures.rabbitmq import Broker


def test_the_example_event_is_valid_and_decimals_stay_exact() -> None:
    event = example_po_event(amount=Decimal("0.10"), document_url="https://erp.example/po.pdf")
    parsed = parse_po_event(encode_event(event))
    assert parsed.total.amount == Decimal("0.10")
    assert parsed.document_url == "https://erp.example/po.pdf"
    assert example_po_event()["event_id"] != example_po_event()["event_id"]


async def test_a_published_event_waits_in_the_durable_queue(broker: Broker) -> None:
    """Published before any consumer ran: the queue exists and holds the event."""
    event = example_po_event()
    message_id = await publish_po_event(broker.url, event, queue_prefix=broker.prefix)
    assert message_id == event["event_id"]
    message = await broker.get(broker.names.queue)
    assert json.loads(message.body) == event
    assert message.content_type == "application/json"
    assert message.delivery_mode == 2  # persistent


async def test_the_command_publishes_a_file_or_the_example(
    broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    get_settings.cache_clear()  # RABBITMQ_URL was set by the broker fixture
    path = tmp_path / "event.json"
    path.write_text(json.dumps(example_po_event(po_number="PO-CLI-1")), encoding="utf-8")
    assert await asyncio.to_thread(main, [str(path), "--prefix", broker.prefix]) == 0
    assert (
        await asyncio.to_thread(main, ["--example", "--tenant", "acme", "--prefix", broker.prefix])
        == 0
    )
    printed = capsys.readouterr().out.split()
    assert len(printed) == 2
    bodies = [json.loads(m.body) for m in await broker.drain(broker.names.queue)]
    assert bodies[0]["po"]["number"] == "PO-CLI-1"
    assert bodies[1]["po"]["number"].startswith("TEST-")  # a new PO each time: enqueued
    assert bodies[1]["tenant_id"] == "acme"


async def test_with_a_real_account_the_example_goes_only_to_the_given_phone(
    broker: Broker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_live_env(monkeypatch)
    assert not get_settings().sandbox_mode
    with pytest.raises(SystemExit):
        main(["--example", "--prefix", broker.prefix])
    assert "needs --phone" in capsys.readouterr().err
    argv = ["--example", "--phone", "+34 600 111 222", "--po-number", "T-1", "--prefix",
            broker.prefix]  # fmt: skip
    assert await asyncio.to_thread(main, argv) == 0
    [message] = await broker.drain(broker.names.queue)
    body = json.loads(message.body)
    assert body["supplier"]["phone"] == "+34 600 111 222" and body["po"]["number"] == "T-1"


def test_the_command_says_why_it_cannot_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "missing.json")]) == 1
    assert "cannot read" in capsys.readouterr().err
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("RABBITMQ_URL", f"amqp://guest:hunter2@127.0.0.1:{port}/")
    get_settings.cache_clear()
    assert main(["--example"]) == 1
    err = capsys.readouterr().err
    assert "could not publish to amqp://guest:***@127.0.0.1" in err
    assert "hunter2" not in err
    with pytest.raises(SystemExit):
        main([])  # neither a file nor --example
