"""Slice mark: does the database write that marks each pacing slice cost send rate?

    python -m benchmarks.slice_mark [--caps 80,1000] [--mark-ms 0,20] [--seconds 5]

Issue 16 has the dispatcher mark each pacing slice `request_started_at` (one UPDATE)
before the slice's requests leave; issue 13 wants the rate at ≥ 0.97 of the cap all the
same. This isolates the dispatcher's pacing from HTTP and from the sandbox: the real
dispatcher and limiter drain `cap × seconds` PO notices from a SQLite file through an
in-process client that answers after 150 ms and costs no CPU, while the mark is slowed
by `--mark-ms` (a loaded database or disk). Measured: the limiter's own dates of the
requests as they were written, per second over the middle 90 % of the run, / cap.

Each cap is run with a mark of 0 ms added (the baseline, same run) and with every other
`--mark-ms`; printed: writes/cap, against the goal (0.97) and against the baseline, and
the machine's load (2 cores, shared: the figures move with it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from benchmarks.send_throughput import prepare_database, steady_rate
from core.sender import SlidingWindowLimiter, drain, store
from core.sender.dispatcher import DispatcherOptions, MessageClient
from core.settings import load_settings

GOAL_RATE = 0.97
ANSWER_SECONDS = 0.15


@dataclass
class _Answer:
    """What the dispatcher reads from a successful send."""

    wamid: str
    wa_id: str | None = None
    message_status: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


class QuietClient:
    """Answers every send after ANSWER_SECONDS, with no network and next to no CPU."""

    def __init__(self) -> None:
        self.sent = 0

    async def send_message(self, payload: dict[str, Any]) -> _Answer:
        """Accept `payload` after the round trip."""
        await asyncio.sleep(ANSWER_SECONDS)
        self.sent += 1
        return _Answer(wamid=f"wamid.bench.{self.sent}")


class DatingLimiter(SlidingWindowLimiter):
    """The product's limiter, keeping the moment of every send it dated."""

    def __init__(self, cap: float) -> None:
        super().__init__(cap, margin=0.02)
        self.dates: list[float] = []

    def sent(self, *, awaits_answer: bool = False) -> float:
        """Date a send (as the product does) and remember when."""
        at = super().sent(awaits_answer=awaits_answer)
        self.dates.append(time.monotonic())
        return at


@asynccontextmanager
async def quiet_client() -> AsyncIterator[MessageClient]:
    """The client factory the dispatcher opens."""
    yield QuietClient()


def slowed_mark(delay: float) -> Any:
    """`store.mark_started`, `delay` seconds slower (the database under load)."""
    real = store.mark_started

    def mark(engine: Engine, ids: Sequence[str], worker_id: str) -> set[str]:
        time.sleep(delay)
        return real(engine, ids, worker_id)

    return mark


def run_once(cap: int, mark_ms: float, seconds: float) -> float:
    """Drain `cap × seconds` notices with the mark slowed by `mark_ms`; writes/s / cap."""
    real = store.mark_started
    store.mark_started = slowed_mark(mark_ms / 1000)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'mark.db'}"
            engine = prepare_database(url, int(cap * seconds), run=f"mark-{time.time_ns()}")
            limiter = DatingLimiter(cap)
            report = asyncio.run(
                drain(
                    load_settings(),
                    engine,
                    timeout=seconds * 6 + 60,
                    limiter=limiter,
                    client_factory=quiet_client,
                    options=DispatcherOptions(mps=cap),
                )
            )
            engine.dispose()
    finally:
        store.mark_started = real
    if report.accepted < int(cap * seconds):
        raise RuntimeError(f"only {report.accepted} of {int(cap * seconds)} sent")
    return steady_rate(sorted(limiter.dates)) / cap


def main(argv: list[str] | None = None) -> int:
    """Print writes/cap per cap and mark delay; exit 1 when a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caps", default="80,1000", help="comma-separated caps (msg/s)")
    parser.add_argument("--mark-ms", default="0,20", help="mark delays to add (0: baseline)")
    parser.add_argument("--seconds", type=float, default=5.0, help="work per run, in seconds")
    args = parser.parse_args(argv)
    os.environ.setdefault("WANOTIFY_MODE", "sandbox")
    caps = [int(c) for c in args.caps.split(",") if c.strip()]
    marks = sorted({0.0, *(float(m) for m in args.mark_ms.split(",") if m.strip())})
    print("slice mark: the real dispatcher, a quiet in-process client, SQLite file")
    print(f"{'cap':>6} {'mark ms':>8} {'writes/cap':>10} {'vs goal':>8} {'vs 0 ms':>8} {'load':>9}")
    ok = True
    for cap in caps:
        baseline = 0.0
        for mark in marks:
            load_before = os.getloadavg()[0]
            ratio = run_once(cap, mark, args.seconds)
            baseline = baseline or ratio
            ok = ok and ratio >= GOAL_RATE
            print(
                f"{cap:>6} {mark:>8g} {ratio:>10.3f} {ratio / GOAL_RATE:>8.3f} "
                f"{ratio / baseline:>8.3f} {load_before:>4.1f}-{os.getloadavg()[0]:<4.1f}",
                flush=True,
            )
    print(
        "writes/cap: requests written per second (middle 90 % of the run) / cap, goal >= "
        f"{GOAL_RATE}; vs goal: / {GOAL_RATE}; vs 0 ms: / the same cap's run with no "
        "delay added to the mark (baseline, this run); load: 1-min load average before "
        "and after (2 cores, shared)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
