"""The dispatcher's limiters: sliding window with pacing and a settable cap; the pair gate."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.sandbox.limits import max_in_window
from core.sender.ratelimit import PairGate, SlidingWindowLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_never_more_than_the_cap_in_any_window_and_starts_are_spread() -> None:
    limiter = SlidingWindowLimiter(20, margin=0.02)
    starts: list[float] = []

    async def run() -> None:
        for _ in range(50):
            await limiter.acquire()
            limiter.sent()
            starts.append(time.monotonic())

    asyncio.run(run())
    assert max_in_window(starts, 1.02) <= 20
    # 90 % of a tenth of the window: at most a tenth of the cap (spread, but with slack
    # so that the full window, not late slices, sets the steady rate)
    assert max_in_window(starts, 0.9 / 10) <= 2


def test_steady_rate_is_set_by_the_window_not_by_slice_lateness() -> None:
    """Every slice wait overshoots a little (timers): with the slices' slack, 3 s of a
    saturated queue still starts 10 windows' worth (exact tenths lost 1 %: 792 of 800)."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(80, margin=0.02, clock=clock)
    lateness = 0.002  # every wait ends 2 ms late

    async def run() -> int:
        started = 0
        while clock.now < 100.0 + 10 * 1.02 - 1e-9:
            wait = limiter._wait(clock.now)
            assert wait is not None
            if wait > 0:
                clock.now += wait + lateness
                continue
            limiter._starts.append(clock.now)
            started += 1
        return started

    started = asyncio.run(run())
    assert 10 * 80 - 2 <= started <= 10 * 80


def test_cap_zero_blocks_until_raised_and_an_unrenewed_cap_expires() -> None:
    async def run() -> None:
        limiter = SlidingWindowLimiter(5)
        limiter.set_cap(0)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(limiter.acquire(), 0.3)
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        limiter.set_cap(5, expires_in=0.2)
        await asyncio.wait_for(waiter, 5)
        await asyncio.sleep(0.3)  # the share was not renewed: sending must stop
        assert limiter.rate == 0
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(limiter.acquire(), 0.3)

    asyncio.run(run())


def test_throttling_cuts_the_rate_by_the_refusals_then_ramps_back_to_the_cap() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1000, clock=clock)
    for _ in range(30):  # one clump of 130429s: one signal, 30 sends too many
        limiter.throttled()
        clock.now += 0.001
    assert limiter.throttle_count == 1
    assert limiter.rate == pytest.approx(970)
    clock.now = 100.0 + 0.49
    assert limiter.rate == pytest.approx(970)  # held half a second
    clock.now = 100.0 + 0.5 + 0.045  # then ramps at cap / 3 s per second
    assert limiter.rate == pytest.approx(985)
    clock.now = 100.0 + 0.5 + 0.09
    assert limiter.rate == 1000
    assert limiter._limit(clock.now) == 1000


def test_a_lower_real_limit_is_reached_in_a_window_and_cuts_compound() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1000, clock=clock)
    for _ in range(200):  # Meta takes 800/s: 200 of our 1,000 refused in the window
        limiter.throttled()
    assert limiter.rate == pytest.approx(800)
    clock.now += 0.3
    for _ in range(100):  # the same window: the same signal, cut further
        limiter.throttled()
    assert limiter.rate == pytest.approx(700)
    assert limiter.throttle_count == 1
    clock.now += 0.7  # a window later, held 0.5 s and ramping since 0.5 s at 1000/3 a s
    assert limiter.rate == pytest.approx(700 + 1000 / 3 * 0.5)
    for _ in range(50):  # still refused: a new signal, from the rate now
        limiter.throttled()
    assert limiter.rate == pytest.approx(700 + 1000 / 3 * 0.5 - 50)
    assert limiter.throttle_count == 2
    start = limiter.rate + 50
    for _ in range(2000):  # one window never cuts more than half
        limiter.throttled()
    assert limiter.rate == pytest.approx(start / 2)
    clock.now += 2.0  # one signal later still, close to nothing left: not below 1/s
    for _ in range(1000):
        limiter.throttled()
    clock.now += 1.0
    for _ in range(1000):
        limiter.throttled()
    assert limiter.rate >= 1.0
    clock.now += 0.5 + 3.0
    assert limiter.rate == 1000  # ramps all the way back once Meta stops refusing


def test_a_throttled_limiter_starts_fewer_in_its_window() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(100, margin=0.0, slices=1, clock=clock)
    for _ in range(10):
        limiter.throttled()
    assert limiter._limit(clock.now) == 90
    for _ in range(90):
        assert limiter._wait(clock.now) == 0.0
        limiter._starts.append(clock.now)
    assert limiter._wait(clock.now) == pytest.approx(1.0)  # the 91st waits for the window


def test_bad_limiter_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        SlidingWindowLimiter(-1)
    with pytest.raises(ValueError):
        SlidingWindowLimiter(10, window=0)
    with pytest.raises(ValueError):
        SlidingWindowLimiter(10, max_cut=1.5)
    with pytest.raises(ValueError):
        SlidingWindowLimiter(10).set_cap(-2)


def test_pair_gate_spaces_one_recipient_and_not_the_others() -> None:
    clock = FakeClock()
    gate = PairGate(6.0, margin=0.1, clock=clock)
    gate.mark_sent("34612345678")
    assert gate.ready_at("34612345678") == pytest.approx(106.1)
    assert gate.ready_at("34612345679") < clock.now
    gate.hold("34612345678", 16.0)  # 131056: Meta asks for 4^n seconds
    assert gate.ready_at("34612345678") == pytest.approx(116.0)
    clock.now = 117.0
    gate.prune()
    assert len(gate) == 0


def test_a_start_is_dated_when_its_request_is_written_not_when_admitted() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(3, margin=0.0, slices=1, clock=clock)

    async def admit(count: int) -> None:
        for _ in range(count):
            await limiter.acquire()

    asyncio.run(admit(3))
    assert limiter.pending == 3 and limiter.starts_in_window() == 3
    clock.now += 5.0  # their requests waited (new connections, a pause): still counted
    assert limiter._wait(clock.now) == pytest.approx(1.0)
    for _ in range(3):
        limiter.sent()  # written now, at 105: the window runs from here
    assert limiter.pending == 0 and limiter.starts_in_window() == 3
    clock.now += 0.999
    assert limiter._wait(clock.now) == pytest.approx(0.001)
    clock.now += 0.001
    assert limiter._wait(clock.now) == 0.0


def test_pending_starts_count_towards_the_slices_too() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(100, margin=0.0, clock=clock)
    for _ in range(10):  # a tenth of the cap admitted, none written yet
        assert limiter.try_acquire()
    assert limiter._wait(clock.now) == pytest.approx(0.09)  # a slice: 90 % of a tenth


def test_sent_without_acquire_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        SlidingWindowLimiter(5).sent()


def _written(limiter: SlidingWindowLimiter) -> float:
    asyncio.run(limiter.acquire())
    return limiter.sent(awaits_answer=True)


def _learn_round_trip(limiter: SlidingWindowLimiter, clock: FakeClock, seconds: float) -> None:
    for _ in range(40):
        sent = _written(limiter)
        clock.now += seconds
        limiter.answered(sent, arrived=True)
        clock.now += 2.0  # out of every window again


def test_an_answered_send_is_redated_at_its_estimated_arrival_later_or_earlier() -> None:
    """The window is kept in arrival time: a send that arrived later than assumed stays
    in it longer, one that arrived sooner leaves it sooner."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, margin=0.0, slices=1, clock=clock)
    _learn_round_trip(limiter, clock, 0.1)
    assert limiter.one_way == pytest.approx(0.05) and limiter.redated == 0
    start = clock.now
    fast = _written(limiter)
    clock.now += 0.05
    slow = _written(limiter)
    clock.now += 0.03
    limiter.answered(fast, arrived=True)  # 0.08 s round trip: arrived 10 ms sooner
    clock.now += 0.57
    limiter.answered(slow, arrived=True)  # 0.6 s round trip: arrived 0.25 s later
    assert limiter.redated == 2
    assert limiter._starts == [pytest.approx(start - 0.01), pytest.approx(start + 0.3)]
    clock.now = start + 0.99 + 1e-6  # the fast send left the window, the slow one not
    _written(limiter)
    assert limiter._wait(clock.now) == pytest.approx(0.31, abs=1e-5)


def test_refusals_assume_sooner_arrivals_and_calm_brings_the_median_back() -> None:
    """Each window with 130429 refusals lowers the round-trip quantile assumed for a new
    send (the few that arrive early then find room at Meta); sends without refusals
    raise it back to the median."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(10_000, margin=0.0, slices=1, clock=clock)
    for index in range(128):  # round trips of 100..227 ms
        sent = _written(limiter)
        clock.now += 0.1 + index / 1000
        limiter.answered(sent, arrived=True)
    assert limiter.arrival_quantile == 0.5
    median = limiter.one_way
    assert median == pytest.approx(0.163 / 2)
    limiter.throttled()
    limiter.throttled()  # the same window: one signal
    assert limiter.arrival_quantile == pytest.approx(0.45)
    for _ in range(10):  # a window apart each: never below the floor
        clock.now += 1.0
        limiter.throttled()
    assert limiter.arrival_quantile == pytest.approx(0.2)
    assert limiter.one_way < median
    clock.now += 10.0
    for _ in range(6 * 1000):  # calm: a step back per 1,000 sends, up to the median
        limiter.sent() if limiter.try_acquire() else None
    assert limiter.arrival_quantile == pytest.approx(0.5)
    assert limiter.one_way == pytest.approx(median)


def test_a_send_still_unanswered_after_its_window_counts_until_its_answer() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, margin=0.0, slices=1, clock=clock)
    straggler = _written(limiter)
    clock.now += 1.5  # its date left the window, but where it arrives is not known yet
    assert limiter.starts_in_window() == 1
    assert limiter._wait(clock.now) == pytest.approx(1.0)
    limiter.answered(straggler, arrived=False)  # no answer (timeout): dated as written
    assert limiter.starts_in_window() == 0
    assert limiter._wait(clock.now) == 0.0


def test_a_late_answer_brings_a_send_back_into_the_window_where_it_arrived() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, margin=0.0, slices=1, clock=clock)
    _learn_round_trip(limiter, clock, 0.1)
    straggler = _written(limiter)
    clock.now += 1.6  # a 1.6 s round trip: it reached Meta ~0.75 s after it was written
    limiter.answered(straggler, arrived=True)
    assert limiter.starts_in_window() == 1  # still in Meta's window, so still in ours
    assert limiter._wait(clock.now) == pytest.approx(0.15, abs=1e-6)


def test_constant_round_trips_redate_nothing() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1000, clock=clock)
    for _ in range(300):
        sent = _written(limiter)
        clock.now += 0.15
        limiter.answered(sent, arrived=True)
    assert limiter.redated == 0 and limiter.one_way == pytest.approx(0.075)


def test_bad_arrival_quantile_is_refused() -> None:
    with pytest.raises(ValueError):
        SlidingWindowLimiter(10, arrival_quantile=1.0)
    with pytest.raises(ValueError):
        SlidingWindowLimiter(10, arrival_quantile=0.3, arrival_quantile_min=0.4)
