"""The webhook pipeline of one process: check, journal, acknowledge; then apply in batches.

`WebhookRuntime` is what the HTTP layer calls. On SQLite it owns one database thread that
does all of this process's writes in turn — journal commits and applier batches — so the
file sees a single writer per process; on PostgreSQL (row locks, no file lock) journal
commits get a thread of their own, so they never wait behind an applier batch. Either
way the event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import Engine

from core.db import get_engine, is_sqlite
from core.models.types import utcnow
from core.settings import Settings
from core.webhooks.apply import DEFAULT_HOLD_GRACE, ApplyReport, apply_next_batch, sweep_held
from core.webhooks.checkpoint import (
    RESTART_BYTES,
    Checkpointer,
    checkpoint,
    take_over_checkpoints,
    wal_bytes,
)
from core.webhooks.health import WebhookHealth, read_health
from core.webhooks.journal import Journal, JournalUnavailable, ReceiptIn
from core.webhooks.metrics import WebhookMetrics
from core.webhooks.parse import InvalidBody, count_events, decode_body
from core.webhooks.signature import SignatureCheck, check_signature

log = logging.getLogger(__name__)

#: Bodies larger than this are decoded off the event loop.
_BIG_BODY = 256 * 1024
_MAX_CHALLENGE = 512


@dataclass(frozen=True, slots=True)
class Answer:
    """The HTTP answer to one webhook POST."""

    status_code: int
    reason: str  # "accepted" or the rejection reason (a metrics label)
    message: str  # plain text for the response body


@dataclass(frozen=True)
class ApplierTuning:
    """How the applier batches and how long statuses wait for their message."""

    max_receipts: int = 200
    max_events: int = 400
    hold_grace: timedelta = DEFAULT_HOLD_GRACE
    sweep_interval: float = 1.0  # seconds between sweeps of held statuses
    unmatched_interval: float = 60.0  # seconds between re-checks of unmatched ones
    idle_poll: float = 1.0  # seconds between looks for receipts other processes wrote


class WebhookRuntime:
    """Receive, journal and apply Meta's webhooks for one process."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        tuning: ApplierTuning | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine or get_engine(settings.database_url)
        self.tuning = tuning or ApplierTuning()
        self.metrics = WebhookMetrics()
        self._executor: ThreadPoolExecutor | None = None  # the applier's (and SQLite's)
        self._journal_executor: ThreadPoolExecutor | None = None  # PostgreSQL only
        self._journal: Journal | None = None
        self._applier: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._checkpointer: Checkpointer | None = None

    @property
    def max_body_bytes(self) -> int:
        """The largest body accepted (Meta's reach 3 MB)."""
        return self.settings.webhook_max_body_bytes

    async def start(self) -> None:
        """Start the database thread, the journal and the applier."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-db")
        journal_executor = self._executor
        if not is_sqlite(self.engine):
            self._journal_executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="webhook-journal"
            )
            journal_executor = self._journal_executor
        if take_over_checkpoints(self.engine):  # SQLite: no fsync stalls inside commits
            self._checkpointer = Checkpointer(self.engine)
            self._checkpointer.start()
        self._journal = Journal(self.engine, journal_executor, on_commit=self._committed)
        self._stopping = False
        self._applier = asyncio.create_task(self._apply_forever(), name="webhook-applier")
        if self.settings.app_secret is None:
            log.error(
                "WHATSAPP_APP_SECRET is not set: webhook events will be refused (403/503) "
                "until it is"
            )

    async def stop(self) -> None:
        """Finish the commits and the batch in flight, then stop (unapplied work stays)."""
        self._stopping = True
        self._wake.set()
        if self._applier is not None:
            await self._applier
        if self._journal is not None:
            await self._journal.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self._journal_executor is not None:
            self._journal_executor.shutdown(wait=True)
            self._journal_executor = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None

    def verify_subscription(
        self, mode: str | None, token: str | None, challenge: str | None
    ) -> str | None:
        """Meta's subscription check: the challenge to echo, or None (answer 403)."""
        expected = self.settings.verify_token
        if mode != "subscribe" or not token or not expected or challenge is None:
            return None
        if len(challenge) > _MAX_CHALLENGE:
            return None
        if not hmac.compare_digest(token.encode(), expected.encode()):
            return None
        return challenge

    def reject(self, reason: str, status_code: int, message: str) -> Answer:
        """Count and build a refusal (for checks the HTTP layer makes itself)."""
        self.metrics.count_rejected(reason)
        log.info("webhook refused (%s): %s", reason, message)
        return Answer(status_code, reason, message)

    async def receive(self, body: bytes, signature: str | None) -> Answer:
        """Check a POSTed body and commit it to the journal; 200 only once it is durable."""
        secret = self.settings.app_secret
        if secret is None:
            return self.reject("no_app_secret", 503, "webhook signing secret not configured")
        check = check_signature(secret, body, signature)
        if check is not SignatureCheck.OK:
            return self.reject(check.value, 401, "invalid signature")
        try:
            if len(body) > _BIG_BODY:
                doc = await asyncio.to_thread(decode_body, body)
            else:
                doc = decode_body(body)
        except InvalidBody as exc:
            return self.reject(exc.reason, 400, str(exc))
        if self._journal is None:
            return self.reject("not_started", 503, "webhook app is starting")
        try:
            await self._journal.append(ReceiptIn(body, utcnow(), count_events(doc)))
        except JournalUnavailable as exc:
            return self.reject("journal_unavailable", 503, str(exc))
        self.metrics.count_accepted()
        return Answer(200, "accepted", "EVENT_RECEIVED")

    async def health(self) -> WebhookHealth:
        """Read the pipeline's health (off the event loop)."""
        return await asyncio.to_thread(read_health, self.engine)

    async def metrics_text(self) -> bytes:
        """Prometheus text, with the gauges refreshed from the database."""
        self.metrics.observe_health(await self.health())
        return self.metrics.render()

    async def wait_until_applied(self, within: float) -> bool:
        """Wait until nothing acknowledged is left unapplied; False if `within` s pass first."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            health = await self.health()
            if health.database_ok and health.backlog == 0:
                return True
            if asyncio.get_running_loop().time() >= deadline:
                return False
            self._wake.set()
            await asyncio.sleep(0.05)

    def _committed(self, count: int) -> None:
        self.metrics.journal_batch.observe(count)
        self._wake.set()

    async def _run_db(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(func, *args, **kwargs))

    async def _apply_forever(self) -> None:
        loop = asyncio.get_running_loop()
        tuning = self.tuning
        delay = 0.5
        next_sweep = loop.time()
        next_unmatched = loop.time() + tuning.unmatched_interval
        while not self._stopping:
            try:
                report: ApplyReport = await self._run_db(
                    apply_next_batch,
                    self.engine,
                    max_receipts=tuning.max_receipts,
                    max_events=tuning.max_events,
                    default_tenant=self.settings.default_tenant,
                )
                self.metrics.count_applied(report)
                if self._checkpointer is not None and wal_bytes(self.engine) > RESTART_BYTES:
                    await self._run_db(checkpoint, self.engine)  # lets the WAL restart
                if loop.time() >= next_sweep:
                    recheck = loop.time() >= next_unmatched
                    swept: ApplyReport = await self._run_db(
                        sweep_held,
                        self.engine,
                        grace=tuning.hold_grace,
                        include_unmatched=recheck,
                    )
                    self.metrics.count_applied(swept)
                    next_sweep = loop.time() + tuning.sweep_interval
                    if recheck:
                        next_unmatched = loop.time() + tuning.unmatched_interval
            except Exception as exc:
                self.metrics.apply_errors.inc()
                log.warning("webhook applier: %s; retrying in %.1f s", type(exc).__name__, delay)
                log.debug("webhook applier error", exc_info=True)
                await self._sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            if report.did_work:
                await asyncio.sleep(0)  # let waiting journal commits take the thread first
                continue
            await self._sleep(tuning.idle_poll)

    async def _sleep(self, seconds: float) -> None:
        """Sleep until woken by a journal commit (or shutdown), at most `seconds`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()
