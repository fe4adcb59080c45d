"""Crash test: `wanotify worker` killed with SIGKILL mid-batch, then restarted.

Real processes, a real SQLite file, the sandbox over HTTP posting signed status
webhooks to the real webhook app. After the restart: no message was sent twice (the
sandbox counts our ids), none was lost, and none is silently stuck: a send that was in
flight ends as sent (its webhook matched by our id) or as needs-attention with the
reason, after the grace period, for a person to resend.

The kill lands at chosen points of the dispatcher's cycle (core.sender.faults, a
test-only crash point: just after a claim, just after a pacing slice was marked
started, just before outcomes are recorded) or from outside while requests are in
flight. Only the requests that had started (the sandbox's record) may wait for a
person; every row the dead worker had claimed but not requested goes back to pending
and is sent, once, after the restart.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.models.messages import MessageStatus
from core.models.types import utcnow
from core.sandbox import BackgroundServer, SandboxServer
from core.sender import INFLIGHT_LOST_MESSAGE
from core.sender.faults import ENV as CRASH_ENV
from core.sender.recovery import recover_stale
from core.settings import get_settings
from tests.core.sender.crash import (
    check_recovered,
    check_sent_once,
    kill_report,
    most_marked_unsent,
)
from tests.core.sender.helpers import (
    enqueue_notices,
    phone,
    rows,
    start_worker,
    status_counts,
    stop_worker,
    unsettled,
    wait_until,
    worker_env,
)
from webhook_app import WEBHOOK_PATH, create_app

REACHED_META = {
    MessageStatus.ACCEPTED,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
}


@pytest.fixture
def webhook_url(database_url: str, engine: Engine) -> Iterator[str]:
    """The real webhook app on a free port, applying events to the test's database."""
    server = BackgroundServer(create_app(get_settings(), engine))
    yield server.start() + WEBHOOK_PATH
    server.stop()


@pytest.mark.slow
def test_worker_killed_mid_batch_sends_nothing_twice_and_loses_nothing(
    sandbox: SandboxServer, database_url: str, engine: Engine, webhook_url: str, tmp_path: Path
) -> None:
    sandbox.configure(latency_ms=800, webhook_url=webhook_url, time_scale=1.0, duplicate_rate=0.2)
    ids = enqueue_notices(engine, [phone(i) for i in range(80)])
    env = worker_env(
        database_url,
        sandbox.url,
        WHATSAPP_MAX_MPS="20",
        WHATSAPP_INFLIGHT_GRACE_SECONDS="4",
        WHATSAPP_CLAIM_LEASE_SECONDS="4",
    )
    log = tmp_path / "worker.log"
    first = start_worker(env, "crash-1", log)
    try:
        wait_until(
            lambda: sandbox.stats(recipients=False)["accepted"] >= 25,
            60,
            "25 sends before the kill",
            every=0.2,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    at_kill = status_counts(engine)
    in_flight = {i for i, m in rows(engine).items() if m.status == MessageStatus.SENDING}
    assert at_kill[MessageStatus.SENDING] > 0, at_kill  # the kill caught sends in flight
    assert at_kill[MessageStatus.PENDING] > 0, at_kill  # ...and the batch was unfinished

    second = start_worker(env, "crash-2", log)
    try:
        wait_until(
            lambda: unsettled(engine) == 0,
            120,
            "every message to settle after the restart",
        )
    finally:
        assert stop_worker(second) == 0, log.read_text()

    stats = sandbox.stats()
    assert stats["duplicates"] == []  # no message reached the sandbox twice
    sent_ids = {m["biz_opaque_callback_data"] for m in sandbox.messages(limit=1000)}
    assert len(sent_ids) == stats["accepted"]
    final = rows(engine)
    assert set(final) == set(ids)  # none lost
    for message_id, message in final.items():
        if message_id in sent_ids:  # reached Meta: recorded as such, wamid and all
            assert message.status in REACHED_META, (message_id, message.status)
            assert message.whatsapp_message_id is not None
        else:  # never reached Meta: a person is asked, with the reason
            assert message.status == MessageStatus.NEEDS_ATTENTION, (message_id, message.status)
            assert message.error_message == INFLIGHT_LOST_MESSAGE
    attention = sum(m.status == MessageStatus.NEEDS_ATTENTION for m in final.values())
    assert attention <= at_kill[MessageStatus.SENDING]  # only what the dead worker held
    assert stats["accepted"] + attention == len(ids)
    # sends whose answer died with the worker were settled by their webhook (our id)
    assert in_flight & sent_ids, "no in-flight send had reached the sandbox"
    assert all(final[i].status in REACHED_META for i in in_flight & sent_ids)


CAP = 40
#: short, so the test ends soon; not so short that the restarted worker's own sends,
#: slow on a loaded machine, outlive it (they would wait for a person too)
LEASE = 3.0


@pytest.mark.slow
@pytest.mark.parametrize(
    "point",
    ["claimed:3", "started:5", "writing:3", "request"],
    ids=["mid-claim", "after-mark", "mid-write", "mid-request"],
)
def test_kill_at_each_point_of_the_cycle_asks_a_person_only_about_started_requests(
    point: str, sandbox: SandboxServer, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    # slow answers: whichever point the kill lands on, requests are in flight
    sandbox.configure(mps=10_000, latency_ms=400)
    ids = enqueue_notices(engine, [phone(i) for i in range(60)])
    env = worker_env(
        database_url,
        sandbox.url,
        WHATSAPP_MAX_MPS=str(CAP),
        WHATSAPP_CLAIM_LEASE_SECONDS=str(LEASE),
        WHATSAPP_INFLIGHT_GRACE_SECONDS=str(LEASE),
    )
    log = tmp_path / "worker.log"
    hooked = point != "request"
    first = start_worker({**env, CRASH_ENV: point} if hooked else env, "crash-1", log)
    try:
        if not hooked:
            wait_until(lambda: sandbox.stats(recipients=False)["accepted"] >= 15, 60, "15 sends")
            first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL, log.read_text()[-3000:]
    at_kill = kill_report(engine, sandbox, latency_s=0.4)
    assert at_kill.sending, at_kill  # the kill caught claimed rows
    assert len(at_kill.seen) < len(ids)  # ...and the batch unfinished

    # past the lease, as a restarted worker's first recovery pass sees it
    report = recover_stale(
        engine,
        lease_seconds=LEASE,
        grace_seconds=LEASE,
        unstarted_seconds=LEASE,
        now=utcnow() + timedelta(seconds=LEASE + 1),
    )
    # a kill between a slice's mark committing and its requests leaving leaves its
    # rows marked but unrequested: the one case where a person is asked about a send
    # that never left. Slices are marked one ahead on a thread of their own, so a kill
    # at any point (a claim committing meanwhile, or from outside) can find up to two
    # slices so: whatever the point, at most that many more than had really started.
    not_requested = most_marked_unsent(CAP)
    attention = check_recovered(engine, at_kill, not_requested)
    if point.startswith("started"):
        assert attention - at_kill.seen, "the killed slice was marked, never sent"
    if point.startswith("claimed"):
        assert report.returned > 0  # the fresh claim went back to pending
    assert report.needs_attention == len(attention)

    second = start_worker(env, "crash-2", log)
    try:
        wait_until(lambda: unsettled(engine) == 0, 60, "the rest to be sent after the restart")
    finally:
        assert stop_worker(second) == 0, log.read_text()[-3000:]
    check_sent_once(engine, sandbox, attention)
    assert len(attention) <= len(at_kill.answer_lost) + not_requested
