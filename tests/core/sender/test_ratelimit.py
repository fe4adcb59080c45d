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


def test_throttling_cuts_the_rate_then_ramps_back_to_the_cap() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(100, clock=clock)
    limiter.throttled()
    assert limiter.rate == pytest.approx(90)
    limiter.throttled()  # the same burst of 130429s: one signal
    assert limiter.rate == pytest.approx(90)
    clock.now += 1.0
    limiter.throttled()  # again, a window later and still slowed: compounds
    assert limiter.rate == pytest.approx(81)
    clock.now += 1.0 + 3.0
    assert limiter.rate == 100
    assert limiter.throttle_count == 2


def test_bad_limiter_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        SlidingWindowLimiter(-1)
    with pytest.raises(ValueError):
        SlidingWindowLimiter(10, window=0)
    with pytest.raises(ValueError):
        SlidingWindowLimiter(10, decrease=1.5)
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
