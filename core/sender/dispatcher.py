"""The dispatcher: claims pending messages and sends them under Meta's limits.

Three cooperating tasks on one event loop, plus one database thread:

- the *claimer* reads the sender control (pause), held templates and stopped batches,
  and claims due pending rows in chunks (pending → sending) into a small local queue,
  about `buffer_seconds` of work at the current rate so a crash strands little;
- the *sender* takes rows from that queue in order and postpones a row whose
  recipient got a message less than 6 s ago (others go ahead). The rows it admits are
  marked `request_started_at` a pacing slice at a time (about `slice_seconds` of
  sends at the current rate, one UPDATE each: store.mark_started, on a thread of its
  own), one slice ahead of the requests: while one marked slice goes out, the next is
  marked, so the mark never makes a request late. Each marked row then waits on the
  rate limiter and its API call starts as its own task the moment the limiter lets it
  through (hundreds in flight at 1000/s). The next slice is marked only once fewer
  than a slice's rows are marked and unsent, so a crash leaves at most two slices
  marked but never requested. After a crash, recovery sends a claimed row without the
  mark again (its request never started) and asks a person about the others only: the
  requests that had started (about cap x latency) and those two slices at most;
- the *writer* collects outcomes and records them every `flush_interval` in one
  transaction, with conditional updates that never move a row backwards.

All database work runs on a single dedicated thread (`asyncio` never blocks on it, and
SQLite sees one writer). Our message id always goes out in `biz_opaque_callback_data`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from sqlalchemy import Engine

from core.db import is_transient
from core.errors import GraphError
from core.models.types import utcnow
from core.sender import budget, faults, store
from core.sender.ratelimit import PAIR_INTERVAL_SECONDS, PairGate, RateLimiter, SlidingWindowLimiter
from core.sender.recovery import INFLIGHT_LOST_CLASS, NO_ANSWER_MESSAGE, recover_stale
from core.sender.retry import Action, RetryPolicy, decide
from core.sender.store import ClaimedMessage, ErrorFields, TemplateKey
from core.settings import Settings

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: A pacing slice: the rows one mark covers, this many seconds of sends at the current
#: rate (at least one row). Two slices at most are marked and unsent at any moment.
SLICE_SECONDS = 0.05


def slice_rows(rate: float, seconds: float = SLICE_SECONDS) -> int:
    """How many rows one mark covers at `rate` sends per second: a crash leaves at most
    twice this many rows marked but never requested (issue 16)."""
    return max(1, math.ceil(rate * seconds))


class SendResultLike(Protocol):
    """What a successful send returns (core.cloud_api.SendResult has these)."""

    wamid: str
    wa_id: str | None
    message_status: str | None
    raw: dict[str, Any]


class MessageClient(Protocol):
    """Anything that can send one Cloud API message body; raises GraphError on failure."""

    async def send_message(self, payload: dict[str, Any]) -> Any:
        """Send `payload`; return a SendResult-like object or raise GraphError."""
        ...


class WriteReportingClient(Protocol):
    """A client that says when a request's bytes go out (core.cloud_api.CloudApiClient):
    the limiter dates the send then, not when it let the send through."""

    async def send_message(
        self, payload: dict[str, Any], *, on_written: Callable[[], None] | None = None
    ) -> Any:
        """Send `payload`, calling `on_written` just before its bytes are written."""
        ...


def reports_writes(client: object) -> bool:
    """Whether `client.send_message` takes `on_written` (else a send is dated at once)."""
    from core.cloud_api import CloudApiClient

    return isinstance(client, CloudApiClient)


ClientFactory = Callable[[], AbstractAsyncContextManager[MessageClient]]


def default_client_factory(settings: Settings, max_connections: int) -> ClientFactory:
    """The real Cloud API client (Meta's, or the sandbox's URL from settings)."""

    def factory() -> AbstractAsyncContextManager[MessageClient]:
        from core.cloud_api import CloudApiClient

        client: AbstractAsyncContextManager[MessageClient] = CloudApiClient(
            settings,
            max_connections=max_connections,
            timeout=settings.whatsapp_request_timeout,
        )
        return client

    return factory


def new_worker_id() -> str:
    """A name for this worker that no other worker, past or present, shares."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class DispatcherOptions:
    """Tuning knobs; `None` means "from settings". Tests shorten the durations."""

    mps: float | None = None  # WHATSAPP_MAX_MPS
    retry: RetryPolicy | None = None  # max_attempts from WHATSAPP_MAX_ATTEMPTS
    lease_seconds: float | None = None  # WHATSAPP_CLAIM_LEASE_SECONDS (3 × timeout, ≥ 60 s)
    grace_seconds: float | None = None  # WHATSAPP_INFLIGHT_GRACE_SECONDS
    recovery_interval: float | None = None  # default: a quarter of min(lease, grace)
    max_in_flight: int = 1000
    claim_chunk: int = 500
    buffer_seconds: float = 0.5
    idle_poll_seconds: float = 0.25
    flush_interval: float = 0.05
    flush_rows: int = 1000
    pair_interval: float = PAIR_INTERVAL_SECONDS
    pair_margin: float = 0.1
    window_margin: float | None = None  # WHATSAPP_RATE_MARGIN_SECONDS
    shutdown_timeout: float | None = None  # default: request timeout + 2 s
    phone_number_id: str | None = None
    seed: int | None = None  # jitter seed, for reproducible tests
    #: how long a claimed row may wait unrequested before recovery returns it to
    #: pending (default: the lease, at most 10 s); its worker then cannot send it
    unstarted_seconds: float | None = None
    #: seconds of sends one mark covers (see `slice_rows`)
    slice_seconds: float = SLICE_SECONDS
    #: share WHATSAPP_MAX_MPS with every other worker of the phone number (database)
    shared_budget: bool = True
    budget_refresh_seconds: float = budget.REFRESH_SECONDS


@dataclass
class DispatchStats:
    """Counters of one dispatcher run."""

    claimed: int = 0
    started: int = 0
    slices: int = 0  # request_started_at UPDATEs written (one per pacing slice)
    accepted: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    postponed: int = 0
    released: int = 0
    throttled: int = 0
    needs_attention: int = 0
    paused_reason: str | None = None
    paused_code: int | None = None
    by_code: dict[str, int] = field(default_factory=dict)


class _Stop:
    pass


_STOP = _Stop()


class Dispatcher:
    """Claims, rate-limits, sends and records; one per worker process."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        client_factory: ClientFactory | None = None,
        limiter: RateLimiter | None = None,
        options: DispatcherOptions | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.options = opts = options or DispatcherOptions()
        self.worker_id = worker_id or new_worker_id()
        self.phone_number_id = opts.phone_number_id or settings.phone_number_id
        mps = opts.mps or settings.whatsapp_max_mps
        self.cap = int(mps)
        self.window_margin = (
            opts.window_margin
            if opts.window_margin is not None
            else settings.whatsapp_rate_margin_seconds
        )
        #: the limiter whose cap is this worker's share of the budget (None: not shared)
        self._shared: SlidingWindowLimiter | None = None
        if limiter is None:
            window = SlidingWindowLimiter(mps, margin=self.window_margin)
            if opts.shared_budget:
                window.set_cap(0)  # nothing until the first refresh grants a share
                self._shared = window
            limiter = window
        self.limiter: RateLimiter = limiter
        self._budget_executor: ThreadPoolExecutor | None = None
        self.budget_share: budget.BudgetShare | None = None
        self.retry = opts.retry or RetryPolicy(max_attempts=settings.whatsapp_max_attempts)
        timeout = settings.whatsapp_request_timeout
        self.lease = (
            opts.lease_seconds
            or settings.whatsapp_claim_lease_seconds
            or max(60.0, 3 * timeout)
        )
        self.grace = opts.grace_seconds or settings.whatsapp_inflight_grace_seconds
        self.unstarted = opts.unstarted_seconds or min(self.lease, 10.0)
        self.recovery_interval = opts.recovery_interval or max(
            0.2, min(30.0, min(self.lease, self.grace, self.unstarted) / 4)
        )
        self.shutdown_timeout = opts.shutdown_timeout or timeout + 2.0
        self.client_factory = client_factory or default_client_factory(settings, opts.max_in_flight)
        self.pairs = PairGate(opts.pair_interval, margin=opts.pair_margin)
        self.stats = DispatchStats()
        self._rng = random.Random(opts.seed)
        self._ready: deque[ClaimedMessage] = deque()
        self._ready_event = asyncio.Event()
        self._want_more = asyncio.Event()
        self._outcomes: asyncio.Queue[store.Outcome | _Stop] = asyncio.Queue()
        self._unwritten = 0
        self._holding = 0  # rows taken off the queue, not yet sent nor released
        self._pause_written_at = -1.0  # monotonic time our pause reached the database
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(opts.max_in_flight)
        self._stopping = False
        self._paused: store.PauseInfo | None = None
        self._local_pause_at = -1.0  # monotonic time of a pause we caused
        self._held: dict[TemplateKey, str] = {}
        self._local_holds: dict[TemplateKey, tuple[str, float]] = {}
        self._stopped_batches: frozenset[str] = frozenset()
        self._executor: ThreadPoolExecutor | None = None
        #: rows whose mark committed, in order, waiting for the limiter
        self._marked: deque[ClaimedMessage] = deque()
        self._marking = 0  # rows of the slice whose mark is being written
        self._mark_task: asyncio.Task[None] | None = None
        #: rows marked started whose request is not written (nor given up) yet: the next
        #: slice is marked only while this is at most one slice, so a crash never leaves
        #: more than two marked slices unrequested
        self._marked_unsent = 0
        #: marks run on a thread of their own: never queued behind a claim or a flush
        self._mark_executor: ThreadPoolExecutor | None = None
        self._crash = faults.from_env(sandbox_mode=settings.sandbox_mode)
        self._idle = asyncio.Event()

    # --- plumbing -------------------------------------------------------------------

    async def _db(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def _emit(self, outcome: store.Outcome) -> None:
        self._unwritten += 1
        self._outcomes.put_nowait(outcome)

    @property
    def paused(self) -> store.PauseInfo | None:
        """Why sending is paused, or None while it runs."""
        return self._paused

    # --- lifecycle ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False) -> DispatchStats:
        """Send until `stop` is set (or, with `until_idle`, until no work is left).

        On the way out: stop claiming, let in-flight sends finish (bounded by
        `shutdown_timeout`), return claimed-but-unsent rows to pending, flush writes.
        """
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"db-{self.worker_id}")
        self._mark_executor = ThreadPoolExecutor(1, thread_name_prefix="mark")
        if self._shared is not None:
            self._budget_executor = ThreadPoolExecutor(1, thread_name_prefix="budget")
        try:
            await self._start_up()
            async with self.client_factory() as client:
                await self._run_tasks(client, stop, until_idle)
        finally:
            await self._leave_budget()
            self._executor.shutdown(wait=True)
            self._executor = None
            self._mark_executor.shutdown(wait=True)
            self._mark_executor = None
        return self.stats

    # --- shared budget --------------------------------------------------------------

    async def _refresh_budget(self) -> None:
        """Renew this worker's share of the phone number's budget (own thread)."""
        if self._shared is None or self._budget_executor is None:
            return
        asked_at = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            share = await loop.run_in_executor(
                self._budget_executor,
                lambda: budget.refresh(
                    self.engine,
                    worker_id=self.worker_id,
                    phone_number_id=self.phone_number_id,
                    cap=self.cap,
                    window_seconds=1.0 + self.window_margin,
                ),
            )
        except Exception:  # the share simply expires; sending stops until a refresh works
            log.warning("could not renew the throughput share", exc_info=True)
            return
        if share != self.budget_share:
            log.info(
                "throughput share: %d of %d msg/s (%d worker(s))",
                share.share,
                self.cap,
                share.members,
            )
        self.budget_share = share
        spent = time.monotonic() - asked_at
        self._shared.set_cap(share.share, expires_in=budget.STOP_AFTER_SECONDS - spent)

    async def _budget_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.options.budget_refresh_seconds)
            await self._refresh_budget()

    async def _leave_budget(self) -> None:
        if self._shared is None or self._budget_executor is None:
            return
        self._shared.set_cap(0)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                self._budget_executor,
                lambda: budget.leave(
                    self.engine,
                    worker_id=self.worker_id,
                    window_seconds=1.0 + self.window_margin,
                ),
            )
        except Exception:  # the row expires with its heartbeat anyway
            log.warning("could not leave the throughput budget", exc_info=True)
        finally:
            self._budget_executor.shutdown(wait=True)
            self._budget_executor = None

    async def _start_up(self) -> None:
        await self._refresh_budget()
        report = await self._db(
            recover_stale,
            self.engine,
            lease_seconds=self.lease,
            grace_seconds=self.grace,
            unstarted_seconds=self.unstarted,
        )
        self.stats.needs_attention += report.needs_attention
        if report.needs_attention or report.waiting or report.returned:
            log.warning(
                "recovery: %d in-flight message(s) need attention, %d still wait for a "
                "webhook, %d never requested went back to pending",
                report.needs_attention,
                report.waiting,
                report.returned,
            )
        since = utcnow() - timedelta(seconds=self.options.pair_interval + 1)
        recent = await self._db(
            store.recent_recipients, self.engine, since, self.phone_number_id
        )
        mono, wall = time.monotonic(), utcnow()
        for recipient, at in recent:
            self.pairs.mark_sent(recipient, mono - (wall - at).total_seconds())
        log.info(
            "dispatcher %s: %.0f msg/s cap, lease %.0fs, grace %.0fs",
            self.worker_id,
            self.limiter.rate,
            self.lease,
            self.grace,
        )

    async def _run_tasks(
        self, client: MessageClient, stop: asyncio.Event, until_idle: bool
    ) -> None:
        writer = asyncio.create_task(self._writer(), name="dispatcher-writer")
        sender = asyncio.create_task(self._sender(client), name="dispatcher-sender")
        claimer = asyncio.create_task(self._claimer(until_idle), name="dispatcher-claimer")
        stopper = asyncio.create_task(stop.wait(), name="dispatcher-stop")
        budgeter = asyncio.create_task(self._budget_loop(), name="dispatcher-budget")
        try:
            done, _ = await asyncio.wait(
                {claimer, sender, writer, stopper}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is not stopper and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            stopper.cancel()
            await self._shut_down(claimer, sender, writer)
            budgeter.cancel()
            await asyncio.gather(budgeter, return_exceptions=True)

    async def _shut_down(
        self, claimer: asyncio.Task[None], sender: asyncio.Task[None], writer: asyncio.Task[None]
    ) -> None:
        self._stopping = True
        self._ready_event.set()
        self._want_more.set()
        for task in (claimer, sender):
            if not task.done():
                task.cancel()
        await asyncio.gather(claimer, sender, return_exceptions=True)
        if self._mark_task is not None:  # its rows are released below, marks cleared
            await asyncio.gather(self._mark_task, return_exceptions=True)
        self._unmark_all()
        if self._in_flight:
            _, pending = await asyncio.wait(set(self._in_flight), timeout=self.shutdown_timeout)
            for task in pending:  # still unanswered: recovery will handle these rows
                task.cancel()
            if pending:
                log.warning("%d send(s) unanswered at shutdown; left for recovery", len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        self._release_all(due=None)
        self._outcomes.put_nowait(_STOP)
        if not writer.done():
            await writer

    # --- claimer --------------------------------------------------------------------

    def _buffer_target(self) -> int:
        rate = max(1.0, self.limiter.rate)
        return max(1, min(self.options.claim_chunk, int(rate * self.options.buffer_seconds) + 1))

    async def _claimer(self, until_idle: bool) -> None:
        next_recovery = time.monotonic() + self.recovery_interval
        while not self._stopping:
            if time.monotonic() >= next_recovery:
                await self._recover()
                next_recovery = time.monotonic() + self.recovery_interval
            target = self._buffer_target()
            room = target - len(self._ready)
            want = room if (room >= max(1, target // 2) or not self._ready) else 0
            if self._paused is not None and self._local_pause_at > 0:
                want = 0
            quiet_before = self._activity() == 0
            cycle = await self._db(
                store.claim_cycle,
                self.engine,
                worker_id=self.worker_id,
                phone_number_id=self.phone_number_id,
                limit=want,
                count_waiting=until_idle,
            )
            self._observe(cycle)
            if cycle.claimed:
                if self._crash is not None:
                    self._crash.reached("claimed")
                self.stats.claimed += len(cycle.claimed)
                self._ready.extend(cycle.claimed)
                self._ready_event.set()
            if until_idle and quiet_before and self._is_idle(cycle):
                return
            got_full = want > 0 and len(cycle.claimed) >= want
            self._want_more.clear()
            if got_full and len(self._ready) < max(1, target // 2):
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(self._want_more.wait(), self.options.idle_poll_seconds)

    def _activity(self) -> int:
        return (
            len(self._ready)
            + self._holding
            + len(self._marked)
            + self._marking
            + len(self._in_flight)
            + self._unwritten
        )

    def _is_idle(self, cycle: store.ClaimCycle) -> bool:
        if cycle.claimed or self._activity():
            return False
        if self._paused is not None:
            return True  # nothing will move until a person resumes
        return cycle.waiting == 0

    def _observe(self, cycle: store.ClaimCycle) -> None:
        """Adopt the database's view, unless a decision of ours is newer than the read."""
        ours_settled = self._local_pause_at < 0 or (
            self._pause_written_at >= self._local_pause_at
            and cycle.started >= self._pause_written_at
        )
        if ours_settled:
            if cycle.paused is None and self._paused is not None:
                log.warning("sending resumed for %s", self.phone_number_id)
            elif cycle.paused is not None and self._paused is None:
                log.warning("sending paused for %s: %s", self.phone_number_id, cycle.paused.reason)
                self.stats.paused_reason = cycle.paused.reason
                self.stats.paused_code = cycle.paused.code
            self._paused = cycle.paused
            self._local_pause_at = -1.0
        held = dict(cycle.held_templates)
        for key, (reason, at) in list(self._local_holds.items()):
            if key not in held and cycle.started < at + 60.0:
                held[key] = reason  # our hold may not be written (or synced) yet
            elif key in held:
                del self._local_holds[key]
        self._held = held
        self._stopped_batches = cycle.stopped_batches

    async def _recover(self) -> None:
        report = await self._db(
            recover_stale,
            self.engine,
            lease_seconds=self.lease,
            grace_seconds=self.grace,
            unstarted_seconds=self.unstarted,
        )
        self.stats.needs_attention += report.needs_attention
        if report.needs_attention:
            log.warning("%d in-flight message(s) now need attention", report.needs_attention)
        if report.returned:
            log.warning("%d claimed, never requested message(s) back to pending", report.returned)
        self.pairs.prune()
        from core.batches import complete_finished_batches

        await self._db(complete_finished_batches, self.engine)

    # --- sender ---------------------------------------------------------------------

    def _release(self, message: ClaimedMessage, due_in: float | None) -> None:
        due = None if due_in is None else utcnow() + timedelta(seconds=due_in)
        self._emit(store.Released(message, due))

    def _release_all(self, due: float | None) -> None:
        while self._ready:
            self._release(self._ready.popleft(), due)
            self.stats.released += 1

    async def _sender(self, client: MessageClient) -> None:
        writes = reports_writes(client)
        try:
            while not self._stopping:
                if self._paused is not None:
                    self._unmark_all()
                    self._release_all(due=None)
                    await self._wait_for_work()
                    continue
                self._mark_ahead()
                if not self._marked:
                    await self._wait_for_work()
                    continue
                await self._send_next(client, writes)
        finally:
            self._unmark_all()  # shutdown: marked, unsent rows go back with the queue

    async def _wait_for_work(self) -> None:
        """Sleep until rows are claimed, a slice's mark is written or a request goes
        out (each sets `_ready_event`)."""
        if len(self._ready) < self._buffer_target() // 2:
            self._want_more.set()
        self._ready_event.clear()
        await self._ready_event.wait()

    async def _send_next(self, client: MessageClient, writes: bool) -> None:
        """Wait for a connection slot and the limiter's permit, then start the next
        marked row's request as its own task (written at once)."""
        message = self._marked.popleft()
        self._holding += 1
        try:
            await self._slots.acquire()
            try:
                try_now = getattr(self.limiter, "try_acquire", None)
                if try_now is None or not try_now():  # free at once: no task, no timer
                    await self.limiter.acquire()
            except BaseException:
                self._slots.release()
                raise
        except BaseException:
            self._marked.appendleft(message)
            raise
        finally:
            self._holding -= 1
        if self._stopping or self._paused is not None:
            self.limiter.sent()  # not sent after all: dated now, the safe side
            self._slots.release()
            self._marked.appendleft(message)
            return
        self.stats.started += 1
        task = asyncio.create_task(self._send_one(client, message, writes, marked=True))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    def _mark_ahead(self) -> None:
        """Start marking the next slice of admitted rows unless one is being marked or
        more than one slice is already marked and unsent (the crash bound)."""
        if self._mark_task is not None or not self._ready:
            return
        size = slice_rows(self.limiter.rate, self.options.slice_seconds)
        if self._marked_unsent > size:
            return
        group: list[ClaimedMessage] = []
        while self._ready and len(group) < size:
            message = self._ready.popleft()
            if self._admit(message):
                self.pairs.mark_sent(message.recipient)  # held for it from now on
                group.append(message)
        if len(self._ready) < self._buffer_target() // 2:
            self._want_more.set()
        if group:
            self._marking += len(group)
            self._mark_task = asyncio.create_task(self._mark(group), name="dispatcher-mark")

    async def _mark(self, group: list[ClaimedMessage]) -> None:
        """Mark `group` as started (one UPDATE, committed before any of its requests),
        then queue the rows still ours for the limiter.

        A crash before the commit leaves these rows unmarked, so recovery sends them
        again; after it, they keep the never-resend rule (a person or a webhook). A row
        the mark no longer finds claimed by us (recovery took it back) is not sent. If
        the mark cannot be written, nothing is sent and the rows go back to pending.
        """
        assert self._mark_executor is not None
        loop = asyncio.get_running_loop()
        ids = [m.id for m in group]
        try:
            ours = await loop.run_in_executor(
                self._mark_executor,
                lambda: store.mark_started(self.engine, ids, self.worker_id),
            )
        except Exception:
            log.exception("could not mark %d send(s) as started; not sending them", len(group))
            ours = set()
            for message in group:
                self._release(message, None)  # clears a mark that did commit after all
                self.stats.released += 1
        else:
            self.stats.slices += 1
            if self._crash is not None:
                self._crash.reached("started")
            for message in group:
                if message.id in ours:
                    self._marked.append(message)
                    self._marked_unsent += 1
        finally:
            self._marking -= len(group)
            self._mark_task = None
            self._ready_event.set()

    def _request_out(self) -> None:
        """One marked row's request was written or given up."""
        self._marked_unsent = max(0, self._marked_unsent - 1)
        self._ready_event.set()  # the sender may mark the next slice

    def _unmark_all(self) -> None:
        """Give the marked, unsent rows back to the queue front: they were never
        requested, and releasing them clears their mark."""
        while self._marked:
            self._ready.appendleft(self._marked.pop())
            self._request_out()

    def _admit(self, message: ClaimedMessage) -> bool:
        """Whether to send `message` now; otherwise it is released, postponed or failed."""
        if message.batch_id is not None and message.batch_id in self._stopped_batches:
            self._release(message, None)
            self.stats.released += 1
            return False
        key = message.template_key
        if key is not None and key in self._held:
            reason = self._held[key]
            error = ErrorFields(None, "template", store.held_message(reason), None, {})
            self._emit(store.Failed(message, message.attempt_count, error, utcnow()))
            self.stats.failed += 1
            return False
        wait = self.pairs.ready_at(message.recipient) - time.monotonic()
        if wait > 0:
            self._release(message, wait)
            self.stats.postponed += 1
            return False
        return True

    async def _send_one(
        self,
        client: MessageClient,
        message: ClaimedMessage,
        reports: bool = False,
        marked: bool = False,
    ) -> None:
        """One API call, started as soon as the limiter let it through. The limiter
        dates the send when its bytes are written (a reporting client calls back), else
        at once; in any case exactly once. Once answered, the limiter re-dates it at its
        estimated arrival at Meta (the round trip tells); unanswered, it stays in the
        limiter's window. A `marked` row counts as marked and unsent until then."""
        payload = dict(message.payload)
        payload.setdefault("to", message.recipient)
        payload["biz_opaque_callback_data"] = message.id
        dated = False
        written_at: float | None = None
        arrived = False  # answered by Meta: the round trip dates its arrival

        def written() -> None:
            nonlocal dated, written_at
            if not dated:
                dated = True
                written_at = self.limiter.sent(awaits_answer=True)
                if marked:
                    self._request_out()
                # the pair gate, too, counts from when the request left (after its
                # slice's mark, a new connection...), not from when it was admitted
                self.pairs.mark_sent(message.recipient)

        try:
            if reports:
                reporting = cast(WriteReportingClient, client)
                result = await reporting.send_message(payload, on_written=written)
            else:
                written()
                result = await client.send_message(payload)
        except GraphError as error:
            self._on_error(message, error)
        except asyncio.CancelledError:
            raise  # shutdown gave up on it: the row stays `sending` for recovery
        except Exception as exc:  # a client bug: the request may or may not have left
            log.exception("unexpected error sending %s", message.id)
            self._on_error(message, GraphError.transport(f"unexpected {type(exc).__name__}"))
        else:
            arrived = True
            self._on_accepted(message, result)
        finally:
            written()  # never written (no connection, cancelled): dated now
            if written_at is not None:
                self.limiter.answered(written_at, arrived=arrived)
            self._slots.release()

    def _on_accepted(self, message: ClaimedMessage, result: Any) -> None:
        raw = getattr(result, "raw", None)
        response = raw if isinstance(raw, dict) else {"wamid": result.wamid}
        self._emit(
            store.Accepted(
                message, str(result.wamid), getattr(result, "wa_id", None), response, utcnow()
            )
        )
        self.stats.accepted += 1

    def _on_error(self, message: ClaimedMessage, error: GraphError) -> None:
        attempt = message.attempt_count + 1
        code = str(error.code if error.code is not None else f"http{error.http_status}")
        self.stats.by_code[code] = self.stats.by_code.get(code, 0) + 1
        decision = decide(error, attempt, self.retry, self._rng)
        fields = _error_fields(error)
        now = utcnow()
        if error.slows_dispatcher:
            self.limiter.throttled()
            self.stats.throttled += 1
        if decision.action is Action.PAUSE:
            self._pause(error, fields)
            self._release(message, None)
            self.stats.released += 1
        elif decision.action is Action.HOLD_TEMPLATE:
            key = message.template_key
            self._emit(store.Failed(message, attempt, fields, now))
            self.stats.failed += 1
            if key is not None:
                self._local_holds[key] = (fields.reason, time.monotonic())
                self._held[key] = fields.reason
                self._emit(store.HoldTemplate(key, fields, now))
        elif decision.action is Action.FAIL:
            self._emit(store.Failed(message, attempt, fields, now))
            self.stats.failed += 1
        elif decision.action is Action.UNKNOWN:
            unknown = ErrorFields(
                error.code,
                INFLIGHT_LOST_CLASS,
                NO_ANSWER_MESSAGE,
                error.message,
                fields.details,
            )
            self._emit(store.Unknown(message, attempt, unknown))
            self.stats.unknown += 1
        else:
            if error.is_pair_limit:
                self.pairs.hold(message.recipient, decision.delay)
            self._emit(
                store.Retry(message, attempt, now + timedelta(seconds=decision.delay), fields)
            )
            self.stats.retried += 1

    def _pause(self, error: GraphError, fields: ErrorFields) -> None:
        if self._paused is None:
            log.error("sending paused for %s: %s", self.phone_number_id, fields.reason)
            self._emit(store.PauseSending(self.phone_number_id, fields, utcnow()))
            self.stats.paused_reason = fields.reason
            self.stats.paused_code = error.code
        self._paused = store.PauseInfo(fields.reason, error.code)
        self._local_pause_at = time.monotonic()

    # --- writer ---------------------------------------------------------------------

    async def _writer(self) -> None:
        stopping = False
        while not stopping:
            first = await self._outcomes.get()
            batch: list[store.Outcome] = []
            if isinstance(first, _Stop):
                stopping = True
            else:
                batch.append(first)
                if self._outcomes.qsize() < self.options.flush_rows:
                    await asyncio.sleep(self.options.flush_interval)
            while len(batch) < self.options.flush_rows and not self._outcomes.empty():
                item = self._outcomes.get_nowait()
                if isinstance(item, _Stop):
                    stopping = True
                    continue
                batch.append(item)
            if batch:
                if self._crash is not None and any(isinstance(o, store.Accepted) for o in batch):
                    self._crash.reached("writing")
                await self._write(batch)

    async def _write(self, batch: list[store.Outcome]) -> None:
        delay = 0.1
        while True:
            try:
                await self._db(store.apply_outcomes, self.engine, batch, self.worker_id)
            except Exception as exc:
                if is_transient(exc):  # e.g. a deadlock PostgreSQL broke: one line
                    said = str(getattr(exc, "orig", exc)).strip().splitlines()
                    log.warning(
                        "recording %d outcome(s): the database was busy (%s); retrying",
                        len(batch), said[0] if said else type(exc).__name__,
                    )  # fmt: skip
                    log.debug("recording outcomes", exc_info=True)
                else:
                    log.exception("recording %d outcome(s) failed; retrying", len(batch))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._unwritten -= len(batch)
            if any(isinstance(item, store.PauseSending) for item in batch):
                self._pause_written_at = time.monotonic()
            return


def _error_fields(error: GraphError) -> ErrorFields:
    details: dict[str, Any] = {
        "code": error.code,
        "message": error.message,
        "http_status": error.http_status,
    }
    if error.details:
        details["details"] = error.details
    if error.fbtrace_id:
        details["fbtrace_id"] = error.fbtrace_id
    return ErrorFields(
        code=error.code,
        error_class=str(error.error_class),
        reason=error.reason,
        title=error.message,
        details=details,
    )
