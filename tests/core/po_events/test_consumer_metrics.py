"""The PO event consumer's /metrics, scraped over HTTP while it consumes the real broker."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from core.metrics_server import serve_metrics
from core.po_events.consumer import consume_po_events
from core.po_events.metrics import PoConsumerMetrics
from core.po_events.publish import publish_po_event
from core.settings import get_settings
from tests.core.po_events.conftest import outbox, po_event, wait_until
from tests.fixtures.rabbitmq import Broker


def scrape(port: int) -> dict[str, float]:
    """`wanotify_po_events_total` by outcome, and the in-flight gauge, from the endpoint."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "wanotify_po_events_total":
                values[sample.labels["outcome"]] = sample.value
            elif sample.name == "wanotify_po_events_in_flight":
                values["in_flight"] = sample.value
    return values


async def test_outcomes_are_counted_as_they_happen(broker: Broker, po_templates: Engine) -> None:
    metrics = PoConsumerMetrics()
    server, _ = serve_metrics(metrics.registry, 0)
    port = server.server_port
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        consume_po_events(
            get_settings(), po_templates, stop=stop, queue_prefix=broker.prefix, ready=ready,
            metrics=metrics,
        )
    )  # fmt: skip
    try:
        await asyncio.wait_for(ready.wait(), 30)
        before = await asyncio.to_thread(scrape, port)
        assert before == {
            "enqueued": 0, "duplicate": 0, "forbidden": 0, "dead_lettered": 0,
            "requeued": 0, "in_flight": 0,
        }  # fmt: skip
        event = po_event()
        for body in (event, event, b'{"not": "an event"'):
            await publish_po_event(broker.url, body, queue_prefix=broker.prefix)

        def counted() -> dict[str, float] | None:
            values = scrape(port)
            done = values["enqueued"] + values["duplicate"] + values["dead_lettered"]
            return values if done == 3 else None

        after = await wait_until(counted, "three outcomes")
        assert after["enqueued"] == 1 and after["duplicate"] == 1
        assert after["dead_lettered"] == 1 and after["in_flight"] == 0
        assert len(outbox(po_templates)) == 1  # the counters match what the database holds
        await broker.drain(broker.names.dead_queue)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        server.shutdown()
