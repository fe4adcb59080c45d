"""The automatic reminders' loop as the sender process runs it: `run_worker` starts it
beside its dispatchers, it sends what is due by the injected clock, a failing run never
stops it, and setting `stop` ends it."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from core import clock
from core.followup import scheduler
from core.models.messages import WhatsAppMessage
from tests.core.followup.helpers import T0, notice, ready, setting

pytestmark = pytest.mark.clock
M = WhatsAppMessage.__table__  # type: ignore[attr-defined]


def _reminders(engine: Engine) -> int:
    with engine.connect() as conn:
        query = select(func.count()).where(M.c.idempotency_key.like("reminder:%"))
        return int(conn.execute(query).scalar_one())


async def _until(predicate: Any, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return bool(predicate())


async def test_the_loop_sends_what_is_due_and_stops(engine: Engine) -> None:
    ready(engine)
    notice(engine, "PO-L1", T0 - 30 * timedelta(hours=1), number="+34699500001")
    setting(engine, auto=True)
    stop = asyncio.Event()
    runs: list[Any] = []
    with clock.frozen(T0):
        task = asyncio.create_task(scheduler.run_scheduler(engine, stop, tick=0.01,
                                                           on_run=runs.extend))  # fmt: skip
        assert await _until(lambda: _reminders(engine) == 1)
        stop.set()
        await asyncio.wait_for(task, 20)
    assert [r.queued for r in runs] == [1]  # due once; not again within its 6 hours


async def test_a_failing_run_is_logged_and_the_loop_goes_on(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def broken(_engine: Engine, *, now: Any = None) -> list[Any]:
        calls.append(1)
        raise RuntimeError("database away")

    monkeypatch.setattr(scheduler, "run_due", broken)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run_scheduler(engine, stop, tick=0.01))
    assert await _until(lambda: len(calls) >= 2)
    stop.set()
    await asyncio.wait_for(task, 20)


async def test_the_sender_worker_runs_the_schedule(
    engine: Engine, sandbox_env: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.sender import run_worker
    from core.settings import get_settings

    started = asyncio.Event()

    async def fake(_engine: Engine, stop: asyncio.Event, **_: Any) -> None:
        started.set()
        await stop.wait()

    monkeypatch.setattr(scheduler, "run_scheduler", fake)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(get_settings(), engine, stop=stop, worker_id="t"))
    try:
        await asyncio.wait_for(started.wait(), 30)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)
