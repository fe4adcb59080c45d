"""Rate limits the dispatcher obeys: messages per second overall, and per recipient.

`RateLimiter` is the interface the dispatcher waits on before each send. The in-process
`SlidingWindowLimiter` counts *send starts* in a sliding window: never more than the
cap in any window of `window + margin` seconds, which is stricter than Meta's count of
accepted messages per second and so keeps us under it, while a saturated queue still
starts a send the moment the oldest start leaves the window (≥ 97 % of the cap).
Several worker processes share one budget through the database (`core.sender.budget`):
each runs this limiter with its share as the cap (`set_cap`), so together they never
exceed the cap.

Throughput errors (130429, 4, 80007) lower the rate by exactly what Meta refused: each
refusal is one send more than Meta's window held, so the refusals of one window (one
signal) cut the rate by their number per second — a clump of 30 refusals at 1,000/s
costs 3 % for a moment, a number whose real limit is 800 while we send 1,000 drops to
800 within one window (at most `max_cut`, half, per window; later windows compound).
The cut rate is held `hold_seconds` (0.5 s), then ramps back linearly to the cap at
cap / `ramp_seconds` per second: AIMD with a measured decrease. (A fixed 10 % cut held
1 s cost about 100 sends per jitter clump at 1,000/s: 1.5 % of an 8 s run each.)

Meta counts a send when it *arrives*, not when we start it, and on a real network the
way there varies (150 ms ± 50 %, and now and then a second or two). Evenly paced starts
then arrive unevenly: some one-second windows at Meta hold more than the cap (130429).
So the window is kept in arrival time: a send whose answer comes back is re-dated at
its estimated arrival (half its round trip after it was written, the usual
symmetric-path estimate) less the one-way delay the limiter assumes for a new send,
later or earlier than written. A send still unanswered is counted in every window until
its answer says where it arrived. The assumed one-way delay is a quantile of recent
round trips, halved: the median while Meta accepts everything (unbiased: no rate lost
to jitter, ± 20 % costs nothing), lowered by ARRIVAL_QUANTILE_STEP at each window with
130429 refusals (down to `arrival_quantile_min`) and raised back one step per
ARRIVAL_CALM_SENDS sends without one. A lower quantile dates sends later (they leave the
window later) and assumes new ones arrive sooner, which keeps the few that arrive early
out of a full window at Meta: at 150 ms ± 50 % the median refuses about 1 % of sends,
the 30th percentile about 0.1 % (measured by replaying this limiter against the
sandbox's latency model, tests/core/sender/test_pacing_replay.py). With constant
latency nothing moves.

`PairGate` keeps Meta's pair limit (one message per recipient per 6 s): it says when a
recipient may next receive, so the dispatcher postpones that message and sends others.
"""

from __future__ import annotations

import asyncio
import math
import time
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Protocol

Clock = Callable[[], float]

#: A pacing slice's share of its tenth of the window (see SlidingWindowLimiter).
SLICE_SLACK = 0.9
#: Round trips remembered to estimate a new send's one-way delay (a ring).
RTT_MEMORY = 512
#: Fewer answers than this: assume the fastest one-way delay seen so far.
RTT_MIN_SAMPLES = 32
#: Recompute the assumed one-way delay after this many answers.
RTT_REFRESH = 64
#: A send whose estimated arrival differs less than this from the assumed one keeps its
#: date (scheduling noise, not the network).
REDATE_SECONDS = 0.001
#: Each window with 130429 refusals lowers the quantile of round trips assumed for a new
#: send by this much; each ARRIVAL_CALM_SENDS sends without one raise it back a step.
ARRIVAL_QUANTILE_STEP = 0.05
ARRIVAL_CALM_SENDS = 1000
#: Meta's pair rate: one message to the same WhatsApp user every 6 seconds.
PAIR_INTERVAL_SECONDS = 6.0


class RateLimiter(Protocol):
    """What the dispatcher needs from a throughput limiter."""

    @property
    def rate(self) -> float:
        """Sends per second currently allowed (the cap, or less after throttling)."""
        ...

    async def acquire(self) -> None:
        """Wait until one more send may start; it counts as in the window from now on."""
        ...

    def sent(self, *, awaits_answer: bool = False) -> float | None:
        """The send `acquire` let through has just been written (or given up): date it.

        With `awaits_answer`, the caller promises `answered(date, ...)` with the
        returned date once the send is answered or given up.
        """
        ...

    def answered(self, written_at: float, *, arrived: bool) -> None:
        """The send dated `written_at` has its answer (`arrived`: Meta accepted it, the
        round trip is now) or never will: re-date it at its estimated arrival."""
        ...

    def throttled(self) -> None:
        """Meta said we send too fast (130429, 4, 80007): slow down for a while."""
        ...


class SlidingWindowLimiter:
    """At most `cap` send starts in any sliding window of `window + margin` seconds.

    `margin` absorbs the jitter between starting a request here and Meta counting it
    there; it costs `margin / window` of throughput (1 % for 10 ms).

    Starts are also spread out: at most `ceil(limit / slices)` in any `1 / slices` of
    the window. A whole second's quota fired at once (the first second of a batch,
    when every connection is new) reaches Meta spread over the time its connections
    take to open, and so overlaps the next second's sends in Meta's count; evenly paced
    starts arrive as they left. The full window stays the binding limit: a slice is
    `SLICE_SLACK` (90 %) of a tenth of the window, so the slices allow up to 11 % more
    than the cap locally and never bind in steady state. (With exact tenths each slice
    waited on the previous slice's actual, slightly late starts: a 1 ms timer overshoot
    per slice cost 1 % of the rate.)

    A start is dated when its request is written, not when `acquire` let it through:
    `acquire` counts it as *pending* (in the window, at every moment) until the
    dispatcher calls `sent()` as the request's bytes go out, and only then dates it.
    Sends that wait for a new connection (the first second of a batch) or sit through
    a pause of the process are so counted from when they really left; dating them at
    `acquire` made Meta see the late ones together with the next second's (130429).
    Dates only move later, so the guarantee holds: when `acquire` admits a send, fewer
    than the cap are dated in the window or still pending.

    `set_cap` changes the cap at once (a share of a budget several workers split);
    cap 0 stops every start until it is raised.
    """

    def __init__(
        self,
        cap: float,
        *,
        window: float = 1.0,
        margin: float = 0.01,
        slices: int = 10,
        max_cut: float = 0.5,
        hold_seconds: float = 0.5,
        ramp_seconds: float = 3.0,
        min_rate: float = 1.0,
        arrival_quantile: float = 0.5,
        arrival_quantile_min: float = 0.2,
        clock: Clock = time.monotonic,
    ) -> None:
        if cap < 0 or window <= 0 or margin < 0 or slices < 1:
            raise ValueError("cap must not be negative, window positive, margin not negative")
        self.cap = float(cap)
        self._span = window + margin
        self._window = window
        self._slices = slices
        if not 0 < max_cut < 1:
            raise ValueError("max_cut must be between 0 and 1")
        self._max_cut = max_cut
        self._hold = hold_seconds
        self._ramp_seconds = ramp_seconds
        self._min_rate = min_rate
        self._clock = clock
        self._starts: list[float] = []  # dated starts, oldest first (kept sorted)
        #: when recent sends were written (never re-dated), for the slices
        self._writes: deque[float] = deque()
        self._pending = 0  # admitted by `acquire`, not yet `sent()`
        #: dates of written sends whose answer is awaited (sorted: dated in order)
        self._unanswered: list[float] = []
        if not 0 <= arrival_quantile_min <= arrival_quantile < 1:
            raise ValueError("arrival quantiles must be 0 <= minimum <= quantile < 1")
        self._quantile_max = arrival_quantile
        self._quantile_min = arrival_quantile_min
        self._arrival_quantile = arrival_quantile
        self._calm_since = 0  # `_sends` at the last refusal signal or quantile step up
        self._rtts: deque[float] = deque(maxlen=RTT_MEMORY)
        self._rtt_count = 0
        self._one_way = math.inf  # the one-way delay assumed for a new send
        self.redated = 0  # answered sends moved to their estimated arrival
        self._sends = 0  # sends dated so far
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._cap_expires_at = math.inf
        self._penalty_rate: float | None = None
        self._penalty_at = -math.inf
        self._penalty_base = 0.0  # the rate when the current signal began
        self._refusals = 0  # refusals counted in the current signal
        self.throttle_count = 0  # signals (windows with refusals), not refusals

    @property
    def rate(self) -> float:
        """Sends per second allowed now: the cap, or the AIMD-reduced rate."""
        return self._rate_at(self._clock())

    def set_cap(self, cap: float, *, expires_in: float | None = None) -> None:
        """Change the cap now (waiting starts re-check at once); 0 stops all starts.

        With `expires_in`, the cap falls to 0 after that many seconds unless renewed: a
        worker whose share of a shared budget could not be renewed must stop sending.
        """
        if cap < 0:
            raise ValueError("cap must not be negative")
        self.cap = float(cap)
        self._cap_expires_at = math.inf if expires_in is None else self._clock() + expires_in
        self._changed.set()

    def _rate_at(self, now: float) -> float:
        if now >= self._cap_expires_at:
            return 0.0
        if self._penalty_rate is None:
            return self.cap
        since = now - self._penalty_at
        if since < self._hold:
            return min(self.cap, self._penalty_rate)
        ramp = self.cap / self._ramp_seconds if self._ramp_seconds > 0 else math.inf
        rate = self._penalty_rate + ramp * (since - self._hold)
        if rate >= self.cap:
            self._penalty_rate = None
            return self.cap
        return rate

    def throttled(self) -> None:
        """One send refused as over Meta's throughput: cut the rate by one per second.

        Refusals within one window of the first are one signal: together they cut the
        rate the signal began with by their number per second of window (at most
        `max_cut` of it), held `hold_seconds` from the first. A refusal a window or
        more later begins a new signal, from the rate then (still lowered: compounds).
        """
        now = self._clock()
        if now - self._penalty_at >= self._window:  # a new signal
            # arrivals overfilled a window at Meta: assume new sends arrive sooner
            self._calm_since = self._sends
            self._set_quantile(self._arrival_quantile - ARRIVAL_QUANTILE_STEP)
            self._penalty_base = self._rate_at(now)
            self._refusals = 0
            self._penalty_at = now
            self.throttle_count += 1
        self._refusals += 1
        base = self._penalty_base
        cut = min(self._refusals / self._window, base * self._max_cut)
        self._penalty_rate = max(min(self._min_rate, self.cap), base - cut)

    def _limit(self, now: float) -> int:
        rate = self._rate_at(now)
        if rate <= 0:
            return 0
        return max(1, math.floor(rate * self._window + 1e-9))

    def _wait(self, now: float) -> float | None:
        """Seconds until one more permit may be granted (0: now), or None while the
        cap is 0."""
        slot = self._slot(now)
        if slot is None:
            return None
        return max(0.0, slot - now)

    def _slot(self, now: float) -> float | None:
        """When one more start fits (at the earliest `now`; a guess while pending
        permits, not dated yet, fill the window); None while the cap is 0."""
        horizon = now - self._span
        starts = self._starts
        if starts and starts[0] <= horizon:
            del starts[: bisect_right(starts, horizon)]
        limit = self._limit(now)
        if limit == 0:
            if now >= self._cap_expires_at or self.cap == 0:
                return None
            return now + 0.05
        # pending starts, and written ones whose date left the window unanswered (where
        # they arrive is not known yet), are in every window
        stale = bisect_right(self._unanswered, horizon) if self._unanswered else 0
        count = len(starts) + self._pending + stale
        at = now
        if count >= limit:  # the dated start that must leave the window first
            index = count - limit
            # pending ones alone fill it: none can leave before a window from now
            at = starts[index] + self._span if index < len(starts) else now + self._span
        # the slices count sends when written (an arrival re-dates only the window),
        # pending ones as written now
        slices = min(self._slices, limit)
        burst = math.ceil(limit / slices)
        slice_span = self._window * SLICE_SLACK / slices
        writes = self._writes
        while writes and writes[0] <= now - slice_span:
            writes.popleft()
        count = len(writes) + self._pending
        if count >= burst:
            index = count - burst
            if index < len(writes):
                at = max(at, writes[index] + slice_span)
            else:  # pending ones alone fill the slice
                at = max(at, now + slice_span)
        return max(at, now)

    def _grant(self, now: float) -> bool:
        """Grant a permit if one more start fits now: count it as pending and return
        True; else False (nothing counted)."""
        slot = self._slot(now)
        if slot is None or slot > now:
            return False
        self._pending += 1
        return True

    def try_acquire(self) -> bool:
        """`acquire` without waiting: count a start as pending and return True if one
        may start now, else False (nothing counted). The dispatcher asks this first so
        a permit that is free costs no task and no timer."""
        if self._lock.locked():
            return False
        return self._grant(self._clock())

    async def acquire(self) -> None:
        """Wait for a free slot in the window, then count this start as pending."""
        async with self._lock:
            while True:
                now = self._clock()
                if self._grant(now):
                    return
                wait = self._wait(now)
                if wait == 0.0:  # free by a hair after all: look again in a moment
                    wait = 1e-3
                self._changed.clear()
                if self._cap_expires_at < math.inf and wait is not None:
                    wait = min(wait, max(0.0, self._cap_expires_at - now))
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)

    def sent(self, *, awaits_answer: bool = False) -> float:
        """Date one pending start now: its request is being written (or it was dropped).

        Call it exactly once per `acquire`, as late as the request really leaves; a
        send that never left is dated when it is given up (counted: the safe side).
        With `awaits_answer`, call `answered` with the returned date once its answer
        came (or never will): until then it stays in the window however long it takes.
        """
        if self._pending <= 0:
            raise RuntimeError("sent() without a matching acquire()")
        self._pending -= 1
        self._sends += 1
        if self._sends - self._calm_since >= ARRIVAL_CALM_SENDS:  # no refusal lately
            self._calm_since = self._sends
            self._set_quantile(self._arrival_quantile + ARRIVAL_QUANTILE_STEP)
        now = self._clock()
        self._starts.append(now)  # the clock never goes back: still sorted
        self._writes.append(now)
        if awaits_answer:
            self._unanswered.append(now)
        return now

    def answered(self, written_at: float, *, arrived: bool) -> None:
        """Re-date the send written at `written_at` at its estimated arrival at Meta.

        Call it when the answer came (`arrived`: Meta accepted the send) or when none
        will (`arrived` False: an error, a timeout, a lost connection, cancelled: the
        date stays). Its arrival is estimated at half the round trip (written until
        now) after it was written; the window assumes `one_way` for a new send, so the
        send moves by the difference: later when it arrived later than assumed, earlier
        when sooner (the window is kept in arrival time, as Meta counts).
        """
        unanswered = self._unanswered
        index = bisect_left(unanswered, written_at)
        if index < len(unanswered) and unanswered[index] == written_at:
            del unanswered[index]
        round_trip = self._clock() - written_at
        if not arrived or round_trip < 0:
            return
        self._learn(round_trip)
        shift = round_trip / 2 - self._one_way
        if abs(shift) < REDATE_SECONDS:
            return
        now = self._clock()
        starts = self._starts
        index = bisect_left(starts, written_at)
        if index < len(starts) and starts[index] == written_at:
            del starts[index]
        arrival = written_at + shift
        if arrival > now - self._span:  # else it has left the window anyway
            insort(starts, arrival)
        self.redated += 1
        self._changed.set()

    def _learn(self, round_trip: float) -> None:
        """Keep the one-way delay assumed for a new send: the `arrival_quantile` of
        recent round trips, halved (the fastest seen while there are few)."""
        self._rtts.append(round_trip)
        self._rtt_count += 1
        if self._rtt_count < RTT_MIN_SAMPLES:
            self._one_way = min(self._one_way, round_trip / 2)
        elif self._rtt_count % RTT_REFRESH == 0 or self._rtt_count == RTT_MIN_SAMPLES:
            self._estimate_one_way()

    def _estimate_one_way(self) -> None:
        if self._rtt_count >= RTT_MIN_SAMPLES:
            ordered = sorted(self._rtts)
            self._one_way = ordered[int(self._arrival_quantile * (len(ordered) - 1))] / 2

    def _set_quantile(self, quantile: float) -> None:
        """Assume new sends arrive at this quantile of recent round trips (bounded)."""
        quantile = min(self._quantile_max, max(self._quantile_min, quantile))
        if quantile != self._arrival_quantile:
            self._arrival_quantile = quantile
            self._estimate_one_way()

    @property
    def arrival_quantile(self) -> float:
        """The quantile of recent round trips assumed for a new send's way there: the
        median while Meta accepts everything, lower after 130429 refusals."""
        return self._arrival_quantile

    @property
    def one_way(self) -> float:
        """The one-way delay (s) assumed for a new send; inf before any answer."""
        return self._one_way

    @property
    def pending(self) -> int:
        """Starts admitted but not yet dated (requests not yet written)."""
        return self._pending

    def starts_in_window(self) -> int:
        """How many starts the current window holds, pending and stale unanswered included."""
        horizon = self._clock() - self._span
        stale = bisect_right(self._unanswered, horizon)
        return self._pending + stale + sum(1 for t in self._starts if t > horizon)


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
