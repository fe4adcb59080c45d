"""Builders shared by the sender tests: pending PO notices written straight to the outbox."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from core.control import queue_depth
from core.models.messages import WhatsAppMessage
from core.outbox import OutboundMessage, enqueue_many
from core.sender import DispatcherOptions, DrainReport, RetryPolicy, drain
from core.settings import load_settings

TENANT = "t1"


def phone(index: int, suffix: str | None = None) -> str:
    """A distinct Spanish mobile; `suffix` (4 digits) picks a sandbox magic outcome."""
    if suffix is None:
        return f"+3461{index // 9000:03d}{1000 + index % 9000:04d}"
    return f"+34600{index:03d}{suffix}"


def notice_payload(to: str, po: str = "PO-1") -> dict[str, Any]:
    """A valid po_notification body (the sandbox validates it as Meta does)."""
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
                        {"type": "text", "parameter_name": "supplier_name", "text": "Harinas"},
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
                }
            ],
        },
    }


def notice(to: str, key: str, **fields: Any) -> OutboundMessage:
    """A pending po_notification to `to` with idempotency key `key`."""
    return OutboundMessage(
        tenant_id=fields.pop("tenant_id", TENANT),
        idempotency_key=key,
        recipient_phone=to,
        request_payload=notice_payload(to, fields.pop("po", key[:60])),
        template_name="po_notification",
        template_language="es",
        **fields,
    )


def enqueue_notices(engine: Engine, phones: list[str], prefix: str = "k") -> list[str]:
    """Enqueue one notice per phone (keys prefix-0, prefix-1, ...); returns message ids."""
    results = enqueue_many(
        [notice(p, f"{prefix}-{i}") for i, p in enumerate(phones)], engine=engine
    )
    return [r.message.id for r in results]


def fast_options(**overrides: Any) -> DispatcherOptions:
    """Dispatcher options with test-sized waits (retries in tenths of a second)."""
    values: dict[str, Any] = {
        "retry": RetryPolicy(max_attempts=3, base_seconds=0.05, cap_seconds=0.2),
        "seed": 7,
        "idle_poll_seconds": 0.05,
    }
    values.update(overrides)
    return DispatcherOptions(**values)


def run_drain(engine: Engine, timeout: float = 60.0, **options: Any) -> DrainReport:
    """Drain the outbox through the real dispatcher and Cloud API client (settings from env)."""
    opts = fast_options(**options)
    return asyncio.run(drain(load_settings(), engine, timeout=timeout, options=opts))


def rows(engine: Engine) -> dict[str, WhatsAppMessage]:
    """Every message row by id."""
    with Session(engine) as session:
        return {m.id: m for m in session.exec(select(WhatsAppMessage)).all()}


ROOT = Path(__file__).resolve().parents[3]


def worker_env(database_url: str, sandbox_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `wanotify worker` process on `database_url` and the sandbox."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WHATSAPP_", "SANDBOX_", "WEBHOOK_", "DATABASE_URL", "WANOTIFY_"))
    }
    env.update(
        DATABASE_URL=database_url,
        WHATSAPP_API_BASE_URL=sandbox_url,
        WANOTIFY_MODE="sandbox",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def start_worker(env: dict[str, str], name: str, log: Path) -> subprocess.Popen[bytes]:
    """A real `wanotify worker --id name` process, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "core.cli", "worker", "--id", name],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_worker(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM and wait (SIGKILL after 30 s); returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.5
) -> None:
    """Poll `predicate` until true; fail the test saying `what` did not happen in time.

    Polls sparingly: the sandbox shares this process, and a busy test thread would
    delay its accept timestamps and bunch them.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


def unsettled(engine: Engine) -> int:
    """Messages still pending or being sent (one light COUNT query)."""
    depth = queue_depth(engine)
    return depth.pending + depth.sending


def status_counts(engine: Engine) -> Counter[str]:
    """How many messages are in each status."""
    return Counter(m.status for m in rows(engine).values())
