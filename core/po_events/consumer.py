"""`wanotify consume-po-events`: "PO approved" events from RabbitMQ into the outbox, once each.

Delivery guarantees, in order of importance:

- A message is acked only after its outbox row is committed (or it was recognised as a
  duplicate of a committed row). A crash between commit and ack means a redelivery,
  which the PO-derived idempotency key turns into "duplicate": nothing is sent twice.
- A malformed or unusable event is published to the dead-letter exchange with the reason
  in `x-wanotify-reason` (the original body and headers kept), then acked: it never
  blocks the queue and never disappears silently.
- A transient database error (locked, read-only, unreachable) nacks the message back onto
  the queue after a growing pause, so a database outage delays notices but loses none.
- A lost broker connection is re-established by aio-pika's robust connection, which
  restores the channel, its prefetch and the consumer; SIGTERM/SIGINT stop gracefully:
  no new deliveries, in-flight events finish and are acked, then the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Iterator
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    ConsumerTag,
)
from aiormq.exceptions import ProbableAuthenticationError
from sqlalchemy import Engine

from core.models.types import utcnow
from core.po_events.intake import TRANSIENT_DB_ERRORS, handle_po_event, short_error
from core.po_events.metrics import PoConsumerMetrics
from core.po_events.topology import (
    PROBLEMS_HEADER,
    REASON_HEADER,
    DeclaredTopology,
    PoTopology,
    declare_topology,
    safe_url,
)
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 2000
MAX_PROBLEMS = 20


class PoConsumerError(RuntimeError):
    """The consumer cannot run as configured (e.g. the broker refuses the login)."""


async def consume_po_events(
    settings: Settings | None = None,
    engine: Engine | None = None,
    *,
    stop: asyncio.Event | None = None,
    queue_prefix: str = "wanotify",
    prefetch: int = 8,
    retry_delay: float = 1.0,
    max_retry_delay: float = 30.0,
    reconnect_interval: float = 2.0,
    ready: asyncio.Event | None = None,
    metrics: PoConsumerMetrics | None = None,
) -> None:
    """Consume "PO approved" events until `stop` is set (or SIGTERM/SIGINT when no `stop`).

    `queue_prefix` names the exchanges and queues (see `core.po_events.topology`);
    `prefetch` bounds the events in flight; a transient database error requeues an event
    after `retry_delay` seconds, doubling up to `max_retry_delay` while errors persist.
    `ready` is set once the queue is being consumed. Raises `PoConsumerError` when the
    broker refuses the login; an unreachable broker is retried until stopped. `metrics`,
    when given, counts each event's outcome (`wanotify consume-po-events --metrics-port`).
    """
    settings = settings or get_settings()
    if prefetch < 1:
        raise ValueError("prefetch must be at least 1")
    with _stop_on_signals(stop) as stop_event:
        names = PoTopology.for_prefix(queue_prefix)
        connection = await _connect(
            settings.rabbitmq_url,
            stop_event,
            reconnect_interval,
            f"wanotify consumer {names.queue}",
        )
        if connection is None:  # stopped before the broker was reachable
            return
        worker = _Worker(
            engine=engine,
            stop=stop_event,
            retry_delay=retry_delay,
            max_retry_delay=max_retry_delay,
            metrics=metrics,
        )
        try:
            channel: AbstractRobustChannel = connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            await channel.initialize()
            await channel.set_qos(prefetch_count=prefetch)
            worker.topology = await declare_topology(channel, names)
            tag: ConsumerTag = await worker.topology.queue.consume(worker.on_message)
            log.info(
                "consuming PO events from queue %s on %s (prefetch %d)",
                names.queue, safe_url(settings.rabbitmq_url), prefetch,
            )  # fmt: skip
            if ready is not None:
                ready.set()
            await stop_event.wait()
            log.info("stopping the PO event consumer: finishing events in flight")
            with contextlib.suppress(Exception):
                await worker.topology.queue.cancel(tag)
            await worker.drain()
        finally:
            await connection.close()
        log.info("PO event consumer stopped")


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event | None) -> Iterator[asyncio.Event]:
    """The caller's stop event, or one that SIGTERM/SIGINT set (main thread only)."""
    if stop is not None:
        yield stop
        return
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, event.set)
                installed.append(signum)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix loops
                pass
    try:
        yield event
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


async def _connect(
    url: str, stop: asyncio.Event, reconnect_interval: float, name: str
) -> AbstractRobustConnection | None:
    """A robust connection; retry the first connect until it works or `stop` is set."""
    delay = reconnect_interval
    while not stop.is_set():
        try:
            connection = await aio_pika.connect_robust(
                url,
                reconnect_interval=reconnect_interval,
                client_properties={"connection_name": name},
            )
        except ProbableAuthenticationError:
            raise PoConsumerError(
                f"RabbitMQ refused the login at {safe_url(url)}: check RABBITMQ_URL"
            ) from None
        except (OSError, aio_pika.exceptions.AMQPError) as exc:
            log.warning(
                "RabbitMQ not reachable at %s (%s); retrying in %.0f s",
                safe_url(url), exc, delay,
            )  # fmt: skip
            await _sleep_unless(stop, delay)
            delay = min(delay * 2, 30.0)
            continue
        connection.close_callbacks.add(_on_connection_lost)
        connection.reconnect_callbacks.add(_on_reconnected)
        return connection
    return None


def _on_connection_lost(_connection: Any, exc: BaseException | None = None) -> None:
    if exc is not None and not isinstance(exc, asyncio.CancelledError):
        log.warning("lost the RabbitMQ connection (%s); reconnecting", exc)


def _on_reconnected(_connection: Any) -> None:
    log.info("reconnected to RabbitMQ; consuming PO events again")


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class _Worker:
    """Handles deliveries: one outbox call per event, then ack, dead-letter or requeue."""

    def __init__(
        self,
        *,
        engine: Engine | None,
        stop: asyncio.Event,
        retry_delay: float,
        max_retry_delay: float,
        metrics: PoConsumerMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.stop = stop
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.topology: DeclaredTopology | None = None
        self.failures = 0  # consecutive transient failures, for the backoff
        self.inflight: set[asyncio.Task[Any]] = set()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        """aio-pika's callback: process one delivery and settle it exactly once."""
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        if self.metrics is not None:
            self.metrics.in_flight.inc()
        try:
            await self._process(message)
        finally:
            if task is not None:
                self.inflight.discard(task)
            if self.metrics is not None:
                self.metrics.in_flight.dec()

    async def _process(self, message: AbstractIncomingMessage) -> None:
        try:
            result = await asyncio.to_thread(
                handle_po_event, message.body, engine=self.engine, source="rabbitmq"
            )
        except TRANSIENT_DB_ERRORS as exc:
            await self._requeue_later(message, f"database unavailable: {short_error(exc)}")
            return
        except Exception as exc:
            log.exception("unexpected error while handling a PO event; dead-lettering it")
            await self._dead_letter(
                message,
                [f"internal error while queuing the notice ({type(exc).__name__}); "
                 "see the consumer's log"],
            )  # fmt: skip
            return
        self.failures = 0
        if result.status == "rejected":
            await self._dead_letter(message, list(result.problems))
        else:
            self._count(result.status)
            await _settle(message.ack(), "ack")

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.count(outcome)

    async def _requeue_later(self, message: AbstractIncomingMessage, why: str) -> None:
        self.failures += 1
        self._count("requeued")
        delay = min(self.retry_delay * 2 ** (self.failures - 1), self.max_retry_delay)
        log.warning("PO event not processed (%s); requeued, retrying in %.1f s", why, delay)
        await _sleep_unless(self.stop, delay)
        await _settle(message.nack(requeue=True), "nack")

    async def _dead_letter(self, message: AbstractIncomingMessage, problems: list[str]) -> None:
        """Publish the event, untouched, to the dead-letter exchange with why; then ack."""
        assert self.topology is not None
        problems = [p[:500] for p in problems[:MAX_PROBLEMS]] or ["unusable event"]
        reason = "; ".join(problems)[:MAX_REASON_CHARS]
        headers: dict[str, Any] = dict(message.headers or {})
        headers.update(
            {
                REASON_HEADER: reason,
                PROBLEMS_HEADER: problems,
                "x-wanotify-original-exchange": message.exchange or "",
                "x-wanotify-original-routing-key": message.routing_key or "",
                "x-wanotify-dead-lettered-at": utcnow().isoformat(),
            }
        )
        dead = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            timestamp=message.timestamp,
            type=message.type,
            app_id=message.app_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await self.topology.dead_exchange.publish(
                dead, routing_key=message.routing_key or PoTopology.routing_key
            )
        except Exception as exc:  # not confirmed: keep the original until it can be moved
            await self._requeue_later(message, f"dead-letter publish failed: {short_error(exc)}")
            return
        log.warning("PO event dead-lettered: %s", reason)
        self._count("dead_lettered")
        await _settle(message.ack(), "ack")

    async def drain(self, grace: float = 30.0) -> None:
        """Wait for events in flight to finish (and be acked) before the connection closes."""
        pending = [task for task in self.inflight if not task.done()]
        if not pending:
            return
        _done, still = await asyncio.wait(pending, timeout=grace)
        if still:
            log.warning("%d PO event(s) still in flight at stop; the broker redelivers them",
                        len(still))  # fmt: skip


async def _settle(action: Awaitable[Any], what: str) -> None:
    """Ack or nack; a lost channel is not an error: the broker redelivers the message."""
    try:
        await action
    except Exception as exc:
        log.info(
            "could not %s a PO event (%s); the broker will redeliver it and it will be "
            "recognised as already handled", what, short_error(exc),
        )  # fmt: skip
