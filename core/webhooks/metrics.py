"""Prometheus metrics of the webhook app, in a registry of its own (one per app instance).

Label values that come from outside (status words, message types, field names) are
mapped onto a bounded set, so a new word from Meta cannot grow the series without end.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from core import clock
from core.webhooks.parse import KNOWN_MESSAGE_TYPES, KNOWN_STATUSES

if TYPE_CHECKING:
    from core.webhooks.apply import ApplyReport
    from core.webhooks.health import WebhookHealth

CONTENT_TYPE = CONTENT_TYPE_LATEST
_FIELD_NAME = re.compile(r"^[a-z_]{1,48}$")
_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def _aware(at: datetime) -> datetime:
    """A database time as aware UTC (SQLite hands back naive UTC)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _unix(at: datetime) -> float:
    return _aware(at).timestamp()


def _label(kind: str, word: str) -> str:
    """A bounded label value for an event's status word, message type or field name."""
    if kind == "status":
        return word if word in KNOWN_STATUSES else "other"
    if kind == "message":
        return word if word in KNOWN_MESSAGE_TYPES else "other"
    return word if _FIELD_NAME.match(word) else "other"


class WebhookMetrics:
    """Counters, histograms and gauges of one webhook app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "wanotify_webhook_requests",
            "Webhook POSTs answered, by outcome",
            ["outcome"],
            registry=r,
        )
        self.rejected = Counter(
            "wanotify_webhook_rejected_requests",
            "Webhook requests refused, by reason",
            ["reason"],
            registry=r,
        )
        self.events = Counter(
            "wanotify_webhook_events",
            "Events in applied webhook bodies, by kind and status (message type, field)",
            ["kind", "status"],
            registry=r,
        )
        self.applied = Counter(
            "wanotify_webhook_applied_events",
            "Events applied to the database, by kind and outcome",
            ["kind", "outcome"],
            registry=r,
        )
        self.apply_lag = Histogram(
            "wanotify_webhook_apply_lag_seconds",
            "Time from a receipt's commit to its application to messages",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.journal_batch = Histogram(
            "wanotify_webhook_journal_batch_receipts",
            "Receipts committed together by one journal write (group commit)",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.apply_errors = Counter(
            "wanotify_webhook_apply_errors",
            "Applier runs that failed because the database was busy or unreachable",
            registry=r,
        )
        self.parse_issues = Counter(
            "wanotify_webhook_parse_issues",
            "Parts of webhook bodies skipped as unusable (the rest was applied)",
            registry=r,
        )
        self.backlog = Gauge(
            "wanotify_webhook_backlog", "Acknowledged receipts not applied yet", registry=r
        )
        self.failed_receipts = Gauge(
            "wanotify_webhook_failed_receipts",
            "Receipts set aside after repeated apply failures",
            registry=r,
        )
        self.held = Gauge(
            "wanotify_webhook_held_statuses",
            "Status events not matched to a message, by state",
            ["state"],
            registry=r,
        )
        self.last_event = Gauge(
            "wanotify_webhook_last_event_timestamp_seconds",
            "When the last valid webhook delivery was received (Unix time; 0 before any)",
            registry=r,
        )
        self.oldest_unapplied_age = Gauge(
            "wanotify_webhook_oldest_unapplied_age_seconds",
            "Age of the oldest acknowledged receipt not applied yet (0 when none waits)",
            registry=r,
        )
        self.refused_signatures = Gauge(
            "wanotify_webhook_refused_signatures",
            "Deliveries refused for a bad signature since the last valid one (all processes)",
            registry=r,
        )
        self._accepted = self.requests.labels("accepted")  # once: this runs per request

    def count_rejected(self, reason: str) -> None:
        """One refused request."""
        self.requests.labels("rejected").inc()
        self.rejected.labels(reason).inc()

    def count_accepted(self) -> None:
        """One acknowledged (journalled) body."""
        self._accepted.inc()

    def count_applied(self, report: ApplyReport) -> None:
        """What one applier batch or sweep did, and the events in the receipts it took."""
        for (kind, word), count in report.events.items():
            self.events.labels(kind, _label(kind, word)).inc(count)
        if report.issues:
            self.parse_issues.inc(report.issues)
        statuses = report.statuses
        for outcome, count in (
            ("applied", statuses.applied),
            ("held", statuses.held),
            ("unmatched", statuses.unmatched),
            ("conflict", statuses.conflicts),
            ("duplicate", statuses.duplicates),
        ):
            if count:
                self.applied.labels("status", outcome).inc(count)
        if report.inbound.stored:
            self.applied.labels("message", "stored").inc(report.inbound.stored)
        if report.inbound.acknowledgements:
            self.applied.labels("acknowledgement", "stored").inc(report.inbound.acknowledgements)
        if report.templates_changed:
            self.applied.labels("template", "changed").inc(report.templates_changed)
        if report.failed_receipts:
            self.applied.labels("receipt", "failed").inc(report.failed_receipts)
        for lag in report.lags:
            self.apply_lag.observe(max(0.0, lag))

    def observe_health(self, health: WebhookHealth) -> None:
        """Refresh the gauges from a health reading (done at each scrape)."""
        if not health.database_ok:
            return
        self.backlog.set(health.backlog)
        self.failed_receipts.set(health.failed_receipts)
        self.held.labels("pending").set(health.held)
        self.held.labels("unmatched").set(health.unmatched)
        self.held.labels("conflict").set(health.conflicts)
        self.refused_signatures.set(health.rejected_signatures.count)
        if health.last_event_at is not None:
            self.last_event.set(_unix(health.last_event_at))
        oldest = health.oldest_unapplied_at
        age = 0.0 if oldest is None else (clock.now() - _aware(oldest)).total_seconds()
        self.oldest_unapplied_age.set(max(0.0, age))

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
