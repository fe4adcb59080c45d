"""One dispatcher per sending number, all in one process and one event loop.

Meta sets throughput, pair limits and pauses per phone number, so each sending number
(`core.numbers.registry.sending_numbers`) gets a `Dispatcher` of its own: its own client
(its access token), rate limiter (its cap, shared with the number's other workers
through the database: `core.sender.budget` is keyed by phone number id), pair gate and
pause state. It claims only its number's messages (`core.routing` names the number of
each message when it is queued), so one tenant's 100,000-row batch waits behind its
own cap, and a 190 on one tenant's token pauses that number alone.

While a worker runs, the list of numbers is read again every `refresh_seconds`: a new
number gets a dispatcher, a removed one's dispatcher stops gracefully, and a changed
number (a rotated token, a new cap) has its dispatcher replaced by one with the new
values.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy import Engine

from core.numbers.registry import SenderNumber, sending_numbers
from core.sender.dispatcher import (
    ClientFactory,
    Dispatcher,
    DispatcherOptions,
    DispatchStats,
    MessageClient,
    new_worker_id,
)
from core.sender.ratelimit import RateLimiter
from core.settings import Settings

log = logging.getLogger(__name__)

#: How often a running worker reads the list of sending numbers again.
REFRESH_SECONDS = 15.0


def usable_numbers(engine: Engine, settings: Settings) -> list[SenderNumber]:
    """The numbers that can send now (a number stored without a token is left out,
    with a warning: it cannot send until a token is set)."""
    numbers = []
    for number in sending_numbers(engine, settings):
        if number.access_token is None:
            log.warning(
                "number %s of tenant %s has no access token: not sending from it",
                number.phone_number_id,
                number.tenant_id,
            )
            continue
        numbers.append(number)
    return numbers


def number_client_factory(
    settings: Settings, number: SenderNumber, max_connections: int
) -> ClientFactory:
    """The real Cloud API client for `number`: its phone number id and its token."""

    def factory() -> AbstractAsyncContextManager[MessageClient]:
        from core.cloud_api import CloudApiClient

        token = number.access_token.get_secret_value() if number.access_token else None
        client: AbstractAsyncContextManager[MessageClient] = CloudApiClient(
            settings,
            max_connections=max_connections,
            timeout=settings.whatsapp_request_timeout,
            phone_number_id=number.phone_number_id,
            access_token=token,
        )
        return client

    return factory


def merged_stats(stats: list[DispatchStats]) -> DispatchStats:
    """Several dispatchers' counters as one (the first pause's reason and code)."""
    total = DispatchStats()
    for one in stats:
        for field in dataclasses.fields(DispatchStats):
            value = getattr(one, field.name)
            if field.name not in ("paused_code", "paused_reason") and isinstance(value, int):
                setattr(total, field.name, getattr(total, field.name) + value)
        for code, count in one.by_code.items():
            total.by_code[code] = total.by_code.get(code, 0) + count
        if total.paused_reason is None and one.paused_reason is not None:
            total.paused_reason, total.paused_code = one.paused_reason, one.paused_code
    return total


@dataclasses.dataclass
class _Lane:
    number: SenderNumber | None  # None: the options named the number (one dispatcher)
    dispatcher: Dispatcher
    stop: asyncio.Event
    task: asyncio.Task[DispatchStats]


class Fleet:
    """The dispatchers of one worker process, one per sending number (see module doc).

    With `options.phone_number_id` set, only that number is served (as one dispatcher
    always did). A given `limiter` or `client_factory` serves every dispatcher alike:
    tests inject them; a limiter is refused with several numbers (caps are per number).
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        client_factory: ClientFactory | None = None,
        limiter: RateLimiter | None = None,
        options: DispatcherOptions | None = None,
        worker_id: str | None = None,
        on_dispatcher: Callable[[Dispatcher], None] | None = None,
        refresh_seconds: float | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.client_factory = client_factory
        self.limiter = limiter
        self.options = options or DispatcherOptions()
        self.worker_id = worker_id or new_worker_id()
        self.on_dispatcher = on_dispatcher
        self.refresh_seconds = REFRESH_SECONDS if refresh_seconds is None else refresh_seconds
        self._lanes: dict[str, _Lane] = {}
        self._finished: list[Dispatcher] = []
        self._serial = itertools.count(1)

    @property
    def dispatchers(self) -> list[Dispatcher]:
        """The running dispatchers (one per sending number)."""
        return [lane.dispatcher for lane in self._lanes.values()]

    @property
    def stats(self) -> DispatchStats:
        """Every dispatcher's counters so far, finished ones included."""
        return merged_stats([d.stats for d in (*self._finished, *self.dispatchers)])

    @property
    def paused(self) -> bool:
        """Whether any number's sending is paused (as its dispatcher last saw it)."""
        return any(d.paused is not None for d in (*self._finished, *self.dispatchers))

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False) -> DispatchStats:
        """Run a dispatcher per number until `stop` (or, with `until_idle`, until each
        has no work left); numbers are read again every `refresh_seconds` meanwhile."""
        try:
            await self._start(await self._numbers(), until_idle)
            while self._lanes or not until_idle:  # no usable number yet: keep looking
                tasks = {lane.task for lane in self._lanes.values()}
                waiter = asyncio.ensure_future(stop.wait())
                try:
                    done, _ = await asyncio.wait(
                        {*tasks, waiter},
                        timeout=None if until_idle else self.refresh_seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    waiter.cancel()
                for lane in [lane for lane in self._lanes.values() if lane.task in done]:
                    self._retire(lane)  # re-raises a dispatcher's crash
                if stop.is_set():
                    break
                if not until_idle and not done:
                    await self._refresh()
        finally:
            await self._stop_all()
        return self.stats

    async def _numbers(self) -> list[SenderNumber | None]:
        if self.options.phone_number_id is not None:
            return [None]
        numbers = await asyncio.to_thread(usable_numbers, self.engine, self.settings)
        if not numbers:
            log.error("no number can send: nothing will be sent until one is usable")
        if self.limiter is not None and len(numbers) > 1:
            raise ValueError("a given rate limiter serves one number; caps are per number")
        return list(numbers)

    async def _start(self, numbers: list[SenderNumber | None], until_idle: bool) -> None:
        single = len(numbers) == 1 and (numbers[0] is None or numbers[0].from_environment)
        for number in numbers:
            self._launch(number, until_idle, single)

    def _launch(self, number: SenderNumber | None, until_idle: bool, single: bool) -> None:
        options = self.options
        factory = self.client_factory
        if number is not None:
            options = dataclasses.replace(
                options,
                phone_number_id=number.phone_number_id,
                mps=options.mps or number.max_mps,
            )
            if factory is None and not single:
                factory = number_client_factory(self.settings, number, self.options.max_in_flight)
        worker_id = self.worker_id if single else f"{self.worker_id}#{next(self._serial)}"
        dispatcher = Dispatcher(
            self.settings,
            self.engine,
            client_factory=factory,
            limiter=self.limiter,
            options=options,
            worker_id=worker_id,
        )
        if self.on_dispatcher is not None:
            self.on_dispatcher(dispatcher)
        stop = asyncio.Event()
        task = asyncio.create_task(
            dispatcher.run(stop, until_idle=until_idle), name=f"dispatcher-{worker_id}"
        )
        self._lanes[dispatcher.phone_number_id] = _Lane(number, dispatcher, stop, task)

    def _retire(self, lane: _Lane) -> None:
        del self._lanes[lane.dispatcher.phone_number_id]
        lane.task.result()  # re-raises a crash
        self._finished.append(lane.dispatcher)

    async def _refresh(self) -> None:
        try:
            numbers = {n.phone_number_id: n for n in await self._numbers() if n is not None}
        except Exception:  # keep sending with what runs; the next refresh tries again
            log.warning("could not read the sending numbers again", exc_info=True)
            return
        if not numbers:
            return  # options named one number, or none is usable: keep what runs
        for ident, lane in list(self._lanes.items()):
            if lane.number is not None and numbers.get(ident) != lane.number:
                log.warning("number %s removed or changed: its dispatcher stops", ident)
                await self._stop_lane(lane)
        for ident, number in numbers.items():
            if ident not in self._lanes:
                log.warning("sending from number %s of tenant %s", ident, number.tenant_id)
                self._launch(number, False, False)

    async def _stop_lane(self, lane: _Lane) -> None:
        lane.stop.set()
        with contextlib.suppress(Exception):
            await lane.task
        self._finished.append(lane.dispatcher)
        self._lanes.pop(lane.dispatcher.phone_number_id, None)

    async def _stop_all(self) -> None:
        lanes = list(self._lanes.values())
        for lane in lanes:
            lane.stop.set()
        await asyncio.gather(*(lane.task for lane in lanes), return_exceptions=True)
        for lane in lanes:
            self._lanes.pop(lane.dispatcher.phone_number_id, None)
            self._finished.append(lane.dispatcher)
