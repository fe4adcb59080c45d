"""Rate limits the dispatcher obeys: messages per second overall, and per recipient.

`RateLimiter` is the interface the dispatcher waits on before each send. The in-process
`SlidingWindowLimiter` counts *send starts* in a sliding window: never more than the
cap in any window of `window + margin` seconds, which is stricter than Meta's count of
accepted messages per second and so keeps us under it, while a saturated queue still
starts a send the moment the oldest start leaves the window (≥ 97 % of the cap).
A multi-process limiter (a budget shared through the database) implements the same
interface.

Throughput errors (130429, 4, 80007) halve the rate (multiplicative decrease), hold it
for a while, then ramp it back linearly to the cap (additive increase): AIMD.

`PairGate` keeps Meta's pair limit (one message per recipient per 6 s): it says when a
recipient may next receive, so the dispatcher postpones that message and sends others.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

Clock = Callable[[], float]

#: Meta's pair rate: one message to the same WhatsApp user every 6 seconds.
PAIR_INTERVAL_SECONDS = 6.0


class RateLimiter(Protocol):
    """What the dispatcher needs from a throughput limiter."""

    @property
    def rate(self) -> float:
        """Sends per second currently allowed (the cap, or less after throttling)."""
        ...

    async def acquire(self) -> None:
        """Wait until one more send may start, and count it as started."""
        ...

    def throttled(self) -> None:
        """Meta said we send too fast (130429, 4, 80007): slow down for a while."""
        ...


class SlidingWindowLimiter:
    """At most `cap` send starts in any sliding window of `window + margin` seconds.

    `margin` absorbs the jitter between starting a request here and Meta counting it
    there; it costs `margin / window` of throughput (1 % for 10 ms).
    """

    def __init__(
        self,
        cap: float,
        *,
        window: float = 1.0,
        margin: float = 0.01,
        hold_seconds: float = 5.0,
        ramp_seconds: float = 10.0,
        min_rate: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if cap <= 0 or window <= 0 or margin < 0:
            raise ValueError("cap and window must be positive, margin not negative")
        self.cap = float(cap)
        self._span = window + margin
        self._window = window
        self._hold = hold_seconds
        self._ramp_per_second = self.cap / ramp_seconds if ramp_seconds > 0 else math.inf
        self._min_rate = min(min_rate, self.cap)
        self._clock = clock
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._penalty_rate: float | None = None
        self._penalty_at = -math.inf
        self.throttle_count = 0

    @property
    def rate(self) -> float:
        """Sends per second allowed now: the cap, or the AIMD-reduced rate."""
        return self._rate_at(self._clock())

    def _rate_at(self, now: float) -> float:
        if self._penalty_rate is None:
            return self.cap
        since = now - self._penalty_at
        if since < self._hold:
            return self._penalty_rate
        rate = self._penalty_rate + self._ramp_per_second * (since - self._hold)
        if rate >= self.cap:
            self._penalty_rate = None
            return self.cap
        return rate

    def throttled(self) -> None:
        """Halve the rate (once per window: a burst of 130429s is one signal)."""
        now = self._clock()
        if now - self._penalty_at < self._window:
            return
        self._penalty_rate = max(self._min_rate, self._rate_at(now) / 2)
        self._penalty_at = now
        self.throttle_count += 1

    def _limit(self, now: float) -> int:
        return max(1, math.floor(self._rate_at(now) * self._window + 1e-9))

    async def acquire(self) -> None:
        """Wait for a free slot in the window, then record this start."""
        async with self._lock:
            while True:
                now = self._clock()
                horizon = now - self._span
                starts = self._starts
                while starts and starts[0] <= horizon:
                    starts.popleft()
                limit = self._limit(now)
                if len(starts) < limit:
                    starts.append(now)
                    return
                # the start that must leave the window before one more fits
                wait = starts[len(starts) - limit] - horizon
                await asyncio.sleep(max(wait, 0.0))

    def starts_in_window(self) -> int:
        """How many starts the current window holds (for metrics and tests)."""
        horizon = self._clock() - self._span
        return sum(1 for t in self._starts if t > horizon)


class PairGate:
    """When each recipient may next receive a message (Meta's 6-second pair limit).

    Times are on the dispatcher's monotonic clock. `margin` keeps us clear of the
    limit despite jitter between our send start and Meta's receipt.
    """

    def __init__(
        self,
        interval: float = PAIR_INTERVAL_SECONDS,
        *,
        margin: float = 0.1,
        clock: Clock = time.monotonic,
    ) -> None:
        self._interval = interval + margin
        self._clock = clock
        self._next: dict[str, float] = {}

    def ready_at(self, recipient: str) -> float:
        """The monotonic time from which `recipient` may receive (≤ now: at once)."""
        return self._next.get(recipient, -math.inf)

    def mark_sent(self, recipient: str, at: float | None = None) -> None:
        """Record a send start to `recipient`."""
        at = self._clock() if at is None else at
        self._next[recipient] = max(self._next.get(recipient, -math.inf), at + self._interval)

    def hold(self, recipient: str, seconds: float) -> None:
        """Keep `recipient` waiting at least `seconds` from now (Meta's 131056 advice)."""
        until = self._clock() + seconds
        self._next[recipient] = max(self._next.get(recipient, -math.inf), until)

    def prune(self) -> None:
        """Forget recipients whose wait is over (keeps memory bounded on long runs)."""
        now = self._clock()
        for recipient in [r for r, t in self._next.items() if t <= now]:
            del self._next[recipient]

    def __len__(self) -> int:
        return len(self._next)
