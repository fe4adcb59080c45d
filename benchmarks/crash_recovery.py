"""Crash recovery: a `wanotify worker` killed with SIGKILL mid-batch, then restarted.

    python -m benchmarks.crash_recovery [--messages 1000] [--cap 80] [--kill-at 6]
        [--latency-ms 150] [--latency-spread 0.2] [--database-url postgresql://...]

A fresh database (a SQLite file by default; with `--database-url`, that database,
migrated, with earlier benchmark rows removed: use a dedicated one) gets `--messages`
pending PO notices to distinct suppliers. One real worker sends them to a sandbox
process (latency `--latency-ms` ± `--latency-spread`) and is killed with SIGKILL
`--kill-at` seconds after its first request reached the sandbox. Then, as the restarted
worker's first recovery pass would (core.sender.recovery, run here with the clock past
the lease and the grace period), every row the dead worker held is settled, and a new
worker sends the rest.

Reported, from the sandbox's own record of the requests it received (our id is in each
request's `biz_opaque_callback_data`) and from the rows:

- requests the sandbox saw before the kill, and how many of their answers the dead
  worker had recorded (the rest: answer lost, outcome unknown to us);
- rows left `sending`: marked started (their request had started) or not;
- after recovery: rows back to `pending` (sent again automatically) and rows that need
  attention (a person decides, or a status webhook settles them);
- after the restart: duplicates at the sandbox (goal 0), rows not sent (goal 0 beyond
  those needing attention).

Goal: needs-attention rows <= requests whose answer was lost + one pacing slice
(ceil(cap / 10), a kill between a slice's mark and its requests), 0 duplicates.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, select

from benchmarks.send_throughput import TENANT, prepare_database, unsettled
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.types import utcnow
from core.sandbox.process import SandboxProcess
from core.sender.recovery import recover_stale

ROOT = Path(__file__).resolve().parents[1]
#: Lease and grace of the restarted worker (seconds): short, so the run ends quickly;
#: recovery itself is run with the clock past both, as after a real restart.
RESTART_LEASE = 2.0
REACHED_META = {
    MessageStatus.ACCEPTED,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
}


@dataclass(frozen=True)
class Result:
    """What one crash left and what recovery made of it."""

    messages: int
    cap: int
    sandbox_saw: int  # requests received before the kill (and still arriving then)
    recorded: int  # of those, answers the dead worker recorded
    sending_started: int  # rows left `sending` with their request marked started
    sending_unstarted: int  # rows left `sending` never requested (claimed only)
    back_to_pending: int  # recovery: sent again automatically
    need_attention: int  # recovery: a person (or a webhook) decides
    attention_not_at_sandbox: int  # of those, never reached the sandbox
    duplicates: int  # after the restart
    unsent_after_restart: int  # rows neither reached Meta nor needing attention

    @property
    def answer_lost(self) -> int:
        """Requests that had started whose outcome the dead worker never recorded."""
        return self.sandbox_saw - self.recorded

    @property
    def goal_met(self) -> bool:
        """Only started requests wait for a person (one slice of slack), nothing twice."""
        slack = math.ceil(self.cap / 10)
        return (
            self.need_attention <= self.answer_lost + slack
            and self.attention_not_at_sandbox <= slack
            and self.duplicates == 0
            and self.unsent_after_restart == 0
        )


def start_worker(
    url: str, sandbox_url: str, cap: int, name: str, log: IO[str]
) -> subprocess.Popen[str]:
    """A real `wanotify worker` on `url`, sending to the sandbox."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WHATSAPP_", "SANDBOX_", "DATABASE_URL", "WANOTIFY_"))
    }
    env.update(
        DATABASE_URL=url,
        WHATSAPP_API_BASE_URL=sandbox_url,
        WANOTIFY_MODE="sandbox",
        WHATSAPP_MAX_MPS=str(cap),
        WHATSAPP_CLAIM_LEASE_SECONDS=str(RESTART_LEASE),
        WHATSAPP_INFLIGHT_GRACE_SECONDS=str(RESTART_LEASE),
        WANOTIFY_LOG_LEVEL=os.environ.get("WANOTIFY_LOG_LEVEL", "WARNING"),
        PYTHONPATH=str(ROOT),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "core.cli", "worker", "--id", name],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )


def sandbox_ids(sandbox: SandboxProcess) -> tuple[set[str], int]:
    """Our ids the sandbox received, and how many it received more than once."""
    stats = sandbox.stats(recipients=False)
    seen: set[str] = set()
    while len(seen) < stats["accepted"]:
        page = sandbox.messages(offset=len(seen), limit=1000)
        if not page:
            break
        seen |= {m["biz_opaque_callback_data"] for m in page}
    return seen, len(stats["duplicates"])


def snapshot(engine: Engine) -> dict[str, tuple[str, bool]]:
    """Each benchmark row's (status, marked started)."""
    M = WhatsAppMessage.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        found = conn.execute(
            select(M.c.id, M.c.status, M.c.request_started_at).where(M.c.tenant_id == TENANT)
        ).all()
    return {r.id: (str(r.status), r.request_started_at is not None) for r in found}


def run(args: argparse.Namespace) -> Result:
    """Send, kill, recover, restart; count at each step."""
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'crash.db'}"
        engine = prepare_database(url, args.messages, run=f"crash-{time.time_ns()}")
        # a seed of its own: wamids from an earlier run's sandbox must not collide with
        # rows another run left in a reused database (they are unique, as Meta's are)
        seed = time.time_ns() % 1_000_000_007
        with SandboxProcess(
            latency_ms=args.latency_ms, mps=10_000, webhooks_enabled=False, seed=seed
        ) as sb:
            if args.latency_spread:
                sb.configure(latency_spread=args.latency_spread)
            log_path = Path(tmp) / "workers.log"
            with log_path.open("w") as log:
                first = start_worker(url, sb.url, args.cap, "crash-1", log)
                # the clock starts at the first request (a loaded machine may take
                # seconds to start a worker), as an operator counts "six seconds in"
                deadline = time.monotonic() + 120
                while not sb.stats(recipients=False)["accepted"]:
                    if first.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the worker sent nothing:\n" + log_path.read_text())
                    time.sleep(0.02)
                time.sleep(args.kill_at)
                if first.poll() is not None:
                    raise RuntimeError("the worker exited early:\n" + log_path.read_text())
                first.send_signal(signal.SIGKILL)
                first.wait()
                # requests already on their way arrive within one latency
                time.sleep(args.latency_ms * (1 + args.latency_spread) / 1000 + 0.3)
                seen, _ = sandbox_ids(sb)
                at_kill = snapshot(engine)
                report = recover_stale(
                    engine,
                    lease_seconds=RESTART_LEASE,
                    grace_seconds=RESTART_LEASE,
                    now=utcnow() + timedelta(seconds=RESTART_LEASE + 1),
                )
                after = snapshot(engine)
                attention = {i for i, (s, _) in after.items() if s == MessageStatus.NEEDS_ATTENTION}
                second = start_worker(url, sb.url, args.cap, "crash-2", log)
                deadline = time.monotonic() + args.messages / args.cap * 3 + 60
                while unsettled(engine) and time.monotonic() < deadline:
                    if second.poll() is not None:
                        raise RuntimeError("the worker exited early:\n" + log_path.read_text())
                    time.sleep(0.2)
                second.send_signal(signal.SIGTERM)
                second.wait(timeout=30)
            _, duplicates = sandbox_ids(sb)
        final = snapshot(engine)
    kinds = Counter(
        ("started" if marked else "unstarted")
        for status, marked in at_kill.values()
        if status == MessageStatus.SENDING
    )
    return Result(
        messages=args.messages,
        cap=args.cap,
        sandbox_saw=len(seen),
        recorded=sum(1 for i, (s, _) in at_kill.items() if s in REACHED_META),
        sending_started=kinds["started"],
        sending_unstarted=kinds["unstarted"],
        back_to_pending=report.returned,
        need_attention=report.needs_attention,
        attention_not_at_sandbox=len(attention - seen),
        duplicates=duplicates,
        unsent_after_restart=sum(
            1 for i, (s, _) in final.items() if s not in REACHED_META and i not in attention
        ),
    )


def main() -> int:
    """Run once and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--cap", type=int, default=80, help="WHATSAPP_MAX_MPS")
    parser.add_argument(
        "--kill-at", type=float, default=6.0, help="seconds after the first request"
    )
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--latency-spread", type=float, default=0.2, help="± this fraction")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    result = run(args)
    print(
        f"crash recovery: {result.messages} messages, cap {result.cap}/s, killed (SIGKILL) "
        f"at {args.kill_at:g} s, sandbox latency {args.latency_ms:g} ms "
        f"± {args.latency_spread:.0%}, {'SQLite file' if not args.database_url else 'database URL'}"
    )
    print(f"  requests the sandbox saw before the kill   {result.sandbox_saw}")
    print(f"    answers the dead worker had recorded     {result.recorded}")
    print(f"    answers lost (outcome unknown to us)     {result.answer_lost}")
    print(f"  rows left sending, request started         {result.sending_started}")
    print(f"  rows left sending, never requested         {result.sending_unstarted}")
    print(f"  after recovery: back to pending            {result.back_to_pending}")
    print(f"  after recovery: wait for a person/webhook  {result.need_attention}")
    print(f"    of which never reached the sandbox       {result.attention_not_at_sandbox}")
    print(f"  after the restart: duplicates              {result.duplicates}")
    print(f"  after the restart: not sent (not asked)    {result.unsent_after_restart}")
    print(f"  goal {'met' if result.goal_met else 'MISSED'}")
    return 0 if result.goal_met else 1


if __name__ == "__main__":
    sys.exit(main())
