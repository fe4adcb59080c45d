"""The webhook plan of an accepted message: order, pricing, faults, determinism."""

from __future__ import annotations

from core.sandbox.catalog import Catalog
from core.sandbox.config import SandboxConfig
from core.sandbox.planner import PlannedEvent, plan_events, profile_name
from core.sandbox.validation import validate_message
from tests.core.sandbox.helpers import po_notification, text

CLEAN = SandboxConfig(duplicate_rate=0.0, reorder_rate=0.0, reply_rate=0.0, fail_rate=0.0)


def _plan(body: dict, config: SandboxConfig = CLEAN, wamid: str = "wamid.X") -> list[PlannedEvent]:
    return plan_events(validate_message(body, Catalog()), wamid, config, 1_800_000_000.0)


def _kinds(events: list[PlannedEvent]) -> list[str]:
    ordered = sorted(events, key=lambda e: e.delay)
    return [e.payload.get("status") or e.kind for e in ordered]


def test_clean_plan_is_sent_delivered_read_with_realistic_delays() -> None:
    events = _plan(po_notification())
    assert _kinds(events) == ["sent", "delivered", "read"]
    sent, delivered, read = sorted(events, key=lambda e: e.delay)
    assert 0.2 <= sent.delay <= 1.0
    assert 1.0 <= delivered.delay - sent.delay <= 5.0
    assert 5.0 <= read.delay - delivered.delay <= 60.0
    assert sent.payload["timestamp"] == str(1_800_000_000 + int(sent.delay))


def test_time_scale_shrinks_every_delay() -> None:
    slow = _plan(po_notification())
    fast = _plan(po_notification(), SandboxConfig(**{**CLEAN.public(), "time_scale": 0.01}))
    for a, b in zip(
        sorted(slow, key=lambda e: e.delay), sorted(fast, key=lambda e: e.delay), strict=True
    ):
        assert abs(b.delay - a.delay * 0.01) < 1e-9


def test_same_seed_and_wamid_give_the_same_plan_other_wamids_differ() -> None:
    config = SandboxConfig(duplicate_rate=0.5, reorder_rate=0.5, reply_rate=0.5)
    assert _plan(po_notification(), config, "wamid.A") == _plan(
        po_notification(), config, "wamid.A"
    )
    plans = {
        tuple(round(e.delay, 6) for e in _plan(po_notification(), config, f"wamid.{i}"))
        for i in range(10)
    }
    assert len(plans) == 10


def test_every_rate_at_one_duplicates_every_event() -> None:
    config = SandboxConfig(**{**CLEAN.public(), "duplicate_rate": 1.0})
    events = _plan(po_notification(), config)
    assert sum(e.duplicate for e in events) == 3
    originals = [e for e in events if not e.duplicate]
    for copy in (e for e in events if e.duplicate):
        assert copy.payload in [o.payload for o in originals]
        assert copy.delay > min(o.delay for o in originals if o.payload == copy.payload)


def test_fail_rate_one_fails_every_message_without_sent() -> None:
    config = SandboxConfig(**{**CLEAN.public(), "fail_rate": 1.0})
    [event] = _plan(po_notification(), config)
    assert event.payload["status"] == "failed"
    assert event.payload["errors"][0]["code"] == 131026
    assert "pricing" not in event.payload


def test_unread_messages_stop_at_delivered() -> None:
    config = SandboxConfig(**{**CLEAN.public(), "read_rate": 0.0})
    assert _kinds(_plan(po_notification(), config)) == ["sent", "delivered"]


def test_reply_comes_after_read_and_opens_the_window() -> None:
    events = _plan(po_notification("+34600000200"))
    assert _kinds(events) == ["sent", "delivered", "read", "message"]
    reply = events[-1]
    assert reply.opens_window == "34600000200"
    assert reply.payload["messages"][0]["button"]["payload"] == "ack:PO-1"
    assert reply.payload["contacts"][0]["profile"]["name"] == profile_name("34600000200")


def test_text_messages_never_get_a_button_reply() -> None:
    config = SandboxConfig(**{**CLEAN.public(), "reply_rate": 1.0})
    assert _kinds(_plan(text(), config)) == ["sent", "delivered", "read"]
    assert all(
        e.payload.get("pricing", {}).get("category", "service") == "service" for e in _plan(text())
    )


def test_silent_number_has_no_plan() -> None:
    assert _plan(po_notification("+34600000099")) == []
