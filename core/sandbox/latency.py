"""How long the sandbox takes over a send: a network-like latency with spread and a tail.

Each send draws its latency: `latency_ms` × a uniform factor in [1 - spread, 1 + spread],
or, with probability `latency_tail_rate`, a slow one drawn uniformly from
`latency_tail_min_ms`..`latency_tail_max_ms`. A share of it (`latency_arrival_share`)
passes before the request *arrives* - the way there, when Meta counts it against the
throughput cap and the pair limit - and the rest before the answer comes back. A sender
that paces its starts evenly therefore sees them counted at uneven arrival times, as on
a real network. The generator is seeded (the sandbox's `seed`), so a run can be repeated.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from core.sandbox.config import SandboxConfig


@dataclass(frozen=True, slots=True)
class Delay:
    """One send's latency, split around its arrival (seconds)."""

    before_arrival: float
    after_arrival: float

    @property
    def total(self) -> float:
        """The whole round trip the client waits."""
        return self.before_arrival + self.after_arrival


NO_DELAY = Delay(0.0, 0.0)


def draw_delay(config: SandboxConfig, rng: random.Random) -> Delay:
    """One send's delay under `config` (constant when spread and tail are 0).

    Draws from `rng` only when the configuration varies, so a constant-latency sandbox
    consumes no random numbers (its other seeded choices stay as they were).
    """
    base = config.latency_ms / 1000.0
    if config.latency_tail_rate > 0 and rng.random() < config.latency_tail_rate:
        total = rng.uniform(config.latency_tail_min_ms, config.latency_tail_max_ms) / 1000.0
    elif config.latency_spread > 0 and base > 0:
        total = base * rng.uniform(1.0 - config.latency_spread, 1.0 + config.latency_spread)
    else:
        total = base
    if total <= 0:
        return NO_DELAY
    before = total * config.latency_arrival_share
    return Delay(before, total - before)
