"""`core.webhooks.metrics`: Prometheus text with bounded labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from core.webhooks.apply import ApplyReport
from core.webhooks.health import WebhookHealth
from core.webhooks.metrics import WebhookMetrics


def samples(metrics: WebhookMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def test_events_by_kind_and_status_lag_and_rejections() -> None:
    metrics = WebhookMetrics()
    report = ApplyReport(receipts=2, lags=[0.02, 0.3])
    report.events["status", "delivered"] += 3
    report.events["status", "Some-New-Word"] += 1
    report.events["message", "button"] += 1
    report.events["other", "account_update"] += 1
    report.events["other", "Bad Field!"] += 1
    report.statuses.applied = 3
    report.statuses.held = 1
    metrics.count_applied(report)
    metrics.count_rejected("bad_signature")
    metrics.count_rejected("bad_signature")
    metrics.count_accepted()
    metrics.observe_health(WebhookHealth(database_ok=True, backlog=4, held=1, unmatched=2))
    got = samples(metrics)
    ev = "wanotify_webhook_events_total"
    assert got[ev, (("kind", "status"), ("status", "delivered"))] == 3
    assert got[ev, (("kind", "status"), ("status", "other"))] == 1  # bounded label
    assert got[ev, (("kind", "message"), ("status", "button"))] == 1
    assert got[ev, (("kind", "other"), ("status", "account_update"))] == 1
    assert got[ev, (("kind", "other"), ("status", "other"))] == 1
    assert got["wanotify_webhook_rejected_requests_total", (("reason", "bad_signature"),)] == 2
    assert got["wanotify_webhook_requests_total", (("outcome", "accepted"),)] == 1
    assert got["wanotify_webhook_apply_lag_seconds_count", ()] == 2
    assert got["wanotify_webhook_backlog", ()] == 4
    assert got["wanotify_webhook_held_statuses", (("state", "unmatched"),)] == 2
    applied = "wanotify_webhook_applied_events_total"
    assert got[applied, (("kind", "status"), ("outcome", "held"))] == 1


def test_each_app_has_its_own_registry() -> None:
    a, b = WebhookMetrics(), WebhookMetrics()
    a.count_rejected("too_large")
    assert ("wanotify_webhook_rejected_requests_total", (("reason", "too_large"),)) not in samples(
        b
    )
