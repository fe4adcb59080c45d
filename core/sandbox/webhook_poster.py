"""Posts the sandbox's signed webhooks: statuses, supplier replies, template updates.

Planned events wait in one heap ordered by due time; a single scheduler task pops what
is due, batches some statuses into one POST (as Meta does), and hands each POST to a
bounded pool of delivery tasks sharing one aiohttp session. A POST that is not answered
200 is retried with backoff (2, 4, 8, 16, 30 s, times time_scale) up to
`webhook_max_attempts` tries, with the same bytes. Receiver failures never propagate:
the sandbox keeps serving whatever the receiver does.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from core.sandbox.planner import PlannedEvent
from core.sandbox.state import SandboxState
from core.sandbox.wire import messages_envelope, sign

log = logging.getLogger(__name__)

BACKOFF_SECONDS = (2.0, 4.0, 8.0, 16.0, 30.0, 60.0)
MAX_STATUSES_PER_POST = 10
#: Events due within this many seconds (times time_scale) are posted together.
BATCH_HORIZON_S = 0.2
_MAX_POP = 2000


@dataclass(slots=True)
class _Due:
    event: PlannedEvent
    generation: int


@dataclass(slots=True)
class _Delivery:
    body: bytes
    statuses: int
    messages: int
    template_updates: int
    generation: int
    attempt: int = 0


class WebhookPoster:
    """Carries out webhook plans against the configured URL, in the server's event loop."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self._heap: list[tuple[float, int, _Due | _Delivery]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._runner: asyncio.Task[None] | None = None
        self._semaphore = asyncio.Semaphore(state.config.webhook_concurrency)
        self._batch_rng = random.Random(f"batch:{state.config.seed}")

    @property
    def pending(self) -> int:
        """Events and deliveries not finished yet (waiting, retrying or in flight)."""
        return len(self._heap) + self._inflight

    async def start(self) -> None:
        """Open the shared HTTP session and start the scheduler (call inside the loop)."""
        connector = aiohttp.TCPConnector(limit=self._state.config.webhook_concurrency * 2)
        self._session = aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": "facebookexternalua"}
        )
        self._runner = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop scheduling, cancel deliveries in flight, close the session."""
        tasks = [t for t in (self._runner, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    def clear(self) -> None:
        """Drop everything waiting (after a reset); deliveries in flight are not counted."""
        self._heap.clear()
        self._batch_rng = random.Random(f"batch:{self._state.config.seed}")

    def schedule(self, events: list[PlannedEvent], now: float | None = None) -> None:
        """Queue planned events; each fires `event.delay` seconds after `now` (monotonic)."""
        if not events:
            return
        base = time.monotonic() if now is None else now
        generation = self._state.generation
        counters = self._state.webhooks
        for event in events:
            counters.duplicates_planned += event.duplicate
            counters.reordered_planned += event.reordered
            heapq.heappush(
                self._heap, (base + event.delay, next(self._seq), _Due(event, generation))
            )
        self._wake.set()

    async def _run(self) -> None:
        while True:
            if not self._heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._heap[0][0] - time.monotonic()
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                continue
            for delivery in self._take_due():
                await self._semaphore.acquire()
                self._inflight += 1
                task = asyncio.create_task(self._deliver(delivery))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _take_due(self) -> list[_Delivery]:
        now = time.monotonic()
        state = self._state
        config = state.config
        enabled = config.webhooks_enabled and bool(config.webhook_url)
        # Meta aggregates: events due within a short horizon may share one POST.
        horizon = now + (BATCH_HORIZON_S * config.time_scale if config.batch_rate > 0 else 0.0)
        deliveries: list[_Delivery] = []
        statuses: list[dict[str, Any]] = []
        statuses_number: str | None = None  # statuses share a POST only within a number
        while self._heap and self._heap[0][0] <= horizon and len(deliveries) < _MAX_POP:
            _, _, item = heapq.heappop(self._heap)
            if item.generation != state.generation:
                continue
            if isinstance(item, _Delivery):
                deliveries.append(item)
                continue
            event = item.event
            if event.opens_window is not None:
                state.open_window(event.opens_window, now, event.phone_number_id)
                state.inbound_count += 1
            if not enabled:
                state.webhooks.dropped += 1
            elif event.kind == "status":
                if statuses and (
                    len(statuses) >= MAX_STATUSES_PER_POST
                    or statuses_number != event.phone_number_id
                    or self._batch_rng.random() >= config.batch_rate
                ):
                    deliveries.append(self._statuses_delivery(statuses, statuses_number))
                    statuses = []
                statuses.append(event.payload)
                statuses_number = event.phone_number_id
            elif event.kind == "message":
                deliveries.append(
                    self._delivery(event.payload, messages=1, number=event.phone_number_id)
                )
            else:
                body = orjson.dumps(event.payload)
                deliveries.append(_Delivery(body, 0, 0, 1, state.generation))
        if statuses:
            deliveries.append(self._statuses_delivery(statuses, statuses_number))
        return deliveries

    def _statuses_delivery(self, statuses: list[dict[str, Any]], number: str | None) -> _Delivery:
        return self._delivery({"statuses": statuses}, statuses=len(statuses), number=number)

    def _delivery(
        self,
        value: dict[str, Any],
        statuses: int = 0,
        messages: int = 0,
        number: str | None = None,
    ) -> _Delivery:
        """One POST's body: `value` under the metadata of `number` (default: the first),
        in the envelope of its WABA."""
        config = self._state.config
        known = self._state.numbers.get(number or config.phone_number_id)
        profile = known.profile if known is not None else config.primary_number()
        envelope = messages_envelope(
            profile.waba_id or config.waba_id,
            profile.display_phone_number,
            profile.phone_number_id,
            value,
        )
        return _Delivery(orjson.dumps(envelope), statuses, messages, 0, self._state.generation)

    async def _deliver(self, delivery: _Delivery) -> None:
        try:
            await self._attempt(delivery)
        except Exception:  # never let a receiver problem reach the server loop
            log.exception("sandbox webhook delivery crashed")
        finally:
            self._inflight -= 1
            self._semaphore.release()

    async def _attempt(self, delivery: _Delivery) -> None:
        state = self._state
        config = state.config
        url = config.webhook_url
        if not config.webhooks_enabled or not url or self._session is None:
            state.webhooks.dropped += 1
            return
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(config.app_secret, delivery.body),
        }
        state.webhooks.attempts += 1
        error: str | None = None
        try:
            timeout = aiohttp.ClientTimeout(total=config.webhook_timeout_s)
            async with self._session.post(
                url, data=delivery.body, headers=headers, timeout=timeout
            ) as response:
                await response.read()
                if response.status != 200:
                    error = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            error = type(exc).__name__
        if delivery.generation != state.generation:
            return
        counters = state.webhooks
        if error is None:
            counters.posted += 1
            counters.statuses += delivery.statuses
            counters.messages += delivery.messages
            counters.template_updates += delivery.template_updates
            counters.batched += delivery.statuses > 1
            return
        counters.last_error = error
        delivery.attempt += 1
        if delivery.attempt >= config.webhook_max_attempts:
            counters.failed += 1
            return
        counters.retries += 1
        backoff = BACKOFF_SECONDS[min(delivery.attempt - 1, len(BACKOFF_SECONDS) - 1)]
        due = time.monotonic() + backoff * config.time_scale
        heapq.heappush(self._heap, (due, next(self._seq), delivery))
        self._wake.set()
