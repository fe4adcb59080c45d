"""`core.webhooks.statuses` (with `fold` and `core.status`) through the real apply path.

Every test journals signed-shape bodies into a real SQLite file (or the PostgreSQL of
WANOTIFY_TEST_DATABASE_URL) and runs the applier, as the webhook app does after its 200.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text, update
from sqlmodel import Session

from core.models.events import StatusEventState
from core.models.templates import WhatsAppTemplate
from core.models.types import new_id
from core.webhooks.apply import sweep_held
from core.webhooks.health import read_health
from core.webhooks.sql import EVENTS, TEMPLATES
from tests.core.webhooks.helpers import (
    SAMPLE_FAILED_WAMID,
    SAMPLE_MESSAGE_ID,
    SAMPLE_WAMID,
    T0,
    UNDELIVERABLE,
    UTILITY,
    add_message,
    apply_all,
    final_columns,
    journal,
    message_row,
    sample,
    status,
    statuses_body,
    timeline,
    unix,
)

pytestmark = pytest.mark.clock  # decides by dates or ages: also run a year ahead


def test_the_samples_take_a_message_to_read_with_each_stage_time(engine: Engine) -> None:
    mid = add_message(engine, wamid=SAMPLE_WAMID, message_id=SAMPLE_MESSAGE_ID)
    journal(engine, sample("status_read.json"), sample("status_sent.json"))
    journal(engine, sample("status_delivered.json"))
    apply_all(engine)
    row = message_row(engine, mid)
    assert row["status"] == "read"
    assert row["sent_at"] == unix(1763990000)
    assert row["delivered_at"] == unix(1763990004)
    assert row["read_at"] == unix(1763990130)
    assert (row["pricing_category"], row["pricing_type"], row["pricing_model"]) == (
        "utility", "regular", "PMP",
    )  # fmt: skip
    assert row["billable"] is True
    assert row["wa_id"] == "34612345678"
    assert sorted(e["status"] for e in timeline(engine, SAMPLE_WAMID)) == [
        "delivered",
        "read",
        "sent",
    ]


def test_read_before_delivered_sets_both_then_an_earlier_delivered_wins(engine: Engine) -> None:
    mid = add_message(engine, wamid="wamid.R1")
    journal(engine, statuses_body(status("wamid.R1", "read", T0 + 60)))
    apply_all(engine)
    row = message_row(engine, mid)
    assert row["status"] == "read"
    assert row["read_at"] == row["delivered_at"] == row["sent_at"] == unix(T0 + 60)
    journal(engine, statuses_body(status("wamid.R1", "delivered", T0 + 5)))
    apply_all(engine)
    row = message_row(engine, mid)
    assert row["status"] == "read"
    assert row["delivered_at"] == row["sent_at"] == unix(T0 + 5)
    assert row["read_at"] == unix(T0 + 60)


def test_a_duplicate_changes_nothing(engine: Engine) -> None:
    mid = add_message(engine, wamid="wamid.D1")
    body = statuses_body(status("wamid.D1", "delivered", T0, pricing=UTILITY))
    journal(engine, body)
    apply_all(engine)
    before = message_row(engine, mid)
    # The same event again in another body (Meta's retry after another app's failure).
    again = statuses_body(
        status("wamid.D1", "delivered", T0, pricing=UTILITY),
        status("wamid.D1", "delivered", T0, pricing=UTILITY),
    )
    journal(engine, again)
    report = apply_all(engine)
    assert report.statuses.duplicates == 2 and report.statuses.messages_changed == 0
    assert message_row(engine, mid) == before
    assert len(timeline(engine, "wamid.D1")) == 1


def test_statuses_never_move_a_message_backwards(engine: Engine) -> None:
    mid = add_message(engine, wamid="wamid.B1")
    journal(engine, statuses_body(status("wamid.B1", "read", T0 + 30)))
    apply_all(engine)
    journal(
        engine,
        statuses_body(
            status("wamid.B1", "sent", T0 + 40),
            status("wamid.B1", "delivered", T0 + 50),
            status("wamid.B1", "failed", T0 + 60, errors=UNDELIVERABLE),
        ),
    )
    apply_all(engine)
    row = message_row(engine, mid)
    assert row["status"] == "read"
    assert row["sent_at"] == row["delivered_at"] == row["read_at"] == unix(T0 + 30)
    assert len(timeline(engine, "wamid.B1")) == 4  # every event stays in the timeline


def test_failed_keeps_code_title_and_details(engine: Engine) -> None:
    mid = add_message(engine, wamid=SAMPLE_FAILED_WAMID, phone="+34600000000")
    journal(engine, sample("status_failed.json"))
    apply_all(engine)
    row = message_row(engine, mid)
    assert row["status"] == "failed"
    assert row["failed_at"] == unix(1763990011)
    assert row["error_code"] == 131026
    assert row["error_title"] == "Message undeliverable"
    assert "Message Undeliverable" in row["error_message"]
    assert row["error_class"] is not None
    (event,) = timeline(engine, SAMPLE_FAILED_WAMID)
    assert (event["error_code"], event["error_title"], event["error_details"]) == (
        131026, "Message undeliverable", "Message Undeliverable.",
    )  # fmt: skip


def test_failed_after_sent_fails_but_delivered_later_wins(engine: Engine) -> None:
    mid = add_message(engine, wamid="wamid.F2")
    journal(
        engine,
        statuses_body(
            status("wamid.F2", "sent", T0),
            status("wamid.F2", "failed", T0 + 3, errors=UNDELIVERABLE),
        ),
    )
    apply_all(engine)
    assert message_row(engine, mid)["status"] == "failed"
    journal(engine, statuses_body(status("wamid.F2", "delivered", T0 + 2)))
    apply_all(engine)
    row = message_row(engine, mid)
    assert row["status"] == "delivered" and row["delivered_at"] == unix(T0 + 2)


def test_unknown_status_words_are_kept_in_the_timeline_only(engine: Engine) -> None:
    mid = add_message(engine, wamid="wamid.U1")
    journal(engine, statuses_body(status("wamid.U1", "warped", T0), status("wamid.U1", "sent", T0)))
    apply_all(engine)
    row = message_row(engine, mid)
    assert row["status"] == "sent"
    assert sorted(e["status"] for e in timeline(engine, "wamid.U1")) == ["sent", "warped"]


def test_an_unknown_wamid_is_matched_by_callback_data_and_recorded(engine: Engine) -> None:
    mid = add_message(engine, wamid=None, status_="sending")
    journal(engine, statuses_body(status("wamid.NEW1", "sent", T0, callback=mid)))
    apply_all(engine)
    row = message_row(engine, mid)
    assert row["whatsapp_message_id"] == "wamid.NEW1"
    assert row["status"] == "sent"
    (event,) = timeline(engine, "wamid.NEW1")
    assert event["state"] == StatusEventState.APPLIED and event["message_id"] == mid


def test_callback_data_naming_a_message_with_another_wamid_is_a_conflict(engine: Engine) -> None:
    mid = add_message(engine, wamid="wamid.REAL")
    journal(engine, statuses_body(status("wamid.OTHER", "read", T0, callback=mid)))
    apply_all(engine)
    row = message_row(engine, mid)
    assert row["status"] == "accepted" and row["whatsapp_message_id"] == "wamid.REAL"
    assert read_health(engine).conflicts == 1


def test_a_status_for_a_message_not_recorded_yet_is_held_then_applied(engine: Engine) -> None:
    journal(engine, statuses_body(status("wamid.LATE", "delivered", T0 + 4)))
    report = apply_all(engine)
    assert report.statuses.held == 1
    assert read_health(engine).held == 1
    mid = add_message(engine, wamid="wamid.LATE")
    swept = sweep_held(engine)
    assert swept.statuses.applied == 1
    row = message_row(engine, mid)
    assert row["status"] == "delivered" and row["delivered_at"] == unix(T0 + 4)
    assert read_health(engine).held == 0
    (event,) = timeline(engine, "wamid.LATE")
    assert event["state"] == StatusEventState.APPLIED and event["message_id"] == mid


def test_a_held_status_never_matched_shows_in_health(engine: Engine) -> None:
    received = unix(T0 + 60)
    journal(engine, statuses_body(status("wamid.NEVER", "sent", T0)), at=received)
    # Applies, then sweeps with the default grace (1 h) on a clock set 2 h later.
    report = apply_all(engine, now=received + timedelta(hours=2))
    assert report.statuses.held == 1
    health = read_health(engine)
    assert health.unmatched == 1 and health.needs_attention
    assert health.as_dict()["status"] == "attention"
    # Should the message turn up after all, a re-check with unmatched included applies it.
    mid = add_message(engine, wamid="wamid.NEVER")
    sweep_held(engine, include_unmatched=True)
    assert message_row(engine, mid)["status"] == "sent"
    assert read_health(engine).unmatched == 0


def test_a_held_duplicate_of_a_held_status_is_stored_once(engine: Engine) -> None:
    body = statuses_body(status("wamid.H2", "read", T0))
    journal(
        engine, body, statuses_body(status("wamid.H2", "read", T0), status("wamid.H2", "sent", T0))
    )
    apply_all(engine)
    assert len(timeline(engine, "wamid.H2")) == 2
    assert read_health(engine).held == 2


def test_conversation_is_stored(engine: Engine) -> None:
    mid = add_message(engine, wamid="wamid.C1")
    conversation = {"id": "CONV-9", "expiration_timestamp": str(T0 + 86400),
                    "origin": {"type": "service"}}  # fmt: skip
    journal(engine, statuses_body(status("wamid.C1", "sent", T0, pricing=UTILITY,
                                         conversation=conversation)))  # fmt: skip
    apply_all(engine)
    row = message_row(engine, mid)
    assert (row["conversation_id"], row["conversation_origin"]) == ("CONV-9", "service")
    (event,) = timeline(engine, "wamid.C1")
    assert event["conversation_expires_at"] == unix(T0 + 86400)


def test_a_template_paused_failure_holds_the_template(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(WhatsAppTemplate(tenant_id="default", template_name="po_notification",
                                     template_key="po_notification:es", language="es"))  # fmt: skip
        session.commit()
    mid = add_message(engine, wamid="wamid.T1")
    errors = [{"code": 132015, "title": "Template is paused"}]
    journal(engine, statuses_body(status("wamid.T1", "failed", T0, errors=errors)))
    report = apply_all(engine)
    assert message_row(engine, mid)["error_code"] == 132015
    with engine.connect() as conn:
        held = conn.execute(select(TEMPLATES.c.held_reason)).scalar_one()
    assert held
    assert report.statuses.messages_changed == 1


def test_a_sender_note_is_cleared_once_meta_reports_the_message(engine: Engine) -> None:
    mid = add_message(engine, wamid=None, status_="needs_attention")
    with engine.begin() as conn:
        conn.execute(text("UPDATE whatsapp_messages SET error_message = 'timed out' WHERE id = :i"),
                     {"i": mid})  # fmt: skip
    journal(engine, statuses_body(status("wamid.N1", "sent", T0, callback=mid)))
    apply_all(engine)
    row = message_row(engine, mid)
    assert row["status"] == "sent" and row["error_message"] is None


# --- order independence through the real apply path ---------------------------------------

STAGE_EVENTS: list[dict[str, Any]] = [
    {"word": "sent", "dt": 0, "pricing": UTILITY},
    {"word": "sent", "dt": 1},  # Meta's second `sent` with another time
    {"word": "delivered", "dt": 4, "pricing": UTILITY},
    {"word": "read", "dt": 60},
    {"word": "failed", "dt": 2, "errors": UNDELIVERABLE},
    {"word": "failed", "dt": 3, "errors": [{"code": 131049, "title": "Not delivered"}]},
    {"word": "deleted", "dt": 90},
    {"word": "sent", "dt": 0, "conversation": {"id": "CV", "origin": {"type": "utility"}}},
]


def _events(wamid: str, picks: list[int]) -> list[dict[str, Any]]:
    out = []
    for i in picks:
        e = STAGE_EVENTS[i]
        out.append(status(wamid, e["word"], T0 + e["dt"], pricing=e.get("pricing"),
                          errors=e.get("errors"), conversation=e.get("conversation")))  # fmt: skip
    return out


def _apply_as(engine: Engine, events: list[dict[str, Any]], cuts: list[int], held: bool) -> str:
    """A new message receiving `events` split into bodies at `cuts`; returns its id."""
    wamid = f"wamid.H{new_id()}"
    events = [{**e, "id": wamid} for e in events]
    mid = None if held else add_message(engine, wamid=wamid)
    bodies, start = [], 0
    for cut in [*sorted(set(cuts)), len(events)]:
        if cut > start:
            bodies.append(statuses_body(*events[start:cut]))
            start = cut
    for i, body in enumerate(bodies):
        journal(engine, body)
        if i % 2:
            apply_all(engine, max_receipts=1)
    apply_all(engine)
    if mid is None:
        mid = add_message(engine, wamid=wamid)
        sweep_held(engine)
    return mid


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    picks=st.lists(st.integers(0, len(STAGE_EVENTS) - 1), min_size=1, max_size=6, unique=True),
    seed=st.integers(0, 2**32 - 1),
    held=st.booleans(),
)
def test_any_order_split_and_duplication_converges_to_the_same_row(
    engine: Engine, picks: list[int], seed: int, held: bool
) -> None:
    rng = random.Random(seed)
    canonical = _events("wamid.X", picks)
    reference = final_columns(message_row(engine, _apply_as(engine, canonical, [], False)))
    assert reference["status"] != "accepted" or {e["status"] for e in canonical} == {"deleted"}
    shuffled = [dict(e) for e in canonical]
    shuffled += [dict(rng.choice(canonical)) for _ in range(rng.randint(0, 3))]  # duplicates
    rng.shuffle(shuffled)
    cuts = [rng.randint(0, len(shuffled)) for _ in range(rng.randint(0, 3))]
    mid = _apply_as(engine, shuffled, cuts, held)
    # The wamid differs per message; everything else must be equal.
    got = final_columns(message_row(engine, mid))
    got.pop("whatsapp_message_id")
    reference.pop("whatsapp_message_id")
    assert got == reference


def test_every_order_of_the_three_samples_gives_one_row(engine: Engine) -> None:
    import itertools

    names = ("status_sent.json", "status_delivered.json", "status_read.json")
    rows = []
    for order in itertools.permutations(names):
        with engine.begin() as conn:  # a fresh slate for the sample message
            conn.execute(EVENTS.delete())
            conn.execute(text("DELETE FROM webhook_receipts"))
            conn.execute(text("DELETE FROM whatsapp_messages"))
        mid = add_message(engine, wamid=SAMPLE_WAMID, message_id=SAMPLE_MESSAGE_ID)
        for name in order:
            journal(engine, sample(name))
            apply_all(engine)
        rows.append(final_columns(message_row(engine, mid)))
    assert all(r == rows[0] for r in rows) and rows[0]["status"] == "read"


def test_release_does_not_touch_applied_events(engine: Engine) -> None:
    mid = add_message(engine, wamid="wamid.A1")
    journal(engine, statuses_body(status("wamid.A1", "sent", T0)))
    apply_all(engine)
    with engine.begin() as conn:
        conn.execute(update(EVENTS).values(applied_at=None))
    sweep_held(engine, include_unmatched=True)
    assert message_row(engine, mid)["status"] == "sent"
    assert timeline(engine, "wamid.A1")[0]["applied_at"] is None


def test_statuses_that_cannot_match_never_crowd_out_ones_that_can(engine: Engine) -> None:
    """Another system's messages on the same number: their statuses never find a row."""
    strangers = [status(f"wamid.OTHER{n:04d}", "sent", T0) for n in range(30)]
    journal(engine, statuses_body(*strangers))
    journal(engine, statuses_body(status("wamid.OURS", "delivered", T0 + 4)))
    apply_all(engine)
    mid = add_message(engine, wamid="wamid.OURS")
    report = sweep_held(engine, limit=5)  # far fewer than the held statuses
    assert report.statuses.applied == 1
    assert message_row(engine, mid)["status"] == "delivered"
    assert read_health(engine).held == 30
