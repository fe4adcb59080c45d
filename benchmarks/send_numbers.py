"""Several sending numbers, one worker: `python -m benchmarks.send_throughput --numbers 3`.

N tenants each send from a number of their own (`core.sender.fleet`: one dispatcher per
number in the one worker process), every number at its own cap (`--caps`' first value,
80 by default), against a sandbox process playing the N numbers, each enforcing its cap
(130429 beyond it), at `--latency-ms` (half of it before a send arrives and counts).

1. Aggregate: every tenant queues `cap × seconds` notices at once (at least
   `--min-messages` in all); one `wanotify worker` sends them. Counted by the sandbox
   from its accept times: the aggregate rate while every number had work (the span
   where all numbers are between their 5th and 95th percentile accept) / (N × cap),
   goal ≥ 0.97; each number's most sends in any one-second window / its cap, goal
   ≤ 1.00; duplicates, goal 0. The baseline, measured next by the same worker: tenant
   1's number alone with as many notices; its steady rate / cap.
2. Fairness: with the worker idle, tenant B queues one notice (the baseline); then
   tenant A queues a batch of `cap × seconds` and, once A is sending, B queues one more
   notice. Its wait from being queued to Meta (the sandbox) accepting it, goal ≤ 0.5 s,
   is shown beside the idle baseline measured in the same run.

Also printed: the machine's load average at start and end (2 cores, shared).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from benchmarks._proc import cpu_seconds
from benchmarks.send_throughput import (
    ARRIVAL_SHARE,
    GOAL_RATE,
    notice_payload,
    recipient,
    start_workers,
    steady_rate,
    stop_workers,
)
from core import migrate
from core.control import queue_depth
from core.db import get_engine
from core.numbers.admin import add_number
from core.numbers.secrets import new_key
from core.outbox import OutboundMessage, enqueue_many
from core.sandbox.process import SandboxProcess
from core.sandbox.server import sandbox_numbers
from core.settings import SANDBOX_PHONE_NUMBER_ID, get_settings, load_settings

#: The longest a single notice may wait behind another tenant's batch (seconds).
GOAL_NOTICE_SECONDS = 0.5


@dataclass(frozen=True)
class NumbersResult:
    """One several-numbers run, as the sandbox counted it."""

    numbers: int
    cap: int
    messages: int
    accepted: int
    aggregate_rate: float  # accepts/s while every number had work
    baseline_ratio: float  # one number alone, same worker and run: steady rate / cap
    steady: dict[str, float]  # each number's own steady rate / its cap
    window_ratios: dict[str, float]  # each number's max sends in any 1 s window / cap
    duplicates: int
    throttled: int
    left_unsent: int
    notice_idle_s: float  # baseline: B's notice with nothing else queued
    notice_busy_s: float  # B's notice while A sends a batch
    a_still_pending: int  # A's batch rows not yet accepted when B's notice was
    worker_cpu_seconds: float
    load_at_start: float
    load_at_end: float

    @property
    def aggregate_ratio(self) -> float:
        """Aggregate accepted rate / the sum of the caps."""
        return self.aggregate_rate / (self.numbers * self.cap)

    @property
    def goal_met(self) -> bool:
        """Rate ≥ 0.97 of N caps, no number over its cap, no duplicate, nothing left,
        and B's notice accepted within 0.5 s while A's batch runs."""
        return (
            self.aggregate_ratio >= GOAL_RATE
            and max(self.window_ratios.values()) <= 1.0
            and self.duplicates == 0
            and self.left_unsent == 0
            and self.notice_busy_s <= GOAL_NOTICE_SECONDS
        )


def _tenant(index: int) -> str:
    return f"bench-{index + 1}"


def _message(tenant: str, index: int, run: str) -> OutboundMessage:
    to = recipient(index)
    return OutboundMessage(
        tenant_id=tenant,
        idempotency_key=f"bench:{run}:{tenant}:{index}",
        recipient_phone=to,
        request_payload=notice_payload(to, index),
        template_name="po_notification",
        template_language="es",
    )


def _enqueue(engine: Engine, tenant: str, indexes: range, run: str) -> list[str]:
    ids: list[str] = []
    batch = [_message(tenant, i, run) for i in indexes]
    for start in range(0, len(batch), 2000):
        ids += [r.message.id for r in enqueue_many(batch[start : start + 2000], engine=engine)]
    return ids


def _enqueue_all(engine: Engine, tenants: list[str], count: int, run: str) -> None:
    """`count` notices for each tenant, interleaved, in one transaction."""
    batch = [_message(tenant, i, run) for i in range(count) for tenant in tenants]
    enqueue_many(batch, engine=engine)


def _unsettled(engine: Engine) -> int:
    depth = queue_depth(engine)
    return depth.pending + depth.sending


def _wait(engine: Engine, procs: list[Any], until: float, log_path: Path) -> None:
    while _unsettled(engine) and time.monotonic() < until:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("the worker exited early:\n" + log_path.read_text()[-3000:])
        time.sleep(0.1)


def _accepted_at(sandbox: SandboxProcess, message_id: str, until: float) -> float:
    """When the sandbox accepted our message `message_id` (epoch seconds; waits)."""
    while time.monotonic() < until:
        found = sandbox.messages(biz_opaque=message_id)
        if found:
            return float(found[0]["accepted_at"])
        time.sleep(0.02)
    raise RuntimeError(f"message {message_id} was never accepted")


def _aggregate(times_by_number: dict[str, list[float]]) -> float:
    """Accepts per second over the span where every number was between its 5th and 95th
    percentile accept (all had work), counting every number's accepts in it."""
    lows, highs = [], []
    for times in times_by_number.values():
        lows.append(times[int(len(times) * 0.05)])
        highs.append(times[int(len(times) * 0.95)])
    start, end = max(lows), min(highs)
    if end <= start:
        return 0.0
    inside = sum(1 for times in times_by_number.values() for t in times if start <= t <= end)
    return inside / (end - start)


def run_numbers(
    numbers: int, cap: int, seconds: float, latency_ms: float, min_messages: int
) -> NumbersResult:
    """Both phases on a fresh SQLite database and a sandbox playing `numbers` numbers."""
    extra = sandbox_numbers(numbers - 1, mps=cap)
    ids = [SANDBOX_PHONE_NUMBER_ID, *(n["phone_number_id"] for n in extra)]
    per_number = max(int(cap * seconds), -(-min_messages // numbers))
    run = str(time.time_ns())
    os.environ.update(
        WANOTIFY_MODE="sandbox",
        WANOTIFY_SECRET_KEY=new_key(),
        WANOTIFY_DEFAULT_TENANT=_tenant(0),  # the environment's number is tenant 1's
        WHATSAPP_MAX_MPS=str(cap),
    )
    get_settings.cache_clear()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'numbers.db'}"
        migrate.upgrade(url)
        engine = get_engine(url)
        settings = load_settings()
        for index, number in enumerate(extra, start=1):
            add_number(
                engine,
                settings,
                tenant_id=_tenant(index),
                phone_number_id=number["phone_number_id"],
                access_token=number["access_token"],
                max_mps=cap,
            )
        with SandboxProcess(
            latency_ms=latency_ms,
            latency_arrival_share=ARRIVAL_SHARE,
            mps=cap,
            numbers=extra,
            webhooks_enabled=False,
        ) as sandbox:
            log_path = Path(tmp) / "worker.log"
            log_file = log_path.open("w")
            load_at_start = os.getloadavg()[0]
            # phase 1: every tenant's notices queued, then the worker starts
            _enqueue_all(engine, [_tenant(i) for i in range(numbers)], per_number, run)
            procs = start_workers(1, url, sandbox.url, cap, log_file)
            try:
                _wait(engine, procs, time.monotonic() + seconds * 6 + 60, log_path)
                phase1 = sandbox.stats(recipients=False)
                # phase 0, the baseline: tenant 1's number alone, the same worker
                far = range(20 * per_number, 21 * per_number)  # own recipients (pair limit)
                alone = set(_enqueue(engine, _tenant(0), far, "alone" + run))
                _wait(engine, procs, time.monotonic() + seconds * 6 + 60, log_path)
                messages = sandbox.messages(limit=(numbers + 1) * per_number + 1000)
                # phase 2: B's notice alone (baseline), then during A's batch
                offset = numbers * per_number
                queued = time.time()
                [idle] = _enqueue(engine, _tenant(1), range(offset, offset + 1), run)
                notice_idle = _accepted_at(sandbox, idle, time.monotonic() + 30) - queued
                started = sandbox.stats(recipients=False)["numbers"][ids[0]]["accepted"]
                _enqueue(engine, _tenant(0), range(offset + 1, offset + 1 + per_number), run)
                while (  # A is well under way: a second of its sends went out
                    sandbox.stats(recipients=False)["numbers"][ids[0]]["accepted"] < started + cap
                ):
                    time.sleep(0.05)
                queued = time.time()
                [busy] = _enqueue(
                    engine, _tenant(1), range(offset + 2 + per_number, offset + 3 + per_number), run
                )
                accepted = _accepted_at(sandbox, busy, time.monotonic() + 30)
                notice_busy = accepted - queued
                _wait(engine, procs, time.monotonic() + seconds * 6 + 60, log_path)
                after = sum(
                    1
                    for m in sandbox.messages(phone_number_id=ids[0], limit=10 * per_number)
                    if float(m["accepted_at"]) > accepted
                )
            finally:
                cpu = sum(cpu_seconds(p.pid) for p in procs)
                stop_workers(procs)
                log_file.close()
            final = sandbox.stats(recipients=False)
        left = _unsettled(engine)
        engine.dispose()
    times: dict[str, list[float]] = {ident: [] for ident in ids}
    baseline: list[float] = []
    for message in messages:
        at = float(message["accepted_at"])
        if message["biz_opaque_callback_data"] in alone:
            baseline.append(at)
        else:
            times[message["phone_number_id"]].append(at)
    for values in (*times.values(), baseline):
        values.sort()
    return NumbersResult(
        numbers=numbers,
        cap=cap,
        messages=numbers * per_number,
        accepted=int(phase1["accepted"]),
        baseline_ratio=steady_rate(baseline) / cap,
        aggregate_rate=_aggregate(times),
        steady={ident: steady_rate(times[ident]) / cap for ident in ids},
        window_ratios={ident: int(final["numbers"][ident]["max_in_window"]) / cap for ident in ids},
        duplicates=sum(int(d["count"]) - 1 for d in final["duplicates"]),
        throttled=int(final["rejected"].get("130429", 0)),
        left_unsent=left,
        notice_idle_s=notice_idle,
        notice_busy_s=notice_busy,
        a_still_pending=after,
        worker_cpu_seconds=cpu,
        load_at_start=load_at_start,
        load_at_end=os.getloadavg()[0],
    )


def main_numbers(args: argparse.Namespace) -> int:
    """Run the several-numbers case and print it; exit 1 when a goal is missed."""
    cap = int(str(args.caps).split(",")[0])
    print(
        f"send throughput, {args.numbers} numbers at cap {cap} each, one worker process, "
        f"SQLite file, sandbox latency {args.latency_ms:g} ms"
    )
    result = run_numbers(args.numbers, cap, args.seconds, args.latency_ms, args.min_messages)
    goal = result.numbers * cap
    print(
        f"aggregate: {result.accepted} of {result.messages} accepted, "
        f"{result.aggregate_rate:.1f} msg/s = {result.aggregate_ratio:.3f} of {goal} "
        f"(goal >= {GOAL_RATE}, vs goal {result.aggregate_ratio / GOAL_RATE:.3f}; "
        f"baseline: one number alone {result.baseline_ratio:.3f} of {cap}, "
        f"aggregate vs baseline {result.aggregate_ratio / max(1e-9, result.baseline_ratio):.3f}); "
        f"dups {result.duplicates}; 130429 {result.throttled}; left {result.left_unsent}; "
        f"worker cpu {1000 * result.worker_cpu_seconds / max(1, result.accepted):.2f} ms/msg"
    )
    for ident in result.steady:
        print(
            f"  number {ident}: steady rate/cap {result.steady[ident]:.3f}, "
            f"max in any 1 s window/cap {result.window_ratios[ident]:.3f} (goal <= 1.00)"
        )
    versus_idle = result.notice_busy_s / max(1e-9, result.notice_idle_s)
    print(
        f"notice on B while A sends a batch: accepted {result.notice_busy_s:.3f} s after "
        f"it was queued (goal <= {GOAL_NOTICE_SECONDS}, vs goal "
        f"{result.notice_busy_s / GOAL_NOTICE_SECONDS:.2f}); baseline with nothing queued "
        f"{result.notice_idle_s:.3f} s (ratio {versus_idle:.2f}); "
        f"{result.a_still_pending} of A's batch went out after it"
    )
    print(
        f"load: {result.load_at_start:.1f}-{result.load_at_end:.1f} (1-min average, 2 cores, "
        f"shared); {'met' if result.goal_met else 'MISSED'}"
    )
    return 0 if result.goal_met else 1
