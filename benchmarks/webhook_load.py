"""Webhook load: the journalled webhook app against the naive design, at rising rates.

    python -m benchmarks.webhook_load [--rates 1000,2000,3000,4000,5000] [--seconds 5]
        [--database-url postgresql://postgres@127.0.0.1:5432/wanotify_bench] [--workers 2]
        [--port 9400] [--skip-naive]

Each design runs under uvicorn (httptools, uvloop; `--workers N` processes) on a fresh
database seeded with accepted messages: a SQLite file by default, or, with
`--database-url postgresql://...`, that PostgreSQL database, EMPTIED before each design
(give the benchmark a database of its own). This process is the load generator: a
minimal HTTP/1.1 client over 128 keep-alive connections (so it takes little of the CPU it
shares with the server) sending signed status webhooks (one status per POST, as Meta
mostly does) on an open-loop schedule, so a slow server is not let off by a slower
sender — latency is measured from each event's scheduled time, queueing included. Per
message there are `sent`, `delivered` and `read`, mixed across messages, partly out of
order, with some duplicates.

- **journalled** (`webhook_app:app`): verify, commit to the journal with group commit,
  answer 200; a batched applier, a process of its own (its CPU is counted in the
  server's), folds events into messages just after. On SQLite the journal is the inbox
  file beside the database.
- **naive** (`create_naive_app` below): verify, then one SELECT-UPDATE-COMMIT per status
  inside the request, as the seed system did.

Reported per step: offered and achieved events/s, p50/p99/max latency, errors, server
CPU. Then: sustained rate (highest step with achieved >= 95% of offered, p99 < 100 ms,
no errors), events acknowledged but missing from the database (lost), acknowledged but
not yet applied at the end of the load and after draining, wrong final rows, and the
ratio to the naive design's best achieved throughput, and the CPU per acknowledged
event from the first step to the end of the drain: the server's processes (workers and
appliers) plus, on a local PostgreSQL, its backends for the database (read from /proc;
on a shared machine this is the figure to compare, not the wall-clock rates). On
PostgreSQL the steps start once every worker's applier has connected.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from benchmarks._proc import children_cpu_seconds, cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
SECRET = "benchmark-app-secret"
WEBHOOK_PATH = "/api/v1/whatsapp/webhook"
HEALTH_PATH = "/api/v1/whatsapp/health"
STAGES = ("sent", "delivered", "read")
SUSTAIN_SHARE = 0.95
SUSTAIN_P99_MS = 100.0
CONNECTIONS = 128  # concurrent keep-alive connections of the load generator
#: The business number the status bodies name, and the server's own (statuses naming
#: another number are held, not applied, since issue 14).
PHONE_NUMBER_ID = "106540352242922"


# --- the naive design, as real code --------------------------------------------------------


def create_naive_app() -> Starlette:
    """The seed's design: per status, SELECT the message, UPDATE it, COMMIT, then answer."""
    from sqlalchemy import select, update

    from core.db import get_engine
    from core.models.messages import WhatsAppMessage
    from core.webhooks.signature import SignatureCheck, check_signature

    engine = get_engine(os.environ["DATABASE_URL"])
    secret = os.environ["WHATSAPP_APP_SECRET"]
    table = WhatsAppMessage.__table__  # type: ignore[attr-defined]
    columns = {"sent": "sent_at", "delivered": "delivered_at", "read": "read_at"}

    def apply(statuses: list[dict[str, Any]]) -> None:
        for status in statuses:
            with engine.begin() as conn:
                row = conn.execute(
                    select(table.c.id).where(table.c.whatsapp_message_id == status["id"])
                ).first()
                if row is None:
                    continue  # the seed dropped statuses for unknown messages
                at = datetime.fromtimestamp(int(status["timestamp"]), UTC)
                values: dict[str, Any] = {"status": status["status"], "updated_at": at}
                if status["status"] in columns:
                    values[columns[status["status"]]] = at
                conn.execute(update(table).where(table.c.id == row.id).values(**values))

    async def receive(request: Request) -> Response:
        body = await request.body()
        if check_signature(secret, body, request.headers.get("x-hub-signature-256")) != (
            SignatureCheck.OK
        ):
            return PlainTextResponse("invalid signature", 401)
        doc = orjson.loads(body)
        statuses = [
            s
            for entry in doc["entry"]
            for change in entry["changes"]
            for s in change["value"].get("statuses", [])
        ]
        await run_in_threadpool(apply, statuses)
        return PlainTextResponse("EVENT_RECEIVED")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "backlog": 0})

    return Starlette(
        routes=[Route(WEBHOOK_PATH, receive, methods=["POST"]), Route(HEALTH_PATH, health)]
    )


# --- database setup and checks -------------------------------------------------------------


def design_url(base: str | None, name: str, workdir: Path) -> str:
    """The empty database a design runs on: its own SQLite file, or the PostgreSQL database
    given, emptied (its `public` schema dropped and re-created) before each design."""
    if base is None:
        return f"sqlite:///{workdir / f'{name}.db'}"
    from sqlalchemy import text

    from core.db import get_engine

    engine = get_engine(base)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return base


def prepare_database(url: str, messages: int) -> list[tuple[str, str]]:
    """A migrated database with `messages` accepted messages; returns (id, wamid) pairs."""
    from sqlalchemy import insert

    from core import migrate
    from core.db import get_engine
    from core.webhooks.sql import MESSAGES

    migrate.upgrade(url)
    now = datetime.now(UTC)
    rows = []
    for i in range(messages):
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "tenant_id": "bench",
                "whatsapp_message_id": f"wamid.BENCH{i:08d}{uuid.uuid4().hex[:8]}",
                "idempotency_key": f"bench:{i}",
                "recipient_phone": f"+3461{i:07d}",
                "message_type": "template",
                "status": "accepted",
                "attempt_count": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    engine = get_engine(url)
    with engine.begin() as conn:
        for i in range(0, len(rows), 1000):
            conn.execute(insert(MESSAGES), rows[i : i + 1000])
    engine.dispose()
    return [(str(r["id"]), str(r["whatsapp_message_id"])) for r in rows]


@dataclass(frozen=True)
class Event:
    """One signed webhook POST carrying one status."""

    message_index: int
    stage: str
    body: bytes
    signature: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def build_events(
    messages: list[tuple[str, str]], start: int, count: int, rng: random.Random
) -> list[Event]:
    """Signed bodies for `count` messages from `start`: 3 stages each, mixed, some dupes."""
    keyed: list[tuple[float, int, str]] = []
    base_time = 1_763_990_000
    for k in range(count):
        index = start + k
        for j, stage in enumerate(STAGES):
            # A stage's place in the stream: later stages later, with enough jitter that
            # some arrive before the earlier ones (Meta's order is not guaranteed).
            keyed.append((k + j * 40 + rng.uniform(-60, 60), index, stage))
    for _ in range(len(keyed) // 50):  # ~2 % duplicates, some time later
        key, index, stage = rng.choice(keyed)
        keyed.append((key + rng.uniform(1, 200), index, stage))
    keyed.sort()
    events = []
    for _, index, stage in keyed:
        message_id, wamid = messages[index]
        at = base_time + index % 1000 + STAGES.index(stage) * 5
        body = _status_body(wamid, message_id, stage, at)
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        events.append(Event(index, stage, body, signature))
    return events


def _status_body(wamid: str, message_id: str, stage: str, at: int) -> bytes:
    status: dict[str, Any] = {
        "id": wamid,
        "status": stage,
        "timestamp": str(at),
        "recipient_id": "34612345678",
        "biz_opaque_callback_data": message_id,
    }
    if stage != "read":
        status["pricing"] = {
            "billable": True,
            "pricing_model": "PMP",
            "category": "utility",
            "type": "regular",
        }
    doc = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "34910000000",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            "statuses": [status],
                        },
                    }
                ],
            }
        ],
    }
    return orjson.dumps(doc)


# --- the load generator -------------------------------------------------------------------


@dataclass
class StepResult:
    """What one rate step measured."""

    offered: float
    sent: int = 0
    ok: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, of 200s
    elapsed: float = 0.0
    server_cpu: float = 0.0  # share of one core
    client_cpu: float = 0.0  # share of one core used by this load generator
    acked: list[Event] = field(default_factory=list)
    backlog_after: int | None = None

    @property
    def achieved(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def sustained(self) -> bool:
        return (
            self.errors == 0
            and self.achieved >= SUSTAIN_SHARE * self.offered
            and self.percentile(0.99) < SUSTAIN_P99_MS
        )


async def _read_status(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length framed, as both designs answer)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


def _request(host: str, port: int, path: str, event: Event) -> bytes:
    """The exact bytes of one signed POST (built before the clock starts)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nX-Hub-Signature-256: {event.signature}\r\n"
        f"Content-Length: {len(event.body)}\r\n\r\n"
    )
    return head.encode() + event.body


async def drive(url: str, events: list[Event], rate: float, pid: int) -> StepResult:
    """Send `events` at `rate` per second, open loop, over `CONNECTIONS` keep-alive
    connections; each event's latency runs from its scheduled time to its answer, so time
    spent queued behind a slow server counts. A minimal HTTP/1.1 client keeps this
    process's CPU (which shares the machine with the server) low."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
    requests = [_request(host, port, path, e) for e in events]
    result = StepResult(offered=rate)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()

    async def connection() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while (item := await queue.get()) is not None:
            index, scheduled = item
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                assert reader is not None
                writer.write(requests[index])
                status = await asyncio.wait_for(_read_status(reader), 30)
            except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError):
                status = 0
                if writer is not None:
                    writer.close()
                reader = writer = None
            if status == 200:
                result.ok += 1
                result.latencies.append(loop.time() - scheduled)
                result.acked.append(events[index])
            else:
                result.errors += 1
        if writer is not None:
            writer.close()

    cpu_before = _process_cpu(pid)
    client_before = time.process_time()
    workers = [asyncio.create_task(connection()) for _ in range(CONNECTIONS)]
    start = loop.time() + 0.05
    for i in range(len(events)):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0.002:
            await asyncio.sleep(delay)
        queue.put_nowait((i, scheduled))
        result.sent += 1
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    result.elapsed = loop.time() - start
    result.server_cpu = (_process_cpu(pid) - cpu_before) / result.elapsed
    result.client_cpu = (time.process_time() - client_before) / result.elapsed
    return result


def _process_cpu(pid: int) -> float:
    """CPU seconds used by a process and its worker processes (user + system), from /proc."""
    return cpu_seconds(pid) + children_cpu_seconds(pid)


def _database_cpu(database: str) -> dict[int, float]:
    """CPU seconds of each local PostgreSQL backend serving `database` (by its process
    title, "postgres: user database host ..."), pid -> seconds; {} for SQLite."""
    if database.startswith("sqlite"):
        return {}
    from sqlalchemy.engine import make_url

    name = make_url(database).database
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().decode(errors="replace")
            if not title.startswith("postgres: ") or f" {name} " not in title:
                continue
            fields_ = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")
    return found


def _database_cpu_since(database: str, before: dict[int, float]) -> float:
    """CPU seconds the database's backends used since `before` (backends that ended in
    between are missed: the app's pools keep theirs)."""
    now = _database_cpu(database)
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in now.items())


# --- running a design -----------------------------------------------------------------------


@dataclass
class DesignRun:
    """A design's steps and end-of-run checks."""

    name: str
    steps: list[StepResult] = field(default_factory=list)
    lost: int = 0
    unapplied_at_end: int = 0
    unapplied_after_drain: int = 0
    drain_seconds: float = 0.0
    #: CPU seconds from the first step to the end of the drain: the server's processes
    #: (workers and appliers) and the database's backends (PostgreSQL on this machine)
    server_seconds: float = 0.0
    database_seconds: float = 0.0
    acked: int = 0
    wrong_rows: int = 0
    checked_rows: int = 0

    def cpu_per_event(self) -> str:
        """CPU per acknowledged event, server + database, in microseconds."""
        if not self.acked:
            return "-"
        server = self.server_seconds / self.acked * 1e6
        database = self.database_seconds / self.acked * 1e6
        return f"{server + database:.0f} us (server {server:.0f} + database {database:.0f})"

    @property
    def best_sustained(self) -> StepResult | None:
        passing = [s for s in self.steps if s.sustained]
        return max(passing, key=lambda s: s.offered) if passing else None

    @property
    def best_achieved(self) -> float:
        return max((s.achieved for s in self.steps), default=0.0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(
    target: list[str], database_url: str, port: int, workers: int
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a uvicorn app (`target` is its import arguments) until the block ends."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        # live mode needs the whole set (core.settings.LIVE_CREDENTIALS); only the secret matters
        "WHATSAPP_ACCESS_TOKEN": "EAAG-benchmark",
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "WHATSAPP_BUSINESS_ACCOUNT_ID": "9876543210",
        "WHATSAPP_APP_SECRET": SECRET,
        "WHATSAPP_WEBHOOK_VERIFY_TOKEN": "benchmark-verify-token",
        "PYTHONPATH": str(ROOT),
    }
    argv = [
        sys.executable, "-m", "uvicorn", *target,
        "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning", "--workers", str(workers),
    ]  # fmt: skip
    process = subprocess.Popen(argv, env=env, cwd=ROOT)
    try:
        _wait_ready(f"http://127.0.0.1:{port}{HEALTH_PATH}", process)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 120  # imports take tens of seconds on a loaded machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


def _wait_for_appliers(database: str, workers: int, within: float = 60.0) -> None:
    """PostgreSQL: wait until every worker's applier process has connected (started up:
    on a loaded machine its imports take seconds, and would be counted as the first
    step's CPU and backlog). SQLite: nothing to wait on."""
    if database.startswith("sqlite"):
        return
    from sqlalchemy import text

    from core.db import get_engine

    engine = get_engine(database)
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'wanotify webhook-applier'"
    )
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(query).scalar_one() >= workers:
                    return
            time.sleep(0.2)
    finally:
        engine.dispose()


def _backlog(port: int) -> int | None:
    import httpx

    try:
        return int(httpx.get(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=5).json()["backlog"])
    except (httpx.HTTPError, KeyError, ValueError):
        return None


def run_design(
    name: str,
    target: list[str],
    rates: list[int],
    seconds: float,
    database: str,
    seed: int,
    stop_when_saturated: bool,
    workers: int = 1,
    port: int | None = None,
) -> DesignRun:
    """Seed a database, serve the design, drive every rate step, then check the database."""
    rng = random.Random(seed)
    per_step = [int(rate * seconds / (len(STAGES) * 1.02)) + 1 for rate in rates]
    messages = prepare_database(database, sum(per_step))
    run = DesignRun(name)
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    with serve(target, database, port, workers) as process:
        if name == "journalled":
            _wait_for_appliers(database, workers)
        server_before, database_before = _process_cpu(process.pid), _database_cpu(database)
        start = 0
        for rate, count in zip(rates, per_step, strict=True):
            events = build_events(messages, start, count, rng)
            start += count
            step = _run(drive(url, events, rate, process.pid))
            time.sleep(0.5)
            step.backlog_after = _backlog(port)
            run.steps.append(step)
            _print_step(name, step)
            if stop_when_saturated and step.achieved < 0.8 * rate:
                break  # saturated: higher rates only queue more
        acked = [e for s in run.steps for e in s.acked]
        run.unapplied_at_end = run.steps[-1].backlog_after or 0
        began = time.monotonic()
        while (_backlog(port) or 0) > 0 and time.monotonic() - began < 120:
            time.sleep(0.2)
        run.drain_seconds = time.monotonic() - began
        run.server_seconds = _process_cpu(process.pid) - server_before
        run.database_seconds = _database_cpu_since(database, database_before)
        run.acked = len(acked)
    _check(run, database, messages, acked)
    return run


def _run(coro: Any) -> StepResult:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _check(
    run: DesignRun, database: str, messages: list[tuple[str, str]], acked: list[Event]
) -> None:
    """Lost events, unapplied receipts and wrong final rows, read from the database."""
    from sqlalchemy import text

    from core.db import get_engine
    from core.webhooks.inbox import waiting_receipts

    engine = get_engine(database)
    with engine.connect() as db:
        if run.name == "journalled":
            journal = {
                row[0] for row in db.execute(text("SELECT body_sha256 FROM webhook_receipts"))
            }
            waiting = {w.body_sha256 for w in waiting_receipts(engine)} - journal  # SQLite inbox
            run.lost = sum(
                1
                for e in {e.digest: e for e in acked}.values()
                if e.digest not in journal and e.digest not in waiting
            )
            run.unapplied_after_drain = (
                len(waiting)
                + db.execute(
                    text("SELECT count(*) FROM webhook_receipts WHERE applied_at IS NULL")
                ).scalar_one()
            )
        rows = {r[0]: r[1] for r in db.execute(text("SELECT id, status FROM whatsapp_messages"))}
    engine.dispose()
    complete: dict[int, set[str]] = {}
    for event in acked:
        complete.setdefault(event.message_index, set()).add(event.stage)
    for index, stages in complete.items():
        if len(stages) == len(STAGES):
            run.checked_rows += 1
            if rows.get(messages[index][0]) != "read":
                run.wrong_rows += 1


def _print_step(name: str, step: StepResult) -> None:
    print(
        f"  {name:<10} offered {step.offered:>6.0f}/s  achieved {step.achieved:>7.1f}/s"
        f"  p50 {step.percentile(0.5):>7.1f} ms  p99 {step.percentile(0.99):>7.1f} ms"
        f"  max {step.percentile(1.0):>7.1f} ms  errors {step.errors:>5}"
        f"  cpu server {step.server_cpu:>4.0%} client {step.client_cpu:>4.0%}"
        f"  backlog {step.backlog_after if step.backlog_after is not None else '-':>5}"
        f"  {'ok' if step.sustained else 'NOT sustained'}",
        flush=True,
    )


def report(ours: DesignRun, naive: DesignRun, database: str, workers: int) -> None:
    """The summary the issue asks for."""
    best = ours.best_sustained
    naive_best = naive.best_sustained
    print()
    print(
        f"summary ({database}, {workers} uvicorn worker(s) per design, load from a separate"
        " process)"
    )
    if best is not None:
        print(
            f"  journalled: sustained {best.achieved:.0f} events/s (step {best.offered:.0f}/s)"
            f"  p50 {best.percentile(0.5):.1f} ms  p99 {best.percentile(0.99):.1f} ms"
        )
    else:
        print("  journalled: no step sustained")
    print(
        f"  journalled: lost (acked, not in database) {ours.lost}; acked but not applied:"
        f" {ours.unapplied_at_end} at end of load, {ours.unapplied_after_drain} after"
        f" {ours.drain_seconds:.1f} s drain; wrong final rows {ours.wrong_rows}"
        f" of {ours.checked_rows}"
    )
    print(f"  journalled: CPU per event (load and drain) {ours.cpu_per_event()}")
    naive_line = (
        f"sustained {naive_best.achieved:.0f} events/s" if naive_best else "no step sustained"
    )
    print(
        f"  naive:      {naive_line}; best achieved {naive.best_achieved:.0f} events/s"
        f" (p50 {_p50_at_best(naive):.1f} ms there); wrong final rows {naive.wrong_rows}"
        f" of {naive.checked_rows}"
    )
    if best is not None and naive.best_achieved:
        print(
            f"  ratio: {best.achieved / naive.best_achieved:.1f}x the naive design's best"
            f" achieved throughput"
        )


def _p50_at_best(run: DesignRun) -> float:
    step = max(run.steps, key=lambda s: s.achieved, default=None)
    return step.percentile(0.5) if step else float("nan")


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def main(argv: list[str] | None = None) -> int:
    """Run both designs and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000,2000,3000,4000,5000")
    parser.add_argument("--naive-rates", default="250,500,1000,1500,2000,3000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL database of its own (emptied before each design); default: SQLite",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument(
        "--port", type=int, default=None, help="the server's port (default: any free one)"
    )
    parser.add_argument("--skip-naive", action="store_true", help="run the journalled design only")
    args = parser.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",")]
    naive_rates = [int(r) for r in args.naive_rates.split(",")]
    if args.database_url is not None and args.database_url.startswith("sqlite"):
        parser.error("--database-url is for PostgreSQL; SQLite files are made per run")
    workdir = Path(tempfile.mkdtemp(prefix="webhook-load-"))
    where = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"webhook load: {args.seconds:.0f} s per step, {where}, {args.workers} worker(s),"
        f" workdir {workdir}; machine load average {_load()} ({os.cpu_count()} CPUs)",
        flush=True,
    )
    ours = run_design(
        "journalled",
        ["webhook_app:app"],
        rates,
        args.seconds,
        design_url(args.database_url, "journalled", workdir),
        args.seed,
        False,
        args.workers,
        args.port,
    )
    if args.skip_naive:
        best = ours.best_sustained
        print(
            f"\nsummary ({where}, {args.workers} worker(s)): journalled sustained"
            f" {f'{best.achieved:.0f} events/s' if best else 'no step'}; lost {ours.lost};"
            f" unapplied after {ours.drain_seconds:.1f} s drain {ours.unapplied_after_drain};"
            f" wrong final rows {ours.wrong_rows} of {ours.checked_rows}"
        )
        print(f"  CPU per event, load and drain: {ours.cpu_per_event()}")
        print(f"  machine load average at the end: {_load()}")
        naive = None
    else:
        naive = run_design(
            "naive",
            ["--factory", "benchmarks.webhook_load:create_naive_app"],
            naive_rates,
            args.seconds,
            design_url(args.database_url, "naive", workdir),
            args.seed,
            True,
            args.workers,
            args.port,
        )
    if naive is not None:
        report(ours, naive, where, args.workers)
        print(f"  machine load average at the end: {_load()} (other work on it skews every figure)")
    if not args.keep:
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
