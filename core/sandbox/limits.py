"""Meta's send limits: throughput per second (130429) and the per-recipient pair rate (131056).

Both are checked first and committed only when the send is accepted, so rejected sends
never use up quota. Times are `time.monotonic()` seconds.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Sequence


class SlidingWindowLimiter:
    """At most `limit` events in any window of `width` seconds (a sliding log).

    An event at time t is admitted when fewer than `limit` earlier events lie in
    (t - width, t]; `max_in_window` uses the same definition, so its result never
    exceeds the limit that was in force.
    """

    def __init__(self, limit: int, width: float = 1.0) -> None:
        self.limit = limit
        self.width = width
        self._times: deque[float] = deque()

    def available(self, now: float) -> bool:
        """True if one more event at `now` stays within the limit."""
        times = self._times
        horizon = now - self.width
        while times and times[0] <= horizon:
            times.popleft()
        return len(times) < self.limit

    def commit(self, now: float) -> None:
        """Record an admitted event (call after `available` said yes)."""
        self._times.append(now)

    def clear(self) -> None:
        """Forget every event."""
        self._times.clear()


class PairLimiter:
    """A token bucket per recipient: `capacity` tokens, one more every `interval` seconds.

    Capacity 1 is the strict "one message every 6 s"; Meta's real burst of up to 45
    borrowed messages is capacity 45.
    """

    def __init__(self, capacity: int, interval: float) -> None:
        self.capacity = capacity
        self.interval = interval
        self._buckets: dict[str, tuple[float, float]] = {}

    def _tokens(self, key: str, now: float) -> float:
        state = self._buckets.get(key)
        if state is None:
            return float(self.capacity)
        tokens, at = state
        return min(float(self.capacity), tokens + (now - at) / self.interval)

    def available(self, key: str, now: float) -> bool:
        """True if `key` may receive a message at `now`."""
        return self._tokens(key, now) >= 1.0

    def commit(self, key: str, now: float) -> None:
        """Spend one token of `key` (call after `available` said yes)."""
        self._buckets[key] = (self._tokens(key, now) - 1.0, now)

    def clear(self) -> None:
        """Refill every bucket."""
        self._buckets.clear()


def max_in_window(times: Sequence[float], width: float = 1.0) -> int:
    """The most events in any window (t - width, t] over sorted `times` (exact, O(n log n))."""
    best = 0
    start = 0
    for end, at in enumerate(times):
        horizon = at - width
        if times[start] <= horizon:
            start = bisect_right(times, horizon, start, end)
        best = max(best, end - start + 1)
    return best
