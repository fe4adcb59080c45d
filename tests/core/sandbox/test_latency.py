"""The sandbox's latency model: spread, tail, seeded draws, and the cap checked on arrival."""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest

from core.sandbox import SandboxServer
from core.sandbox.config import ConfigError, SandboxConfig
from core.sandbox.latency import NO_DELAY, draw_delay
from tests.core.sandbox.helpers import MESSAGES_PATH, client, error_code, po_notification


def test_constant_latency_is_split_at_arrival_and_draws_nothing() -> None:
    config = SandboxConfig(latency_ms=150, latency_arrival_share=0.25)
    rng = random.Random(3)
    state = rng.getstate()
    delay = draw_delay(config, rng)
    assert delay.before_arrival == pytest.approx(0.0375)
    assert delay.after_arrival == pytest.approx(0.1125)
    assert delay.total == pytest.approx(0.150)
    assert rng.getstate() == state  # a constant sandbox keeps its seeded choices as they were
    assert draw_delay(SandboxConfig(), rng) == NO_DELAY


def test_spread_draws_uniformly_within_the_fraction() -> None:
    config = SandboxConfig(latency_ms=150, latency_spread=0.5, latency_arrival_share=0.5)
    rng = random.Random(1)
    totals = [draw_delay(config, rng).total for _ in range(20_000)]
    assert min(totals) >= 0.075 and max(totals) <= 0.225
    assert min(totals) < 0.077 and max(totals) > 0.223  # the whole range is used
    assert sum(totals) / len(totals) == pytest.approx(0.150, abs=0.002)
    lower_quarter = sum(1 for t in totals if t < 0.1125) / len(totals)
    assert lower_quarter == pytest.approx(0.25, abs=0.02)  # uniform, not clustered


def test_tail_takes_its_share_of_sends_in_its_range() -> None:
    config = SandboxConfig(
        latency_ms=150,
        latency_spread=0.2,
        latency_tail_rate=0.005,
        latency_tail_min_ms=1000,
        latency_tail_max_ms=2000,
    )
    rng = random.Random(2)
    totals = [draw_delay(config, rng).total for _ in range(100_000)]
    slow = [t for t in totals if t > 0.5]
    assert len(slow) / len(totals) == pytest.approx(0.005, abs=0.001)
    assert all(1.0 <= t <= 2.0 for t in slow)
    assert all(0.12 <= t <= 0.18 for t in totals if t <= 0.5)


def test_the_same_seed_draws_the_same_latencies() -> None:
    config = SandboxConfig(latency_ms=150, latency_spread=0.5, latency_tail_rate=0.1)
    rng_a, rng_b = random.Random(4), random.Random(4)
    assert [draw_delay(config, rng_a) for _ in range(50)] == [
        draw_delay(config, rng_b) for _ in range(50)
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"latency_spread": 1.0},
        {"latency_spread": -0.1},
        {"latency_spread": "0.2"},
        {"latency_tail_rate": 1.5},
        {"latency_tail_rate": True},
        {"latency_tail_min_ms": 3000},  # above the default max of 2000
        {"latency_tail_max_ms": 500},  # below the default min of 1000
        {"latency_arrival_share": 1.01},
        {"latency_arrival_share": None},
    ],
)
def test_a_bad_latency_model_is_refused_at_runtime_and_at_construction(
    changes: dict[str, object],
) -> None:
    with pytest.raises(ConfigError):
        SandboxConfig().updated(changes)
    with pytest.raises(ConfigError):
        SandboxConfig(**changes)  # type: ignore[arg-type]


def test_the_latency_model_is_configurable_over_http(sandbox: SandboxServer) -> None:
    updated = sandbox.configure(
        latency_spread=0.2,
        latency_tail_rate=0.005,
        latency_tail_min_ms=1000,
        latency_tail_max_ms=1500,
        latency_arrival_share=0.5,
    )
    assert updated["latency_spread"] == 0.2 and updated["latency_tail_max_ms"] == 1500
    with pytest.raises(ValueError, match="latency_tail_min_ms"):
        sandbox.configure(latency_tail_min_ms=1600)


def test_the_cap_is_checked_when_a_send_arrives_not_when_it_was_sent(
    sandbox: SandboxServer,
) -> None:
    # seed 1 draws a slow latency (300-400 ms, all of it before arrival) for whichever
    # send the sandbox reads first and none for the second: sent together, the fast one
    # arrives first and takes the window's only slot; the slow one, arriving within the
    # same second, is refused with 130429 - counted where it arrives, as Meta counts
    sandbox.reset(seed=1)
    sandbox.configure(
        mps=1,
        latency_ms=0,
        latency_tail_rate=0.5,
        latency_tail_min_ms=300,
        latency_tail_max_ms=400,
        latency_arrival_share=1.0,
    )
    answers: list[tuple[float, httpx.Response]] = []
    start = threading.Barrier(2)

    def send(to: str) -> None:
        with client(sandbox.url) as http:
            start.wait()
            began = time.monotonic()
            response = http.post(MESSAGES_PATH, json=po_notification(to, opaque=to))
            answers.append((time.monotonic() - began, response))

    threads = [threading.Thread(target=send, args=(to,)) for to in ("+34612345601", "+34612345602")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    (_, fast), (slow_took, slow) = sorted(answers, key=lambda pair: pair[0])
    assert slow_took >= 0.3  # the slow one was the one still on its way
    assert fast.status_code == 200
    assert error_code(slow) == 130429
    stats = sandbox.stats()
    assert stats["accepted"] == 1 and stats["rejected"] == {"130429": 1}
