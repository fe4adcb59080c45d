"""Pacing replayed on a fake clock: a sender against the sandbox's latency and cap model.

A saturated queue is sent for `seconds` by either the dispatcher's real
`SlidingWindowLimiter` (fed the answers as the dispatcher feeds it: `sent`, `answered`,
`throttled` on 130429) or a fixed schedule at a given rate (no feedback at all). Each
send takes a delay from the sandbox's own model (`core.sandbox.latency`) and is counted
against the cap on arrival by the sandbox's own sliding window (`core.sandbox.limits`),
as Meta counts it; a refused send is not retried. No wall clock is involved: the
figures are a function of the seed, so tests can check behaviour (refusals avoided,
rate kept) and `benchmarks/pacing_ceiling.py` can show what any pacing can reach
under a given jitter.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass

from core.sandbox.config import SandboxConfig
from core.sandbox.latency import draw_delay
from core.sandbox.limits import SlidingWindowLimiter as ArrivalWindow
from core.sender.ratelimit import SlidingWindowLimiter


class FakeClock:
    """A clock the replay moves: `limiter(clock=...)` reads it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


LimiterFactory = Callable[[int, FakeClock], SlidingWindowLimiter]


def default_limiter(cap: int, clock: FakeClock) -> SlidingWindowLimiter:
    """The dispatcher's limiter as the worker builds it (WHATSAPP_RATE_MARGIN_SECONDS's
    default margin)."""
    from core.settings import Settings

    margin = Settings.model_fields["whatsapp_rate_margin_seconds"].default
    return SlidingWindowLimiter(cap, margin=float(margin), clock=clock)


@dataclass(frozen=True)
class Replay:
    """What the sandbox counted."""

    sent: int
    refused: int  # 130429: over the cap on arrival
    steady_ratio: float  # accepted per second (middle 90 % of accepts) / cap

    @property
    def refused_share(self) -> float:
        """Refused sends as a share of all sends."""
        return self.refused / self.sent if self.sent else 0.0


def latency_model(spread: float, *, tail_rate: float = 0.005) -> SandboxConfig:
    """The sandbox's latency around 150 ms, ± `spread`, with `tail_rate` of 1-2 s sends,
    half of each before it arrives (what `benchmarks/send_throughput.py` runs)."""
    return SandboxConfig(
        latency_ms=150,
        latency_spread=spread,
        latency_tail_rate=tail_rate,
        latency_arrival_share=0.5,
    )


@dataclass(order=True)
class _Event:
    at: float
    order: int
    kind: str  # "try", "arrive" or "answer"
    written: float = 0.0
    total: float = 0.0  # the send's whole round trip
    accepted: bool = False


class _Run:
    """The event queue and the sandbox's side of one replay."""

    def __init__(self, cap: int, config: SandboxConfig, seed: int) -> None:
        self.cap = cap
        self.config = config
        self.rng = random.Random(seed)
        self.meta = ArrivalWindow(cap)
        self.events: list[_Event] = []
        self.order = 0
        self.accepted: list[float] = []
        self.sent = self.refused = 0

    def push(
        self, at: float, kind: str, written: float = 0.0, total: float = 0.0, accepted: bool = False
    ) -> None:
        self.order += 1
        heapq.heappush(self.events, _Event(at, self.order, kind, written, total, accepted))

    def send(self, at: float, written: float) -> None:
        """A request written at `at` (dated `written` by its sender)."""
        self.sent += 1
        delay = draw_delay(self.config, self.rng)
        self.push(at + delay.before_arrival, "arrive", written, delay.total)

    def arrive(self, event: _Event) -> bool:
        """The sandbox counts the send against its cap; True when accepted."""
        if self.meta.available(event.at):
            self.meta.commit(event.at)
            self.accepted.append(event.at)
            return True
        self.refused += 1
        return False

    def result(self) -> Replay:
        accepted = sorted(self.accepted)
        low, high = int(len(accepted) * 0.05), int(len(accepted) * 0.95)
        span = accepted[high] - accepted[low] if high > low else 0.0
        steady = (high - low) / span / self.cap if span > 0 else 0.0
        return Replay(sent=self.sent, refused=self.refused, steady_ratio=steady)


def replay_limiter(
    cap: int,
    config: SandboxConfig,
    *,
    seconds: float,
    seed: int = 1,
    answers: bool = True,
    make_limiter: LimiterFactory = default_limiter,
) -> Replay:
    """Send a saturated queue for `seconds` as the dispatcher paces it; `answers` False
    dates sends when written only (the dispatcher before arrival-aware pacing)."""
    clock = FakeClock()
    limiter = make_limiter(cap, clock)
    run = _Run(cap, config, seed)
    run.push(0.0, "try")
    while run.events:
        event = heapq.heappop(run.events)
        clock.now = event.at
        if event.kind == "try" and event.at < seconds:
            _send_what_fits(run, limiter, event.at, answers)
            wait = limiter._wait(event.at)
            run.push(event.at + max(wait or 0.05, 1e-4), "try")
        elif event.kind == "arrive":
            accepted = run.arrive(event)
            if not accepted:
                limiter.throttled()  # the dispatcher's reaction to 130429
            run.push(event.written + event.total, "answer", event.written, accepted=accepted)
        elif event.kind == "answer" and answers:
            limiter.answered(event.written, arrived=event.accepted)
            if event.at < seconds:  # a re-dated send may free a slot at once
                _send_what_fits(run, limiter, event.at, answers)
    return run.result()


def _send_what_fits(run: _Run, limiter: SlidingWindowLimiter, at: float, answers: bool) -> None:
    """Send while the limiter grants a permit at once (what `acquire` does when woken)."""
    while limiter.try_acquire():
        run.send(at, limiter.sent(awaits_answer=answers))


def replay_schedule(
    cap: int, config: SandboxConfig, *, rate: float, seconds: float, seed: int = 1
) -> Replay:
    """Send evenly at `rate` per second for `seconds`, blind to every answer: how much of
    the cap the sandbox accepts from a perfectly regular sender under this jitter."""
    run = _Run(cap, config, seed)
    count = int(rate * seconds)
    for index in range(count):
        at = index / rate
        run.send(at, at)
    while run.events:
        event = heapq.heappop(run.events)
        if event.kind == "arrive":
            run.arrive(event)
    return run.result()
