"""The RabbitMQ exchanges and queues of PO events, declared the same by consumer and publisher.

```
ERP --po.approved--> [wanotify.po] (topic) --po.approved--> (wanotify.po.approved) --> consumer
                                                                  | rejected / malformed
                                                                  v
                                      [wanotify.po.dlx] (topic) --#--> (wanotify.po.dead)
```
Everything is durable. The main queue names the dead-letter exchange, so a message an
operator rejects by hand lands in the dead-letter queue too; the consumer publishes
malformed events there itself, with the reason in the `x-wanotify-reason` header.
"""

from __future__ import annotations

from dataclasses import dataclass

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from yarl import URL

ROUTING_KEY = "po.approved"
REASON_HEADER = "x-wanotify-reason"
PROBLEMS_HEADER = "x-wanotify-problems"


@dataclass(frozen=True)
class PoTopology:
    """The names of the PO-event exchanges and queues under one prefix."""

    exchange: str
    queue: str
    dead_exchange: str
    dead_queue: str
    routing_key: str = ROUTING_KEY

    @classmethod
    def for_prefix(cls, prefix: str = "wanotify") -> PoTopology:
        """Names under `prefix` ("wanotify" in production; a unique one per test run)."""
        prefix = prefix.strip().rstrip(".")
        if not prefix:
            raise ValueError("the queue prefix must not be empty")
        return cls(
            exchange=f"{prefix}.po",
            queue=f"{prefix}.po.approved",
            dead_exchange=f"{prefix}.po.dlx",
            dead_queue=f"{prefix}.po.dead",
        )


@dataclass(frozen=True)
class DeclaredTopology:
    """The declared entities, ready to publish to and consume from."""

    exchange: AbstractExchange
    queue: AbstractQueue
    dead_exchange: AbstractExchange
    dead_queue: AbstractQueue


async def declare_topology(channel: AbstractChannel, names: PoTopology) -> DeclaredTopology:
    """Declare (idempotently) both exchanges, both queues and their bindings."""
    dead_exchange = await channel.declare_exchange(
        names.dead_exchange, ExchangeType.TOPIC, durable=True
    )
    dead_queue = await channel.declare_queue(names.dead_queue, durable=True)
    await dead_queue.bind(dead_exchange, routing_key="#")
    exchange = await channel.declare_exchange(names.exchange, ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(
        names.queue, durable=True, arguments={"x-dead-letter-exchange": names.dead_exchange}
    )
    await queue.bind(exchange, routing_key=names.routing_key)
    return DeclaredTopology(exchange, queue, dead_exchange, dead_queue)


def safe_url(url: str) -> str:
    """The broker URL with its password hidden, for logs and error messages."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else str(parsed)
