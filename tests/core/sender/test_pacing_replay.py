"""The limiter's pacing against the sandbox's jittery latency, replayed on a fake clock.

The real `SlidingWindowLimiter` paces a saturated queue; each send takes a latency from
the sandbox's own model (`core.sandbox.latency`, ± 20 % or ± 50 % around 150 ms with a
1-2 s tail, half before it arrives) and Meta's cap is checked by the sandbox's own sliding window
on arrival. No wall clock is involved: the figures are a deterministic function of the
seed, so the test checks behaviour (refusals avoided, rate kept), not machine speed.
"""

from __future__ import annotations

import pytest

from core.sandbox.pacing_replay import Replay, latency_model, replay_limiter, replay_schedule


def replay(cap: int, spread: float, *, answers: bool, seconds: float, seed: int = 1) -> Replay:
    """Send for `seconds` at full speed; `answers` False dates sends when written only
    (the dispatcher before arrival-aware pacing)."""
    return replay_limiter(cap, latency_model(spread), seconds=seconds, seed=seed, answers=answers)


@pytest.mark.parametrize("cap", [80, 1000])
def test_jittery_arrivals_are_refused_rarely_at_nearly_the_full_rate(cap: int) -> None:
    seconds = 30.0 if cap == 80 else 6.0
    before = replay(cap, 0.2, answers=False, seconds=seconds)
    after = replay(cap, 0.2, answers=True, seconds=seconds)
    assert after.refused <= before.refused
    assert after.refused <= 0.005 * after.sent  # Meta counts refusals: at most 0.5 %
    assert after.steady_ratio >= 0.97  # and the rate is kept
    if cap == 80:  # where a few shifted sends overfill a window: far fewer refusals
        assert before.refused > 0
        assert after.refused * 3 <= before.refused


def test_wide_jitter_refuses_few_and_costs_little_rate() -> None:
    """± 50 %: new sends arrive anywhere from 37 to 112 ms after they leave. The window
    kept in arrival time holds refusals within Meta's tolerance (0.5 %) and most of the
    rate (before, re-dating only late sends, and those only after repeated refusals:
    0.948-0.950 of the cap with 0.25-0.28 % refused, over 120 s at a 20 ms margin)."""
    result = replay(80, 0.5, answers=True, seconds=60.0)
    assert result.refused <= 0.005 * result.sent
    assert result.steady_ratio >= 0.95


def test_wide_jitter_alone_keeps_an_even_sender_below_the_cap() -> None:
    """What `benchmarks/pacing_ceiling.py` shows: at cap 80 the arrival window refuses
    what ± 50 % jitter bunches up, so even a perfectly regular sender at the cap, blind
    to answers, gets refusals and less of the cap accepted, where constant latency
    takes it whole."""
    constant = replay_schedule(80, latency_model(0.0), rate=80.0, seconds=30.0)
    jittery = replay_schedule(80, latency_model(0.5), rate=80.0, seconds=30.0)
    assert constant.refused_share <= 0.01 and constant.steady_ratio >= 0.99
    assert jittery.refused_share > 0.02 and jittery.steady_ratio < 0.97
