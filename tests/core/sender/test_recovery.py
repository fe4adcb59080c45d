"""Recovery after a crash: rows whose request never started are sent again, the others never.

Real database (SQLite file, or PostgreSQL when configured); the clock is passed to
`recover_stale` as `now`, so nothing sleeps.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine, update

from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.types import utcnow
from core.sandbox import SandboxServer
from core.sender import SlidingWindowLimiter, drain, faults, store
from core.sender.dispatcher import slice_rows
from core.sender.recovery import INFLIGHT_LOST_MESSAGE, recover_stale
from core.settings import SANDBOX_PHONE_NUMBER_ID, load_settings
from tests.core.sender.helpers import enqueue_notices, fast_options, phone, rows

M = WhatsAppMessage.__table__  # type: ignore[attr-defined]


def _claim(engine: Engine, worker: str, limit: int) -> list[store.ClaimedMessage]:
    cycle = store.claim_cycle(
        engine, worker_id=worker, phone_number_id=SANDBOX_PHONE_NUMBER_ID, limit=limit
    )
    return cycle.claimed


def test_mark_dates_only_rows_still_claimed_by_this_worker(engine: Engine) -> None:
    ids = enqueue_notices(engine, [phone(i) for i in range(5)])
    mine = _claim(engine, "w1", 3)
    assert [m.id for m in mine] == ids[:3]
    foreign = _claim(engine, "w2", 1)
    asked = [*(m.id for m in mine), foreign[0].id, ids[4]]  # w2's row and a pending one
    assert store.mark_started(engine, asked, "w1") == set(ids[:3])
    stored = rows(engine)
    assert all(stored[i].request_started_at is not None for i in ids[:3])
    assert stored[ids[3]].request_started_at is None  # another worker's claim
    assert stored[ids[4]].request_started_at is None  # still pending
    assert store.mark_started(engine, [], "w1") == set()


def test_unstarted_rows_of_a_dead_worker_go_back_to_pending_and_started_ones_never(
    engine: Engine,
) -> None:
    ids = enqueue_notices(engine, [phone(i) for i in range(6)])
    claimed = _claim(engine, "dead", 6)
    started = [m.id for m in claimed[:2]]
    store.mark_started(engine, started, "dead")
    later = utcnow() + timedelta(seconds=20)

    report = recover_stale(
        engine, lease_seconds=60, grace_seconds=120, unstarted_seconds=10, now=later
    )

    assert report.returned == 4 and report.needs_attention == 0
    stored = rows(engine)
    for message_id in ids[2:]:
        row = stored[message_id]
        assert row.status == MessageStatus.PENDING  # sent again, automatically
        assert row.claimed_by is None and row.attempt_count == 0
    for message_id in started:
        assert stored[message_id].status == MessageStatus.SENDING  # waits for a webhook

    # past lease and grace: a person decides about the started ones, with the reason
    much_later = utcnow() + timedelta(seconds=200)
    final = recover_stale(engine, lease_seconds=60, grace_seconds=120, now=much_later)
    assert final.needs_attention == 2
    stored = rows(engine)
    for message_id in started:
        assert stored[message_id].status == MessageStatus.NEEDS_ATTENTION
        assert stored[message_id].error_message == INFLIGHT_LOST_MESSAGE


def test_a_recent_claim_is_left_to_its_worker(engine: Engine) -> None:
    enqueue_notices(engine, [phone(1)])
    _claim(engine, "alive", 1)
    report = recover_stale(engine, lease_seconds=60, grace_seconds=60, unstarted_seconds=10)
    assert report.returned == 0
    assert {m.status for m in rows(engine).values()} == {MessageStatus.SENDING}


def test_a_row_taken_back_is_not_sent_by_the_worker_that_claimed_it(engine: Engine) -> None:
    (message_id,) = enqueue_notices(engine, [phone(1)])
    _claim(engine, "slow", 1)
    later = utcnow() + timedelta(seconds=30)
    assert (
        recover_stale(
            engine, lease_seconds=60, grace_seconds=60, unstarted_seconds=10, now=later
        ).returned
        == 1
    )
    again = _claim(engine, "other", 1)
    assert [m.id for m in again] == [message_id]
    # the slow worker wakes up: its mark finds the row claimed by another, sends nothing
    assert store.mark_started(engine, [message_id], "slow") == set()
    assert store.mark_started(engine, [message_id], "other") == {message_id}


def test_a_started_row_with_a_wamid_from_its_webhook_is_accepted_not_resent(
    engine: Engine,
) -> None:
    (message_id,) = enqueue_notices(engine, [phone(1)])
    _claim(engine, "dead", 1)
    store.mark_started(engine, [message_id], "dead")
    with engine.begin() as conn:
        conn.execute(update(M).where(M.c.id == message_id).values(whatsapp_message_id="wamid.X"))
    later = utcnow() + timedelta(seconds=90)
    report = recover_stale(engine, lease_seconds=60, grace_seconds=60, now=later)
    assert report.settled_by_webhook == 1 and report.returned == 0
    assert rows(engine)[message_id].status == MessageStatus.ACCEPTED


def test_a_claim_clears_an_old_mark_and_a_retry_forgets_it(engine: Engine) -> None:
    (message_id,) = enqueue_notices(engine, [phone(1)])
    (claimed,) = _claim(engine, "w1", 1)
    store.mark_started(engine, [message_id], "w1")
    error = store.ErrorFields(None, "retry", "Meta is busy", None, {})
    store.apply_outcomes(engine, [store.Retry(claimed, 1, utcnow(), error)], "w1")
    row = rows(engine)[message_id]
    assert row.status == MessageStatus.PENDING and row.request_started_at is None
    with engine.begin() as conn:  # a stray mark on a pending row (never written by us)
        conn.execute(update(M).where(M.c.id == message_id).values(request_started_at=utcnow()))
    _claim(engine, "w2", 1)
    assert rows(engine)[message_id].request_started_at is None


def test_recovery_refuses_durations_that_are_not_positive(engine: Engine) -> None:
    with pytest.raises(ValueError):
        recover_stale(engine, lease_seconds=60, grace_seconds=60, unstarted_seconds=0)


@pytest.mark.parametrize(
    "value", ["started", "started:0", "nowhere:1", "claimed:x", ":3", "claimed:-1"]
)
def test_malformed_crash_points_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        faults.from_env(sandbox_mode=True, environ={faults.ENV: value})


def test_crash_points_are_refused_outside_sandbox_mode_and_inert_when_unset() -> None:
    assert faults.from_env(sandbox_mode=False, environ={}) is None
    assert faults.from_env(sandbox_mode=True, environ={}) is None
    with pytest.raises(ValueError, match="refused outside sandbox mode"):
        faults.from_env(sandbox_mode=False, environ={faults.ENV: "started:1"})
    point = faults.from_env(sandbox_mode=True, environ={faults.ENV: "writing:3"})
    assert point is not None and (point.point, point.at) == ("writing", 3)
    point.reached("started")  # another point: not counted
    point.reached("writing")
    assert point.seen == 1  # alive: the kill is on the third visit


def test_requests_are_marked_started_per_slice_not_per_message(
    sandbox_env: SandboxServer, engine: Engine
) -> None:
    """A limiter that lets a whole queue through at once: each claimed chunk is marked in
    one UPDATE before its requests, every sent row carries the mark, each permit is dated."""
    sandbox_env.configure(latency_ms=50)
    ids = enqueue_notices(engine, [phone(i) for i in range(60)])
    limiter = SlidingWindowLimiter(10_000, slices=1)  # never waits: one slice for all
    report = asyncio.run(
        drain(load_settings(), engine, timeout=60, limiter=limiter, options=fast_options())
    )
    assert report.accepted == len(ids)
    assert 1 <= report.stats.slices <= len(ids) // 10  # marks per chunk, not per message
    assert limiter.pending == 0
    stored = rows(engine)
    for message_id in ids:
        row = stored[message_id]
        assert row.request_started_at is not None and row.accepted_at is not None
        assert row.claimed_at is not None
        assert row.claimed_at <= row.request_started_at <= row.accepted_at


def test_a_drain_waits_for_a_slow_mark_and_sends_its_rows(
    sandbox_env: SandboxServer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows whose mark is being written are work in hand: a drain polling for idleness
    meanwhile must not stop and release them unsent (a slow database, a loaded host)."""
    real = store.mark_started

    def slow(engine: Engine, ids: list[str], worker_id: str) -> set[str]:
        time.sleep(0.4)  # several idle polls (fast_options: every 0.05 s)
        return real(engine, ids, worker_id)

    monkeypatch.setattr(store, "mark_started", slow)
    (message_id,) = enqueue_notices(engine, [phone(1)])
    report = asyncio.run(drain(load_settings(), engine, timeout=60, options=fast_options()))
    assert report.accepted == 1 and not report.timed_out
    assert rows(engine)[message_id].status == MessageStatus.ACCEPTED


def test_try_acquire_counts_a_free_permit_and_never_waits() -> None:
    """The dispatcher's fast path: a free permit is taken at once, a full window says no
    and counts nothing."""
    now = [100.0]
    limiter = SlidingWindowLimiter(2, slices=1, margin=0.0, clock=lambda: now[0])
    assert limiter.try_acquire() and limiter.try_acquire()
    assert not limiter.try_acquire()  # the window holds two
    assert limiter.pending == 2
    limiter.sent()
    limiter.sent()
    assert not limiter.try_acquire()
    now[0] += 1.01  # both starts left the window
    assert limiter.try_acquire() and limiter.pending == 1


class _CountingLimiter(SlidingWindowLimiter):
    """Counts the sends it dated, so a test can compare them with the marks."""

    def __init__(self, cap: float) -> None:
        super().__init__(cap, margin=0.0)
        self.dated = 0

    def sent(self, *, awaits_answer: bool = False) -> float:
        self.dated += 1
        return super().sent(awaits_answer=awaits_answer)


def test_a_slice_is_marked_ahead_while_at_most_one_slice_is_unsent(
    sandbox_env: SandboxServer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each mark covers a slice (50 ms of sends at the cap) and starts while the slice
    before goes out, so no request waits for its mark; it starts only while at most one
    slice is marked and unsent, so a crash never leaves more than two slices marked but
    unrequested (issue 16)."""
    cap = 200
    size = slice_rows(cap)  # 10 rows
    limiter = _CountingLimiter(cap)
    real = store.mark_started
    unsent_before: list[int] = []  # rows marked but not yet dated, as each mark starts
    marked = 0

    def checked(engine: Engine, ids: list[str], worker_id: str) -> set[str]:
        nonlocal marked
        unsent_before.append(marked - limiter.dated)
        assert len(ids) <= size
        ours = real(engine, ids, worker_id)
        marked += len(ours)
        return ours

    monkeypatch.setattr(store, "mark_started", checked)
    ids = enqueue_notices(engine, [phone(i) for i in range(120)])
    report = asyncio.run(
        drain(load_settings(), engine, timeout=60, limiter=limiter, options=fast_options())
    )
    assert report.accepted == len(ids)
    assert report.stats.slices >= len(ids) // size  # one mark per slice
    assert max(unsent_before) <= size, unsent_before
    assert any(unsent > 0 for unsent in unsent_before)  # marked ahead, not after
