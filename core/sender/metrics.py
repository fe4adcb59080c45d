"""Prometheus metrics of a sender process (`wanotify worker`, the dashboard's sender).

Counters come from the running dispatchers' own `DispatchStats` (what this process
sent, failed, retried; Meta's refusals by error code); gauges are read from the
database at each scrape (queue depth, whether sending is paused and why), so every
sender of a number shows the same queue and pause. The business number's quality
rating comes from a periodic read of the Cloud API (`QualityProbe`). Every series
carries `phone_number_id`; rules aggregate with `max`/`sum by (phone_number_id)`.

`core.metrics_server` serves them on `GET /metrics` (opt-in with `wanotify worker
--metrics-port`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from core.control import sending_state
from core.sender.dispatcher import Dispatcher
from core.settings import Settings

log = logging.getLogger(__name__)

#: Quality ratings as numbers, so a drop is a fall in value (UNKNOWN/NA: 0).
QUALITY_SCORES = {"GREEN": 3, "YELLOW": 2, "RED": 1}
_CODE = re.compile(r"^(http)?[0-9]{1,7}$")
_MAX_REASON = 120
#: The outcome label of `wanotify_sender_messages_total`, and the stats field it counts.
OUTCOMES = {"sent": "accepted", "failed": "failed", "retried": "retried", "unknown": "unknown"}


def code_label(code: str) -> str:
    """A bounded label value for an error code (Meta's numbers, `httpNNN`), else `other`."""
    return code if _CODE.match(code) else "other"


def reason_label(reason: str | None) -> str:
    """A pause reason as a label value: one line, at most 120 characters."""
    text = " ".join((reason or "no reason given").split())
    return text[:_MAX_REASON]


@dataclass
class QualityReading:
    """The last quality rating read from the Cloud API (None until one succeeds)."""

    rating: str | None = None
    ok: bool = False  # whether the last read succeeded


class SenderMetrics(Collector):
    """Collects a sender process's metrics from its dispatchers and the database."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._dispatchers: list[Dispatcher] = []
        self._lock = threading.Lock()
        self.quality: dict[str, QualityReading] = {}

    def watch(self, dispatcher: Dispatcher) -> None:
        """Count `dispatcher`'s sends from now on (`run_worker(on_dispatcher=...)`)."""
        with self._lock:
            self._dispatchers.append(dispatcher)

    def phone_number_ids(self) -> list[str]:
        """The numbers this process sends for (the configured one when none runs yet)."""
        with self._lock:
            ids = {d.phone_number_id for d in self._dispatchers}
        return sorted(ids or {self.settings.phone_number_id})

    def registry(self) -> CollectorRegistry:
        """A registry holding only this collector (one per process or test)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        return registry

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """One scrape: counters from the dispatchers, gauges from the database."""
        yield from self._counters()
        yield from self._gauges()
        yield from self._quality()

    def _counters(self) -> Iterable[CounterMetricFamily]:
        messages = CounterMetricFamily(
            "wanotify_sender_messages",
            "Sends by outcome (sent: accepted by Meta) in this process",
            labels=["phone_number_id", "outcome"],
        )
        refusals = CounterMetricFamily(
            "wanotify_sender_refusals",
            "Send attempts Meta (or the network) refused, by error code, in this process",
            labels=["phone_number_id", "code"],
        )
        throttled = CounterMetricFamily(
            "wanotify_sender_throttled",
            "Refusals that slowed the dispatcher (rate limits)",
            labels=["phone_number_id"],
        )
        totals: dict[str, dict[str, int]] = {}
        codes: dict[tuple[str, str], int] = {}
        with self._lock:
            dispatchers = list(self._dispatchers)
        for number in self.phone_number_ids():
            totals[number] = {outcome: 0 for outcome in [*OUTCOMES, "throttled"]}
        for d in dispatchers:
            stats, row = d.stats, totals[d.phone_number_id]
            for outcome, name in OUTCOMES.items():
                row[outcome] += int(getattr(stats, name))
            row["throttled"] += stats.throttled
            for code, count in list(stats.by_code.items()):
                key = (d.phone_number_id, code_label(code))
                codes[key] = codes.get(key, 0) + count
        for number, row in totals.items():
            for outcome in OUTCOMES:
                messages.add_metric([number, outcome], row[outcome])
            throttled.add_metric([number], row["throttled"])
        for (number, code), count in sorted(codes.items()):
            refusals.add_metric([number, code], count)
        return [messages, refusals, throttled]

    def _gauges(self) -> Iterable[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "wanotify_sender_database_up",
            "1 when the last scrape could read the queue and pause state",
            labels=["phone_number_id"],
        )
        queue = GaugeMetricFamily(
            "wanotify_sender_queue_messages",
            "Messages in the outbox by state (pending, due, sending, needs_attention)",
            labels=["phone_number_id", "state"],
        )
        paused = GaugeMetricFamily(
            "wanotify_sender_paused",
            "1 while sending from the number is paused (reason and Meta code as labels)",
            labels=["phone_number_id", "reason", "code"],
        )
        for number in self.phone_number_ids():
            try:
                state = sending_state(self.engine, number)
            except Exception as exc:  # a scrape reports the outage, never raises
                log.warning("metrics: cannot read the sending state: %s", type(exc).__name__)
                up.add_metric([number], 0)
                continue
            up.add_metric([number], 1)
            depth = state.queue
            for name in ("pending", "due", "sending", "needs_attention"):
                queue.add_metric([number, name], getattr(depth, name))
            if state.paused:
                code = "" if state.code is None else str(state.code)
                paused.add_metric([number, reason_label(state.reason), code], 1)
            else:
                paused.add_metric([number, "", ""], 0)
        return [up, queue, paused]

    def _quality(self) -> Iterable[GaugeMetricFamily]:
        score = GaugeMetricFamily(
            "wanotify_phone_quality_score",
            "Meta's quality rating of the number: 3 GREEN, 2 YELLOW, 1 RED, 0 unknown",
            labels=["phone_number_id", "rating"],
        )
        probe_ok = GaugeMetricFamily(
            "wanotify_phone_quality_probe_ok",
            "1 when the last read of the quality rating from the Cloud API succeeded",
            labels=["phone_number_id"],
        )
        for number, reading in sorted(self.quality.items()):
            probe_ok.add_metric([number], 1 if reading.ok else 0)
            if reading.rating is not None:
                rating = reading.rating.upper()
                label = rating if rating in QUALITY_SCORES else "UNKNOWN"
                score.add_metric([number, label], QUALITY_SCORES.get(rating, 0))
        return [score, probe_ok]


class QualityProbe:
    """Reads the number's quality rating from the Cloud API every `interval` seconds."""

    def __init__(self, metrics: SenderMetrics, interval: float = 300.0) -> None:
        self.metrics = metrics
        self.interval = interval

    async def read_once(self) -> None:
        """One read; a failure keeps the last rating and marks the probe failed."""
        from core.cloud_api import CloudApiClient

        settings = self.metrics.settings
        number = settings.phone_number_id
        reading = self.metrics.quality.get(number) or QualityReading()
        try:
            async with asyncio.timeout(30), CloudApiClient(settings, max_connections=1) as client:
                health = await client.phone_health()
        except Exception as exc:  # any failure is "probe failed", logged
            log.warning("metrics: cannot read the quality rating: %s", type(exc).__name__)
            self.metrics.quality[number] = QualityReading(reading.rating, ok=False)
            return
        self.metrics.quality[number] = QualityReading(health.quality_rating, ok=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Read until `stop` is set."""
        while not stop.is_set():
            await self.read_once()
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                continue

