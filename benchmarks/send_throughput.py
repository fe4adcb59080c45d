"""Send throughput: real `wanotify worker` processes against the sandbox at 150 ms latency.

    python -m benchmarks.send_throughput [--caps 80,1000] [--seconds 8] [--numbers 3]
        [--min-messages 2000] [--database-url postgresql://...] [--workers N]
        [--latency-ms 150] [--spreads 0,0.2,0.5] [--tail-rate 0.005]

For each cap: a fresh database (a SQLite file by default; with `--database-url`, that
database, migrated, with earlier benchmark rows removed: use a dedicated one) gets
`cap × seconds` pending PO notices to distinct suppliers (at least `--min-messages`: issue 13
measured 2,000 rows at cap 80, and 0.5 % refused is 3 sends of 640); `--workers` real
worker processes (the product's `wanotify worker`, sharing one throughput budget through
the database) send them to a sandbox (a process of its own, so this script's polling
never delays it) enforcing the cap itself (130429 beyond it). The notices are held (due
tomorrow) until every worker holds its share of the cap, as when a batch reaches workers
that are already running; how long the workers took to share it is printed (`join s`):
a worker that joins a running one takes about two seconds to get its share
(`core.sender.budget`), and an 8 s case that counted that join read 0.89-0.91 of the cap
with two workers on PostgreSQL at caps 400 to 2,000 (0.978 at cap 400 over 30 s); held
until they share it, 0.982. Each cap runs once per latency case: constant (every send
answered after exactly `--latency-ms`, as before), and for each non-zero `--spreads`
fraction a network-like latency drawn uniformly from `--latency-ms` ± that fraction with a
tail (`--tail-rate` of the sends take 1-2 s). Half
of each send's latency passes before it *arrives* and is counted against the cap, as
Meta counts it, so evenly paced starts reach the cap unevenly. Counted by the sandbox,
from its own arrival (accept) timestamps:

- achieved rate / cap: accepted sends per second while there was enough work (the middle
  90 % of accepts; also shown from the first to the last accept, which includes the
  worker's start and the tail of retried sends);
- most sends in any one-second window / cap (sliding, exact);
- duplicates: messages the sandbox accepted more than once (by our id in
  `biz_opaque_callback_data`), and sends it refused with 130429.

Goal: rate/cap ≥ 0.97, max-window/cap ≤ 1.00, refused with 130429 ≤ 0.5 % of the
sends, 0 duplicates. Each jitter case's rate is also shown against the goal and against
the same cap's constant-latency run (the baseline, measured in the same run).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Column, Engine, Table, delete, func, inspect, select, text, update
from sqlmodel import SQLModel

from benchmarks._proc import cpu_seconds
from core import migrate
from core.db import get_engine
from core.models.control import SenderBudgetMember, SenderControl
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.types import utcnow
from core.outbox import OutboundMessage, enqueue_many
from core.sandbox.process import SandboxProcess

ROOT = Path(__file__).resolve().parents[1]
TENANT = "bench"
GOAL_RATE = 0.97
#: Most sends refused as over the cap (130429), as a share of all sends.
GOAL_REFUSED = 0.005
TAIL_MS = (1000.0, 2000.0)
#: Half of each send's latency passes before it arrives (a symmetric network path).
ARRIVAL_SHARE = 0.5
#: Last four digits the sandbox treats as magic outcomes: never used here.
MAGIC_SUFFIXES = {0, 47, 99, 132, 190, 200, 201, 202, 368, 429, 500, 501}


@dataclass(frozen=True)
class Result:
    """One run's figures, as the sandbox counted them."""

    cap: int
    workers: int
    spread: float  # the latency's ± fraction (0: constant)
    tail_rate: float  # share of sends with a 1-2 s latency
    messages: int
    accepted: int
    span_seconds: float
    max_in_window: int
    duplicates: int
    throttled: int  # sends the sandbox refused with 130429
    left_unsent: int
    steady_rate: float  # accepts/s between the 5th and 95th percentile accept
    worker_cpu_seconds: float  # user + system CPU of all worker processes
    load_average: float  # the machine's 1-minute load average at the end (2 cores shared)
    load_at_start: float  # ... and when the workers started
    sandbox_cpu_seconds: float  # the sandbox process's CPU while sending
    join_seconds: float  # from starting the workers until they shared the cap

    @property
    def rate_ratio(self) -> float:
        """Achieved accepted sends per second / cap."""
        if self.accepted < 2 or self.span_seconds <= 0:
            return 0.0
        return (self.accepted - 1) / self.span_seconds / self.cap

    @property
    def steady_ratio(self) -> float:
        """Accepted sends per second while the queue was full (the middle 90 %) / cap."""
        return self.steady_rate / self.cap

    @property
    def window_ratio(self) -> float:
        """Most accepted sends in any one-second window / cap."""
        return self.max_in_window / self.cap

    @property
    def refused_share(self) -> float:
        """Sends refused with 130429 / every send the sandbox saw (accepted or refused)."""
        sends = self.accepted + self.throttled
        return self.throttled / sends if sends else 0.0

    @property
    def goal_met(self) -> bool:
        """Rate ≥ 97 % of the cap, never over it, few refusals, nothing sent twice or left."""
        return (
            self.steady_ratio >= GOAL_RATE
            and self.window_ratio <= 1.0
            and self.refused_share <= GOAL_REFUSED
            and self.duplicates == 0
            and self.left_unsent == 0
        )


def recipient(index: int) -> str:
    """A distinct Spanish mobile per index whose last four digits are not magic."""
    prefix, suffix = divmod(index, 9000)
    return f"+3461{prefix:03d}{1000 + suffix:04d}"


def notice_payload(to: str, index: int) -> dict[str, Any]:
    """A valid `po_notification` body (the sandbox validates it like Meta does)."""
    po = f"PO-B{index}"
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to.lstrip("+"),
        "type": "template",
        "template": {
            "name": "po_notification",
            "language": {"code": "es"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "parameter_name": "supplier_name", "text": "Proveedor"},
                        {"type": "text", "parameter_name": "po_number", "text": po},
                        {
                            "type": "currency",
                            "parameter_name": "total_amount",
                            "currency": {
                                "fallback_value": "1.234,50 €",
                                "code": "EUR",
                                "amount_1000": 1234500,
                            },
                        },
                    ],
                },
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "0",
                    "parameters": [{"type": "payload", "payload": f"ack:{po}"}],
                },
            ],
        },
    }


def _references_to_messages() -> list[tuple[Table, Column[Any]]]:
    """Every (table, column) whose foreign key names a message: the benchmark database
    may be shared (`make bench-postgres` runs webhook_load on it too), and its rows that
    point at the tenant's messages must go before the messages."""
    messages = WhatsAppMessage.__table__  # type: ignore[attr-defined]
    return [
        (table, fk.parent)
        for table in SQLModel.metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column.table is messages
    ]


def prepare_database(url: str, count: int, run: str) -> Engine:
    """Migrate, remove earlier benchmark rows, lift any pause, enqueue `count` notices."""
    migrate.upgrade(url)
    engine = get_engine(url)
    with engine.begin() as conn:
        bench_ids = select(WhatsAppMessage.id).where(  # type: ignore[call-overload]
            WhatsAppMessage.tenant_id == TENANT
        )
        for table, column in _references_to_messages():  # webhook_load's events, batch rows
            conn.execute(delete(table).where(column.in_(bench_ids)))
        conn.execute(delete(WhatsAppMessage).where(WhatsAppMessage.tenant_id == TENANT))  # type: ignore[arg-type]
        conn.execute(delete(SenderControl))
        if inspect(conn).has_table("sender_budget_members"):
            conn.execute(text("DELETE FROM sender_budget_members"))
    messages = []
    for index in range(count):
        to = recipient(index)
        messages.append(
            OutboundMessage(
                tenant_id=TENANT,
                idempotency_key=f"bench:{run}:{index}",
                recipient_phone=to,
                request_payload=notice_payload(to, index),
                template_name="po_notification",
                template_language="es",
            )
        )
    for start in range(0, count, 2000):
        enqueue_many(messages[start : start + 2000], engine=engine)
    return engine


def hold_queue(engine: Engine, until: datetime | None) -> None:
    """Make the benchmark's pending notices due at `until` (None: now)."""
    with engine.begin() as conn:
        conn.execute(
            update(WhatsAppMessage)
            .where(
                WhatsAppMessage.tenant_id == TENANT,  # type: ignore[arg-type]
                WhatsAppMessage.status == MessageStatus.PENDING,  # type: ignore[arg-type]
            )
            .values(next_attempt_at=until)
        )


def cap_shared(engine: Engine, workers: int, cap: int) -> bool:
    """Every worker holds its even share (`core.sender.budget.fair_share`) and none still
    reserves a lowered one: together the whole cap, as once they run side by side."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(SenderBudgetMember.share, SenderBudgetMember.settled_at)  # type: ignore[call-overload]
        ).all()
    now = utcnow()
    return (
        len(rows) == workers
        and sum(share for share, _settled in rows) == cap
        and all(share >= cap // workers and settled <= now for share, settled in rows)
    )


def unsettled(engine: Engine) -> int:
    """Benchmark messages still pending or being sent."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    WhatsAppMessage.tenant_id == TENANT,  # type: ignore[arg-type]
                    WhatsAppMessage.status.in_(  # type: ignore[attr-defined]
                        (MessageStatus.PENDING, MessageStatus.SENDING)
                    ),
                )
            ).scalar_one()
        )


def start_workers(
    count: int, url: str, sandbox_url: str, cap: int, log_file: IO[str]
) -> list[subprocess.Popen[str]]:
    """`count` real `wanotify worker` processes on `url`, sending to the sandbox."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WHATSAPP_", "SANDBOX_", "DATABASE_URL"))
    }
    env.update(
        DATABASE_URL=url,
        WHATSAPP_API_BASE_URL=sandbox_url,
        WANOTIFY_MODE="sandbox",
        WHATSAPP_MAX_MPS=str(cap),
        WANOTIFY_LOG_LEVEL=os.environ.get("WANOTIFY_LOG_LEVEL", "WARNING"),
        PYTHONPATH=str(ROOT),
    )
    return [
        subprocess.Popen(
            [sys.executable, "-m", "core.cli", "worker", "--id", f"bench-{n}"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            text=True,
        )
        for n in range(count)
    ]


def stop_workers(workers: list[subprocess.Popen[str]]) -> None:
    """SIGTERM (graceful), then SIGKILL any that linger."""
    for proc in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_once(
    cap: int,
    seconds: float,
    workers: int,
    latency_ms: float,
    database_url: str | None,
    *,
    spread: float = 0.0,
    tail_rate: float = 0.0,
    min_messages: int = 0,
) -> Result:
    """One cap and latency case: enqueue, send with real workers, read the sandbox."""
    count = max(int(cap * seconds), min_messages)
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = prepare_database(url, count, run=f"{cap}-{time.time_ns()}")
        hold_queue(engine, until=utcnow() + timedelta(days=1))  # until the workers share the cap
        with SandboxProcess(
            latency_ms=latency_ms,
            latency_spread=spread,
            latency_tail_rate=tail_rate,
            latency_tail_min_ms=TAIL_MS[0],
            latency_tail_max_ms=TAIL_MS[1],
            latency_arrival_share=ARRIVAL_SHARE,
            mps=cap,
            webhooks_enabled=False,
        ) as sandbox:
            assert sandbox.pid is not None
            log_path = Path(tmp) / "workers.log"
            log_file = log_path.open("w")
            load_at_start = os.getloadavg()[0]
            cpu_before = cpu_seconds(sandbox.pid)
            procs = start_workers(workers, url, sandbox.url, cap, log_file)
            started = time.monotonic()
            deadline = started + seconds * 6 + 60
            try:
                while not cap_shared(engine, workers, cap) and time.monotonic() < deadline:
                    if any(p.poll() is not None for p in procs):
                        log_file.flush()
                        raise RuntimeError("a worker exited early:\n" + log_path.read_text())
                    time.sleep(0.1)
                joined = time.monotonic() - started
                hold_queue(engine, until=None)
                while unsettled(engine) and time.monotonic() < deadline:
                    if any(p.poll() is not None for p in procs):
                        log_file.flush()
                        raise RuntimeError("a worker exited early:\n" + log_path.read_text())
                    time.sleep(0.2)
            finally:
                cpu = sum(cpu_seconds(p.pid) for p in procs)
                sandbox_cpu = cpu_seconds(sandbox.pid) - cpu_before
                stop_workers(procs)
                log_file.close()
                if os.environ.get("BENCH_SHOW_LOG"):  # the workers' warnings and errors
                    lines = log_path.read_text().splitlines()
                    print("\n".join(line[:400] for line in lines if "rror" in line)[-6000:])
            stats = sandbox.stats(recipients=False)
            accept_times = sorted(
                float(m["accepted_at"]) for m in sandbox.messages(limit=count + 1000)
            )
        left = unsettled(engine)
        engine.dispose()
    return Result(
        cap=cap,
        workers=workers,
        spread=spread,
        tail_rate=tail_rate,
        messages=count,
        accepted=int(stats["accepted"]),
        span_seconds=float(stats["accept_span_seconds"]),
        max_in_window=int(stats["max_in_window"]),
        duplicates=sum(int(d["count"]) - 1 for d in stats["duplicates"]),
        throttled=int(stats["rejected"].get("130429", 0)),
        left_unsent=left,
        steady_rate=steady_rate(accept_times),
        worker_cpu_seconds=cpu,
        load_average=os.getloadavg()[0],
        load_at_start=load_at_start,
        sandbox_cpu_seconds=sandbox_cpu,
        join_seconds=joined,
    )


def steady_rate(times: list[float]) -> float:
    """Accepts per second between the 5th and the 95th percentile accept time.

    The first and last few percent are the worker starting up and the tail of retried
    sends (a 130429 or a 5xx waits its backoff): not "enough work" for the dispatcher.
    """
    if len(times) < 20:
        return 0.0
    low, high = int(len(times) * 0.05), int(len(times) * 0.95)
    span = times[high] - times[low]
    return (high - low) / span if span > 0 else 0.0


def main(argv: list[str] | None = None) -> int:
    """Run every cap under every latency case, print the ratios; exit 1 when a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caps", default="80,1000", help="comma-separated caps (msg/s)")
    parser.add_argument("--seconds", type=float, default=8.0, help="work per cap, in seconds")
    parser.add_argument(
        "--min-messages", type=int, default=2000, help="at least this many sends per case"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--latency-ms", type=float, default=150.0, help="sandbox latency")
    parser.add_argument(
        "--spreads",
        default="0,0.2,0.5",
        help="latency cases: ± fractions of --latency-ms (0: constant, no tail)",
    )
    parser.add_argument(
        "--tail-rate", type=float, default=0.005, help="share of 1-2 s sends (jitter cases)"
    )
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--numbers",
        type=int,
        default=1,
        help="N > 1: N tenants' numbers at the first cap each, one worker "
        "(benchmarks.send_numbers: aggregate rate, per-number windows, a notice's wait)",
    )
    args = parser.parse_args(argv)
    if args.numbers > 1:
        from benchmarks.send_numbers import main_numbers

        return main_numbers(args)
    caps = [int(c) for c in args.caps.split(",") if c.strip()]
    spreads = [float(f) for f in args.spreads.split(",") if f.strip()]
    where = "SQLite file" if args.database_url is None else args.database_url.split("@")[-1]
    print(
        f"send throughput: {args.workers} worker process(es), {where}, "
        f"sandbox latency {args.latency_ms:g} ms"
    )
    print(
        f"{'cap':>6} {'latency':>14} {'msgs':>6} {'accepted':>8} {'rate/cap':>9} "
        f"{'all/cap':>8} {'maxwin/cap':>10} {'dups':>5} {'130429':>7} {'refused':>8} "
        f"{'left':>5} {'vs goal':>7} {'vs const':>8} {'cpu ms/msg':>10} {'sbx ms':>6} "
        f"{'load':>9} {'join s':>6}  goal"
    )
    ok = True
    for cap in caps:
        baseline: float | None = None  # this cap's constant-latency steady ratio
        for spread in spreads:
            tail = args.tail_rate if spread > 0 else 0.0
            result = run_once(
                cap,
                args.seconds,
                args.workers,
                args.latency_ms,
                args.database_url,
                spread=spread,
                tail_rate=tail,
                min_messages=args.min_messages,
            )
            ok = ok and result.goal_met
            if spread == 0:
                baseline = result.steady_ratio
            versus = f"{result.steady_ratio / baseline:>8.3f}" if baseline else f"{'-':>8}"
            case = f"±{spread:.0%}+{tail:.1%}" if spread > 0 else "constant"
            print(
                f"{cap:>6} {case:>14} {result.messages:>6} {result.accepted:>8} "
                f"{result.steady_ratio:>9.3f} {result.rate_ratio:>8.3f} "
                f"{result.window_ratio:>10.3f} {result.duplicates:>5} {result.throttled:>7} "
                f"{result.refused_share:>8.2%} {result.left_unsent:>5} "
                f"{result.steady_ratio / GOAL_RATE:>7.3f} {versus} "
                f"{1000 * result.worker_cpu_seconds / max(1, result.accepted):>10.2f} "
                f"{1000 * result.sandbox_cpu_seconds / max(1, result.accepted):>6.2f} "
                f"{result.load_at_start:>4.1f}-{result.load_average:<4.1f} "
                f"{result.join_seconds:>6.1f} {'met' if result.goal_met else 'MISSED'}",
                flush=True,
            )
    print(
        f"latency: constant, or ± a fraction with a tail of 1-2 s sends (half of each "
        f"latency before the send arrives and is counted); "
        f"rate/cap: steady accepted rate (middle 90 % of accepts) / cap, goal >= {GOAL_RATE}; "
        "all/cap: first to last accept; maxwin/cap: most accepts in any 1 s window / cap, "
        "goal <= 1.00; dups: sent twice, goal 0; 130429: sends the sandbox refused as over "
        f"the cap (retried); refused: their share of all sends, goal <= {GOAL_REFUSED:.1%}; "
        f"vs goal: rate/cap / {GOAL_RATE} (>= 1 meets it); vs const: rate/cap / the same "
        "cap's constant-latency rate/cap in this run (the baseline); "
        "cpu ms/msg: worker CPU per accepted send (start-up included); "
        "sbx ms: the sandbox process's CPU per accepted send; "
        "load: 1-min load average at start and end (2 cores, shared); join s: from starting "
        "the workers until they shared the cap (the notices were held until then). The goal "
        "is judged on the steady rate; all/cap includes start-up and the backoff tail of "
        "retried sends"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
