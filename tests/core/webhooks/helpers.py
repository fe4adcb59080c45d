"""Shared helpers of the webhook tests: Meta-shaped bodies, rows, and the real app process.

Bodies are built as Meta sends them and signed with the test secret; messages and
suppliers are real rows in the test's database; `WebhookProcess` runs `wanotify webhook`
(or uvicorn with several workers) as a separate OS process on a free port.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import Engine, insert, select, text
from sqlmodel import Session

from core.models.suppliers import Supplier
from core.models.types import new_id
from core.webhooks.apply import ApplyReport, apply_next_batch, sweep_held
from core.webhooks.inbox import INBOX, open_inbox, waiting_receipts
from core.webhooks.journal import ReceiptIn, write_receipts
from core.webhooks.parse import count_events, decode_body
from core.webhooks.signature import sign
from core.webhooks.sql import EVENTS, MESSAGES
from tests.fixtures.live import live_env

SECRET = "test-app-secret-9f2c"
VERIFY_TOKEN = "test-verify-token-41aa"
SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "samples" / "webhooks"
ROOT = Path(__file__).resolve().parents[3]
WEBHOOK_PATH = "/api/v1/whatsapp/webhook"
HEALTH_PATH = "/api/v1/whatsapp/health"
T0 = 1_763_990_000
#: The sample template message's wamid and callback data (status_*.json).
SAMPLE_WAMID = "wamid.HBgLMzQ2MTIzNDU2NzgVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
SAMPLE_MESSAGE_ID = "4f1c2f7e-9a53-4d8e-b1a2-3c4d5e6f7a8b"
SAMPLE_FAILED_WAMID = "wamid.HBgLMzQ2MDAwMDAwMDAVAgARGBJGQUlMRUQxMjM0NTY3ODkwAA=="


def sample(name: str) -> bytes:
    """A sample body from ../shared/samples/webhooks, byte for byte."""
    return (SAMPLES / name).read_bytes()


def sample_names() -> list[str]:
    """Every sample body's file name."""
    return sorted(p.name for p in SAMPLES.glob("*.json"))


def status(
    wamid: str,
    word: str,
    ts: int,
    *,
    callback: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    pricing: dict[str, Any] | None = None,
    conversation: dict[str, Any] | None = None,
    recipient: str = "34612345678",
) -> dict[str, Any]:
    """One status object as Meta shapes it."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": word,
        "timestamp": str(ts),
        "recipient_id": recipient,
    }
    if callback is not None:
        item["biz_opaque_callback_data"] = callback
    if errors is not None:
        item["errors"] = errors
    if pricing is not None:
        item["pricing"] = pricing
    if conversation is not None:
        item["conversation"] = conversation
    return item


UTILITY = {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
UNDELIVERABLE = [
    {
        "code": 131026,
        "title": "Message undeliverable",
        "message": "Message undeliverable",
        "error_data": {"details": "Receiver is incapable of receiving this message."},
    }
]


def value(
    *,
    statuses: Sequence[dict[str, Any]] | None = None,
    messages: Sequence[dict[str, Any]] | None = None,
    contacts: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A `messages` change value."""
    out: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "34910000000", "phone_number_id": "106540352242922"},
    }
    if statuses is not None:
        out["statuses"] = list(statuses)
    if messages is not None:
        out["messages"] = list(messages)
    if contacts is not None:
        out["contacts"] = list(contacts)
    return out


def envelope(*values: dict[str, Any], field: str = "messages") -> dict[str, Any]:
    """A whole webhook document: one entry, one change per value."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "102290129340398", "changes": [{"field": field, "value": v} for v in values]}
        ],
    }


def body_of(doc: dict[str, Any]) -> bytes:
    """The exact bytes to POST for `doc`."""
    return orjson.dumps(doc)


def statuses_body(*items: dict[str, Any]) -> bytes:
    """A body carrying these statuses in one change."""
    return body_of(envelope(value(statuses=items)))


def inbound_message(
    wamid: str,
    sender: str,
    kind: str,
    ts: int = T0 + 100,
    *,
    context: str | None = None,
    **content: Any,
) -> dict[str, Any]:
    """One inbound message object (`content` is the type's own part, e.g. text=...)."""
    item: dict[str, Any] = {"from": sender, "id": wamid, "timestamp": str(ts), "type": kind}
    item.update(content)
    if context is not None:
        item["context"] = {"from": "34910000000", "id": context}
    return item


def inbound_body(*messages: dict[str, Any], name: str | None = "Harinas Martín") -> bytes:
    """A body with these inbound messages and the sender's contact."""
    senders = sorted({m["from"] for m in messages})
    contacts = [{"profile": {"name": name}, "wa_id": s} if name else {"wa_id": s} for s in senders]
    return body_of(envelope(value(messages=messages, contacts=contacts)))


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    """Headers of a correctly signed JSON POST of `body`."""
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(secret, body)}


def unix(ts: int) -> datetime:
    """A Meta timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)


# --- rows ----------------------------------------------------------------------------------


def add_supplier(
    engine: Engine, phone: str = "+34612345678", *, tenant: str = "default", name: str = "Harinas"
) -> int:
    """A supplier row; returns its id."""
    with Session(engine) as session:
        supplier = Supplier(tenant_id=tenant, name=name, phone_e164=phone)
        session.add(supplier)
        session.commit()
        assert supplier.id is not None
        return supplier.id


def add_message(
    engine: Engine,
    *,
    wamid: str | None = None,
    status_: str = "accepted",
    message_id: str | None = None,
    tenant: str = "default",
    phone: str = "+34612345678",
    po_number: str | None = None,
    supplier_id: int | None = None,
    template_name: str | None = "po_notification",
) -> str:
    """An outbox row as the sender leaves it after Meta accepted it; returns its id."""
    message_id = message_id or new_id()
    now = datetime.now(UTC)
    values = {
        "id": message_id,
        "tenant_id": tenant,
        "whatsapp_message_id": wamid,
        "idempotency_key": f"test:{message_id}",
        "recipient_phone": phone,
        "message_type": "template",
        "status": status_,
        "template_name": template_name,
        "template_language": "es",
        "po_number": po_number,
        "supplier_id": supplier_id,
        "attempt_count": 1,
        "created_at": now,
        "updated_at": now,
    }
    # Core INSERT of just these columns: the test does not depend on other columns.
    with engine.begin() as conn:
        conn.execute(insert(MESSAGES).values(**values))
    return message_id


def message_row(engine: Engine, message_id: str) -> dict[str, Any]:
    """The message's row as a dict."""
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT * FROM whatsapp_messages WHERE id = :id"), {"id": message_id}
        ).one()
    out = dict(row._mapping)
    for name in ("sent_at", "delivered_at", "read_at", "failed_at", "updated_at"):
        out[name] = _aware(out[name])
    if out.get("billable") is not None:
        out["billable"] = bool(out["billable"])
    return out


def _aware(value: Any) -> datetime | None:
    """A time column as aware UTC, whatever the driver returned (SQLite gives text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def final_columns(row: dict[str, Any]) -> dict[str, Any]:
    """The columns status webhooks decide (what convergence tests compare)."""
    names = (
        "status", "sent_at", "delivered_at", "read_at", "failed_at", "error_code",
        "error_title", "error_message", "error_class", "pricing_category", "pricing_type",
        "pricing_model", "billable", "conversation_id", "conversation_origin",
        "whatsapp_message_id", "wa_id",
    )  # fmt: skip
    return {name: row[name] for name in names}


def timeline(engine: Engine, wamid: str) -> list[dict[str, Any]]:
    """The message_status_events rows of a wamid, in id order."""
    with engine.connect() as conn:
        rows = conn.execute(select(EVENTS).where(EVENTS.c.wamid == wamid).order_by(EVENTS.c.id))
        return [dict(r._mapping) for r in rows]


def journal(engine: Engine, *bodies: bytes, at: datetime | None = None) -> None:
    """Commit bodies to the journal as the webhook app would after checking them."""
    received = at or datetime.now(UTC)
    write_receipts(engine, [ReceiptIn(b, received, count_events(decode_body(b))) for b in bodies])


def journalled(engine: Engine) -> list[dict[str, Any]]:
    """Every acknowledged body: the receipts, then what still waits in the SQLite inbox
    (`applied` False for those). Keys: body, body_sha256, event_count, applied."""
    with engine.connect() as conn:
        rows = [
            {
                "body": r.body,
                "body_sha256": r.body_sha256,
                "event_count": r.event_count,
                "applied": r.applied_at is not None,
            }
            for r in conn.execute(text("SELECT * FROM webhook_receipts ORDER BY id"))
        ]
    stored = {r["body_sha256"] for r in rows}
    for w in waiting_receipts(engine):
        if w.body_sha256 not in stored:
            stored.add(w.body_sha256)
            rows.append(
                {
                    "body": w.body,
                    "body_sha256": w.body_sha256,
                    "event_count": w.event_count,
                    "applied": False,
                }
            )
    return rows


def journal_table(engine: Engine) -> tuple[Engine, str]:
    """Where the webhook app commits bodies: the SQLite inbox once it exists, else the
    receipts table (PostgreSQL)."""
    inbox = open_inbox(engine, create=True)  # SQLite files only; None for PostgreSQL
    if inbox is None:
        return engine, "webhook_receipts"
    return inbox.engine, INBOX.name


#: StatusReport counters of events naming the wrong business number
NUMBER = ("wrong_number",)


def apply_all(engine: Engine, *, now: datetime | None = None, **kwargs: Any) -> ApplyReport:
    """Run the applier until nothing is left, then one sweep; the summed report. `now` is
    the sweep's clock (the current time unless the test sets it)."""
    total = ApplyReport()
    while True:
        report = apply_next_batch(engine, **kwargs)
        if not report.did_work:
            break
        total.receipts += report.receipts
        total.failed_receipts += report.failed_receipts
        total.issues += report.issues
        total.events.update(report.events)
        for name in ("applied", "duplicates", "held", "conflicts", "messages_changed", *NUMBER):
            setattr(
                total.statuses, name, getattr(total.statuses, name) + getattr(report.statuses, name)
            )
        for name in ("stored", "duplicates", "matched_suppliers", "acknowledgements", "held"):
            setattr(
                total.inbound, name, getattr(total.inbound, name) + getattr(report.inbound, name)
            )
    swept = sweep_held(engine, now=now)
    total.statuses.applied += swept.statuses.applied
    return total


# --- the app as a real process -------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WebhookProcess:
    """The webhook app as its own OS process (`wanotify webhook`, or uvicorn with workers)."""

    def __init__(
        self,
        database_url: str,
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            **live_env(WHATSAPP_APP_SECRET=SECRET, WHATSAPP_WEBHOOK_VERIFY_TOKEN=VERIFY_TOKEN),
            "WEBHOOK_HOST": "127.0.0.1",
            "WEBHOOK_PORT": str(self.port),
            "WANOTIFY_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self, timeout: float = 60.0) -> WebhookProcess:
        """Start the process and wait until its health route answers."""
        argv = [sys.executable, "-m", "core.cli", "webhook", "--workers", str(self.workers)]
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            argv, env=self.env, cwd=ROOT, stdout=self._log, stderr=self._log, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"webhook app exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + HEALTH_PATH, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("webhook app did not become ready")

    def __enter__(self) -> WebhookProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kill(self) -> None:
        """SIGKILL the whole process group (uvicorn's workers too): no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self._close_log()

    def stop(self) -> None:
        """SIGTERM (graceful), SIGKILL after 30 s."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def _close_log(self) -> None:
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def health(self) -> dict[str, Any]:
        """The health route's JSON."""
        result: dict[str, Any] = httpx.get(self.url + HEALTH_PATH, timeout=10).json()
        return result

    def wait_applied(self, timeout: float = 60.0) -> dict[str, Any]:
        """Poll health until the backlog is 0; returns the last reading."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            if health["backlog"] == 0 or time.monotonic() > deadline:
                return health
            time.sleep(0.1)


def post_all(url: str, bodies: Iterable[bytes], secret: str = SECRET) -> list[int]:
    """POST each signed body in turn; the status codes."""
    with httpx.Client(timeout=30) as client:
        return [
            client.post(url + WEBHOOK_PATH, content=b, headers=signed(b, secret)).status_code
            for b in bodies
        ]


def dumps(doc: Any) -> str:
    """Compact JSON text (for error messages)."""
    return json.dumps(doc, separators=(",", ":"))[:200]
