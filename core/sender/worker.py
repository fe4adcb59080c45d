"""Entry points the CLI, the dashboard and tests call: run a worker, or drain the queue."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine

from core import heap
from core.alerts import delivery as alert_delivery
from core.control import QueueDepth, queue_depth
from core.sender.dispatcher import (
    ClientFactory,
    Dispatcher,
    DispatcherOptions,
    DispatchStats,
)
from core.sender.fleet import Fleet
from core.sender.ratelimit import RateLimiter
from core.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a worker's top coroutine on uvloop when it is installed, else on asyncio's loop.

    uvloop's event loop costs markedly less CPU per send (timers, task steps, socket
    callbacks) than asyncio's pure-Python one: at 1,000 sends a second that is the
    difference between keeping up and falling behind on a shared 2-core machine.

    It runs a worker process's whole life, so it first freezes the start-up heap
    (`core.heap`): full garbage collections then take milliseconds, not the
    50-160 ms pauses that bunched sends and drew 130429s at 1,000 sends a second.
    """
    heap.warm_imports()
    try:
        import uvloop
    except ImportError:  # Windows, or a minimal install
        heap.freeze_start_up_heap()
        return asyncio.run(main)
    heap.freeze_start_up_heap()
    return uvloop.run(main)


@dataclass(frozen=True)
class DrainReport:
    """What a drain did and what it left behind."""

    stats: DispatchStats
    queue: QueueDepth  # after the drain
    paused: bool  # stopped because sending is paused (see stats.paused_reason)
    timed_out: bool
    elapsed_seconds: float

    @property
    def accepted(self) -> int:
        """Messages Meta accepted during the drain."""
        return self.stats.accepted

    @property
    def failed(self) -> int:
        """Messages that failed for good during the drain."""
        return self.stats.failed


async def run_worker(
    settings: Settings,
    engine: Engine,
    *,
    stop: asyncio.Event | None = None,
    worker_id: str | None = None,
    client_factory: ClientFactory | None = None,
    limiter: RateLimiter | None = None,
    options: DispatcherOptions | None = None,
    on_dispatcher: Callable[[Dispatcher], None] | None = None,
) -> DispatchStats:
    """Send until `stop` is set (forever without one); installs no signal handlers.
    One dispatcher per sending number (`core.sender.fleet`); `on_dispatcher` is given
    each dispatcher before it starts (metrics watch their stats).

    Cancelling the task also shuts down gracefully: in-flight sends finish (bounded),
    unsent claimed rows return to pending and outcomes are written before it returns.
    """
    stop = stop or asyncio.Event()
    # Alert mails and chat posts (core.alerts.delivery); a half-made setting stops here.
    alert_delivery.start(engine, stop)
    fleet = Fleet(  # a dispatcher per sending number (core.sender.fleet)
        settings,
        engine,
        client_factory=client_factory,
        limiter=limiter,
        options=options,
        worker_id=worker_id,
        on_dispatcher=on_dispatcher,
    )
    # Imported here: core.followup sends through core.notify, which imports core.sender.
    from core.followup.scheduler import run_scheduler

    task = asyncio.create_task(fleet.run(stop))
    reminders = asyncio.create_task(run_scheduler(engine, stop))  # automatic follow-ups
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        stop.set()
        await task
        raise
    finally:
        reminders.cancel()  # a run in flight is cut; its reminders are idempotent
        await asyncio.gather(reminders, return_exceptions=True)


async def drain(
    settings: Settings,
    engine: Engine,
    *,
    timeout: float,  # noqa: ASYNC109 - the brief's interface; enforced inside
    worker_id: str | None = None,
    client_factory: ClientFactory | None = None,
    limiter: RateLimiter | None = None,
    options: DispatcherOptions | None = None,
) -> DrainReport:
    """Send until no pending work is left (retries included), sending is paused, or
    `timeout` seconds pass; for `send-csv`, scripts and tests. Every sending number is
    drained by its own dispatcher; `paused` is true if any number's sending is paused.
    """
    started = time.monotonic()
    stop = asyncio.Event()
    fleet = Fleet(
        settings,
        engine,
        client_factory=client_factory,
        limiter=limiter,
        options=options,
        worker_id=worker_id,
    )
    task = asyncio.create_task(fleet.run(stop, until_idle=True))
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout)
    except TimeoutError:
        timed_out = True
        stop.set()
        await task
    except asyncio.CancelledError:
        stop.set()
        await task
        raise
    depth = await asyncio.to_thread(queue_depth, engine)
    return DrainReport(
        stats=fleet.stats,
        queue=depth,
        paused=fleet.paused,
        timed_out=timed_out,
        elapsed_seconds=time.monotonic() - started,
    )
