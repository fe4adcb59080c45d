"""Prometheus metrics of the PO event consumer (`wanotify consume-po-events --metrics-port`).

Per process: events handled by outcome (`enqueued`, `duplicate`, `forbidden` (another
tenant's), `dead_lettered`, `requeued`: a transient database or dead-letter error) and
the events in flight.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

#: The outcomes counted (`wanotify_po_events_total{outcome}`).
OUTCOMES = ("enqueued", "duplicate", "forbidden", "dead_lettered", "requeued")


class PoConsumerMetrics:
    """The consumer's counters, in a registry of their own (one per process or test)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "wanotify_po_events",
            "PO events handled by this consumer, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:  # every series exists from the start (rate() needs it)
            self.events.labels(outcome)
        self.in_flight = Gauge(
            "wanotify_po_events_in_flight",
            "PO events being handled (delivered, not yet acked or requeued)",
            registry=self.registry,
        )

    def count(self, outcome: str) -> None:
        """One event handled with `outcome` (one of OUTCOMES)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown PO event outcome {outcome!r}")
        self.events.labels(outcome).inc()
