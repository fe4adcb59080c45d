"""Unit tests of the metric helpers: bounded labels, ages read from the injected clock."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core import clock
from core.sender.metrics import code_label, reason_label
from core.webhooks.health import RejectedSignatures, WebhookHealth
from core.webhooks.metrics import WebhookMetrics


def samples(metrics: WebhookMetrics) -> dict[str, float]:
    """The unlabelled samples of `metrics`, parsed from its Prometheus text."""
    text = generate_latest(metrics.registry).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def test_error_codes_outside_meta_s_shapes_become_other() -> None:
    assert code_label("131026") == "131026"
    assert code_label("http503") == "http503"
    for hostile in ("", "x" * 500, '1"}\nwanotify_fake 1', "12345678", "http", "-1"):
        assert code_label(hostile) == "other"


def test_a_pause_reason_label_is_one_short_line() -> None:
    assert reason_label(None) == "no reason given"
    assert reason_label("Token\nexpired\r\n  now") == "Token expired now"
    assert len(reason_label("a" * 10_000)) == 120


def test_webhook_ages_and_times_come_from_the_clock_and_the_reading() -> None:
    metrics = WebhookMetrics()
    naive_oldest = datetime(2030, 5, 1, 12, 0, 0)  # SQLite hands back naive UTC
    health = WebhookHealth(
        database_ok=True,
        last_event_at=datetime(2030, 5, 1, 12, 9, 0, tzinfo=UTC),
        oldest_unapplied_at=naive_oldest,
        rejected_signatures=RejectedSignatures(count=4),
    )
    with clock.frozen(datetime(2030, 5, 1, 12, 10, 30, tzinfo=UTC)):
        metrics.observe_health(health)
    values = samples(metrics)
    assert values["wanotify_webhook_oldest_unapplied_age_seconds"] == 630.0
    last = datetime(2030, 5, 1, 12, 9, 0, tzinfo=UTC).timestamp()
    assert values["wanotify_webhook_last_event_timestamp_seconds"] == last
    assert values["wanotify_webhook_refused_signatures"] == 4.0


def test_an_unreadable_database_leaves_the_gauges_as_they_were() -> None:
    metrics = WebhookMetrics()
    metrics.observe_health(
        WebhookHealth(database_ok=True, rejected_signatures=RejectedSignatures(2))
    )
    metrics.observe_health(WebhookHealth(database_ok=False, database_error="OperationalError"))
    assert samples(metrics)["wanotify_webhook_refused_signatures"] == 2.0
