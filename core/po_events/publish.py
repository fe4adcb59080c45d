"""Publish a "PO approved" event to RabbitMQ as an ERP would (demos, tests, integrators).

The publisher declares the same durable topology as the consumer, so an event published
before the consumer ever ran waits in the queue instead of being dropped, and it waits
for the broker's confirm: when `publish_po_event` returns, RabbitMQ has the event.

From a shell, to check a deployment end to end (RABBITMQ_URL is read as by wanotify)::

    python -m core.po_events.publish event.json     # a file, or - for standard input
    python -m core.po_events.publish --example --phone "+34 600 000 000"   # a TEST-... PO
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import aio_pika

from core.models.types import utcnow
from core.po_events.schema import EVENT_TYPE
from core.po_events.topology import PoTopology, declare_topology


async def publish_po_event(
    url: str,
    event: Mapping[str, Any] | bytes,
    *,
    queue_prefix: str = "wanotify",
    routing_key: str | None = None,
    message_id: str | None = None,
    headers: Mapping[str, Any] | None = None,
    wait_seconds: float = 10.0,
) -> str:
    """Publish one event (a mapping, encoded as JSON, or raw bytes as-is); return its
    AMQP message id.

    `wait_seconds` bounds the connect and the broker's confirm. Raw bytes exist so
    tests and integrators can send exactly what a faulty ERP would.
    Raises `aio_pika.exceptions.DeliveryError` if the broker could not route the event.
    """
    names = PoTopology.for_prefix(queue_prefix)
    body = event if isinstance(event, bytes) else encode_event(event)
    if message_id is None and isinstance(event, Mapping) and event.get("event_id"):
        message_id = str(event["event_id"])
    message_id = message_id or uuid.uuid4().hex
    connection = await aio_pika.connect(
        url, timeout=wait_seconds, client_properties={"connection_name": "wanotify po publisher"}
    )
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        topology = await declare_topology(channel, names)
        await topology.exchange.publish(
            aio_pika.Message(
                body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message_id,
                type=EVENT_TYPE,
                app_id="wanotify",
                headers=dict(headers or {}),
            ),
            routing_key=routing_key or names.routing_key,
            timeout=wait_seconds,
        )
    return message_id


def encode_event(event: Mapping[str, Any]) -> bytes:
    """JSON bytes of an event; `Decimal` amounts are written as exact strings."""
    return json.dumps(event, default=_json_default, ensure_ascii=False).encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def example_po_event(
    *,
    tenant_id: str = "default",
    po_number: str = "4500012345",
    po_id: str | None = "98121",
    supplier_name: str = "Aceros del Norte S.L.",
    phone: str = "+34 612 345 678",
    language: str | None = "es",
    amount: Decimal | str = "1234.50",
    currency: str = "EUR",
    supplier_id: str | None = "S-0042",
    document_url: str | None = None,
    event_id: str | None = None,
    whatsapp_consent: bool | None = True,
) -> dict[str, Any]:
    """A well-formed "PO approved" event (a fresh event id unless given), for demos.

    `whatsapp_consent` True says the ERP holds the supplier's agreement to WhatsApp
    messages (None leaves the field out)."""
    event: dict[str, Any] = {
        "event_id": event_id or f"evt-{uuid.uuid4().hex[:16]}",
        "event_type": EVENT_TYPE,
        "tenant_id": tenant_id,
        "po": {"id": po_id, "number": po_number},
        "supplier": {"name": supplier_name, "phone": phone, "language": language,
                     "id": supplier_id},
        "total": {"amount": str(amount), "currency": currency},
        "approved_at": utcnow().isoformat(),
    }  # fmt: skip
    if document_url:
        event["document_url"] = document_url
    if whatsapp_consent is not None:
        event["supplier"]["whatsapp_consent"] = whatsapp_consent
    return event


def main(argv: list[str] | None = None) -> int:
    """`python -m core.po_events.publish`: publish one event from a file, stdin or the
    built-in example; print its message id. Exit 1 with one line when it cannot."""
    parser = argparse.ArgumentParser(
        prog="python -m core.po_events.publish",
        description='Publish a "PO approved" event to RabbitMQ (RABBITMQ_URL).',
    )
    parser.add_argument("file", nargs="?", help="the event as JSON; - reads standard input")
    parser.add_argument("--example", action="store_true", help="publish a made-up event")
    parser.add_argument("--tenant", default=None, help="tenant of --example (default tenant)")
    parser.add_argument(
        "--phone", default=None, help="supplier phone of --example (required with a real account)"
    )
    parser.add_argument("--po-number", default=None, help="PO number of --example (TEST-...)")
    parser.add_argument("--prefix", default="wanotify", help="exchange/queue name prefix")
    args = parser.parse_args(argv)
    from core.settings import get_settings

    settings = get_settings()
    if args.example == bool(args.file):
        parser.error("give an event FILE (or -) or --example, not both")
    if args.example and args.phone is None and not settings.sandbox_mode:
        # The made-up supplier's number could be someone's: never message it for real.
        parser.error("with a real WhatsApp account, --example needs --phone (your own number)")
    if args.example:
        example = example_po_event(
            tenant_id=args.tenant or settings.default_tenant,
            po_number=args.po_number or f"TEST-{uuid.uuid4().hex[:8].upper()}",
            **({"phone": args.phone} if args.phone else {}),
        )
        body: bytes = encode_event(example)
    elif args.file == "-":
        body = sys.stdin.buffer.read()
    else:
        try:
            with open(args.file, "rb") as handle:
                body = handle.read()
        except OSError as exc:
            print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 1
    try:
        message_id = asyncio.run(
            publish_po_event(settings.rabbitmq_url, body, queue_prefix=args.prefix)
        )
    except (OSError, aio_pika.exceptions.AMQPError, TimeoutError) as exc:
        from core.po_events.topology import safe_url

        print(
            f"error: could not publish to {safe_url(settings.rabbitmq_url)}: "
            f"{type(exc).__name__} {exc}".strip(),
            file=sys.stderr,
        )
        return 1
    print(message_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
