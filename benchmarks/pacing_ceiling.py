"""How much of the cap any pacing can get accepted under the sandbox's jitter (a replay).

    python -m benchmarks.pacing_ceiling [--caps 80,1000] [--spreads 0,0.2,0.5] [--seeds 3]

Issue 13 asks for a steady rate >= 0.97 of the cap with <= 0.5 % of sends refused
(130429), the cap checked on *arrival* by a sliding one-second window, with the latency
150 ms ± 20 % and ± 50 % (plus 0.5 % of sends taking 1-2 s). `send_throughput` measures
the product against the real sandbox; this replays the same models on a fake clock
(`core.sandbox.pacing_replay`: the sandbox's latency draw and its arrival window, no
wall clock, so the figures depend on the seed only, not on the machine) to separate
what the pacing loses from what the jitter itself leaves to any sender:

- the dispatcher's limiter as the worker runs it, and the same limiter tuned more boldly (no
  margin, the median arrival assumed always: more sends, more refusals) and more
  carefully (every new send assumed to arrive as early as any does: no refusals);
- a blind, perfectly even sender at fixed rates from 0.94 to 1.02 of the cap.

For each cap and latency it prints each sender's sends/cap, refused share and steady
accepted rate/cap (middle 90 % of accepts), and the best steady rate any of them reached
with refusals within 0.5 %, against the goal (0.97) and against the same cap's
constant-latency best (the baseline). Beside them, `jitter_bound`: what even a sender
that knows where every earlier send arrived can expect, without the tail.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from core.sandbox.pacing_replay import (
    FakeClock,
    Replay,
    default_limiter,
    latency_model,
    replay_limiter,
    replay_schedule,
)
from core.sender.ratelimit import SlidingWindowLimiter

GOAL_RATE = 0.97
GOAL_REFUSED = 0.005
SCHEDULE_RATES = (0.94, 0.96, 0.98, 1.0, 1.02)


@dataclass(frozen=True)
class Row:
    """One sender's figures, averaged over the seeds."""

    sender: str
    sent_per_cap: float
    refused_share: float
    steady: float

    @property
    def within_refusals(self) -> bool:
        """Refused no more than the goal allows."""
        return self.refused_share <= GOAL_REFUSED


def _limiter(
    margin: float, arrival_quantile: float, arrival_quantile_min: float
) -> Callable[[int, FakeClock], SlidingWindowLimiter]:
    """The dispatcher's limiter with other settings than it ships with."""

    def make(cap: int, clock: FakeClock) -> SlidingWindowLimiter:
        return SlidingWindowLimiter(
            cap,
            margin=margin,
            arrival_quantile=arrival_quantile,
            arrival_quantile_min=arrival_quantile_min,
            clock=clock,
        )

    return make


LIMITERS: dict[str, Callable[[int, FakeClock], SlidingWindowLimiter]] = {
    "limiter as shipped": default_limiter,
    "limiter, bold": _limiter(margin=0.0, arrival_quantile=0.5, arrival_quantile_min=0.5),
    "limiter, careful": _limiter(margin=0.0, arrival_quantile=0.0, arrival_quantile_min=0.0),
}


def _average(name: str, runs: list[Replay], seconds: float, cap: int) -> Row:
    return Row(
        sender=name,
        sent_per_cap=statistics.mean(r.sent for r in runs) / seconds / cap,
        refused_share=statistics.mean(r.refused_share for r in runs),
        steady=statistics.mean(r.steady_ratio for r in runs),
    )


def measure(cap: int, spread: float, seeds: int) -> list[Row]:
    """Every sender's figures for one cap and latency spread."""
    seconds = 60.0 if cap <= 100 else 8.0  # about the same number of sends' worth of noise
    model = latency_model(spread)
    rows = [
        _average(
            name,
            [
                replay_limiter(cap, model, seconds=seconds, seed=seed, make_limiter=make)
                for seed in range(1, seeds + 1)
            ],
            seconds,
            cap,
        )
        for name, make in LIMITERS.items()
    ]
    for rate in SCHEDULE_RATES:
        runs = [
            replay_schedule(cap, model, rate=rate * cap, seconds=seconds, seed=seed)
            for seed in range(1, seeds + 1)
        ]
        rows.append(_average(f"even, blind at {rate:.2f}", runs, seconds, cap))
    return rows


def jitter_bound(spread: float, refused: float = GOAL_REFUSED) -> float:
    """The steady rate/cap a sender can expect at best under the model without its tail,
    even knowing exactly where every earlier send arrived (an answer tells it: half the
    round trip), so that at most `refused` of its sends arrive in a full window.

    A send's way there, d, is uniform in [lo, hi] (150 ms ± spread, halved). For the
    window to have room when it arrives, the send must leave assuming it arrives as
    early as the `refused` quantile q of d; any sooner and it may be refused. It then
    arrives E[d] - q later on average, and its place in Meta's window stays empty that
    long: each of the cap's places is used once per 1 + E[d] - q seconds.
    ± 50 %: 1 / (1 + 0.075 - 0.0379) = 0.964; ± 20 %: 0.985; constant: 1.
    """
    model = latency_model(spread)
    one_way = model.latency_ms / 1000.0 * model.latency_arrival_share
    lo, hi = one_way * (1.0 - spread), one_way * (1.0 + spread)
    quantile = lo + refused * (hi - lo)
    return 1.0 / (1.0 + (lo + hi) / 2.0 - quantile)


def best_within(rows: list[Row]) -> Row | None:
    """The highest steady rate among senders refused no more than the goal allows."""
    allowed = [row for row in rows if row.within_refusals]
    return max(allowed, key=lambda row: row.steady) if allowed else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--caps", default="80,1000")
    parser.add_argument("--spreads", default="0,0.2,0.5")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print("pacing ceiling: replayed on a fake clock (the sandbox's latency and arrival window)")
    for cap in (int(c) for c in args.caps.split(",")):
        baseline: float | None = None
        for spread in (float(s) for s in args.spreads.split(",")):
            rows = measure(cap, spread, args.seeds)
            label = "constant" if spread == 0 else f"±{spread:.0%} + 0.5% tail"
            print(f"\ncap {cap}, latency 150 ms {label}:")
            print(f"  {'sender':28} {'sent/cap':>9} {'refused':>8} {'steady/cap':>11}")
            for row in rows:
                print(
                    f"  {row.sender:28} {row.sent_per_cap:9.3f} "
                    f"{row.refused_share:8.2%} {row.steady:11.3f}"
                )
            print(
                f"  at best, knowing every earlier arrival (no tail): {jitter_bound(spread):.3f}"
            )
            best = best_within(rows)
            if best is None:
                print("  no sender kept refusals within 0.5 %")
                continue
            if spread == 0:
                baseline = best.steady
            versus = f", vs constant latency {best.steady / baseline:.3f}" if baseline else ""
            verdict = "reachable" if best.steady >= GOAL_RATE else "NOT reached by any sender"
            print(
                f"  best within 0.5 % refused: {best.steady:.3f} ({best.sender}); "
                f"vs goal {best.steady / GOAL_RATE:.3f}{versus}: 0.97 {verdict}"
            )


if __name__ == "__main__":
    main()
