"""Several `wanotify worker` processes on one database: no double sends, one shared cap.

Three real worker processes claim from one outbox (FOR UPDATE SKIP LOCKED on
PostgreSQL; SQLite's single writer) and split WHATSAPP_MAX_MPS through the database.
The sandbox is set far above the cap, so its own count of accepted sends per sliding
one-second window measures the workers' combined rate, not its own refusals.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core import migrate
from core.db import get_engine
from core.models.messages import MessageStatus
from core.sandbox import SandboxServer
from core.sender.faults import ENV as CRASH_ENV
from tests.core.sender.crash import check_sent_once, kill_report, most_marked_unsent
from tests.core.sender.helpers import (
    enqueue_notices,
    phone,
    rows,
    start_worker,
    stop_worker,
    unsettled,
    wait_until,
    worker_env,
)

CAP = 30
WORKERS = 3
MESSAGES = 180


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database that worker processes share.

    The PostgreSQL case runs in the PostgreSQL pass, on its configured database (emptied),
    as every other PostgreSQL case does; the SQLite pass skips it (it ran it a second
    time, on a database of its own, ~33 s a run, proving nothing the other pass does not).
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'workers.db'}"
    else:
        url = request.getfixturevalue("empty_postgres_url")
    migrate.upgrade(url)
    yield url
    get_engine(url).dispose()


@pytest.mark.slow
def test_three_workers_share_the_cap_and_never_send_twice(
    sandbox: SandboxServer, shared_database: str, tmp_path: Path
) -> None:
    sandbox.configure(mps=10_000, latency_ms=100)
    engine: Engine = get_engine(shared_database)
    ids = enqueue_notices(engine, [phone(i) for i in range(MESSAGES)])
    # A wide margin: on a shared 2-core machine a worker may stall for a tenth of a
    # second between starting a send and the sandbox stamping it. The shares are still
    # what is tested: three workers that each took the whole cap would send 3x over it.
    env = worker_env(
        shared_database,
        sandbox.url,
        WHATSAPP_MAX_MPS=str(CAP),
        WHATSAPP_RATE_MARGIN_SECONDS="0.25",
    )
    log = tmp_path / "workers.log"
    workers = [start_worker(env, f"w{n}", log) for n in range(WORKERS)]
    try:
        wait_until(
            lambda: unsettled(engine) == 0,
            MESSAGES / CAP * 6 + 60,
            "the workers to send everything",
        )
    finally:
        codes = [stop_worker(w) for w in workers]
    assert codes == [0] * WORKERS, log.read_text()[-3000:]

    stats = sandbox.stats()
    assert stats["accepted"] == MESSAGES
    assert stats["duplicates"] == []  # no message sent twice
    assert stats["max_in_window"] <= CAP, log.read_text()[-3000:]  # combined, any 1 s window
    final = rows(engine)
    assert {m.status for m in final.values()} == {MessageStatus.ACCEPTED}
    assert set(final) == set(ids)
    senders = {m.claimed_by for m in final.values()}
    assert senders == {"w0", "w1", "w2"}, log.read_text()[-4000:]  # every worker took part


@pytest.mark.slow
def test_one_of_two_workers_killed_after_a_mark_the_other_finishes_the_batch(
    sandbox: SandboxServer, shared_database: str, tmp_path: Path
) -> None:
    """SIGKILL one worker just after it marked a slice started (its worst moment): the
    survivor's periodic recovery takes back the rows the dead one claimed but never
    requested and sends them; only its started requests wait for a person."""
    sandbox.configure(mps=10_000, latency_ms=300)
    engine: Engine = get_engine(shared_database)
    ids = enqueue_notices(engine, [phone(i) for i in range(120)])
    env = worker_env(
        shared_database,
        sandbox.url,
        WHATSAPP_MAX_MPS=str(CAP),
        WHATSAPP_RATE_MARGIN_SECONDS="0.25",
        # short, so the survivor soon takes back the dead worker's rows; not so short
        # that its own sends, slow on a loaded machine, outlive it
        WHATSAPP_CLAIM_LEASE_SECONDS="3",
        WHATSAPP_INFLIGHT_GRACE_SECONDS="3",
    )
    log = tmp_path / "workers.log"
    doomed = start_worker({**env, CRASH_ENV: "started:4"}, "doomed", log)
    survivor = start_worker(env, "survivor", log)
    try:
        doomed.wait(timeout=60)
        assert doomed.returncode == -signal.SIGKILL, log.read_text()[-3000:]
        at_kill = kill_report(engine, sandbox, latency_s=0.3)
        wait_until(lambda: unsettled(engine) == 0, 90, "the survivor to settle everything")
    finally:
        if doomed.poll() is None:
            doomed.kill()
        code = stop_worker(survivor)
    assert code == 0, log.read_text()[-3000:]

    final = rows(engine)
    assert set(final) == set(ids)
    attention = {i for i, m in final.items() if m.status == MessageStatus.NEEDS_ATTENTION}
    assert attention <= at_kill.sending  # only what the dead worker held
    assert {final[i].claimed_by for i in attention} <= {"doomed"}
    assert at_kill.lost_by("doomed") <= attention  # started: never sent again on their own
    # the killed slice was marked and never sent: the one bounded exception
    assert 0 < len(attention - at_kill.seen) <= most_marked_unsent(CAP)
    check_sent_once(engine, sandbox, attention)
    taken_back = {i for i in at_kill.sending - attention if final[i].claimed_by == "survivor"}
    assert taken_back, "the survivor sent none of the dead worker's unrequested rows"
