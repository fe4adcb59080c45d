"""The webhook pipeline of one process: check, journal, acknowledge; then apply in batches.

`WebhookRuntime` is what the HTTP layer calls. The event loop never waits on a database,
and the applier runs in a process of its own (`core.webhooks.applier_process`), so
folding events never takes this process's interpreter lock from the requests:

- **SQLite file** (the embedded default): bodies are committed to the inbox file beside
  the database (`core.webhooks.inbox`) on a journal thread, so an acknowledgement never
  waits behind the applier's write lock on the main file.
- **PostgreSQL** (row locks, no file lock): bodies go straight into `webhook_receipts`
  on a journal thread.

An in-memory SQLite database (tests, experiments) cannot be shared with another process:
its applier runs here, on a database thread of its own (so does any database with
`ApplierTuning(separate_process=False)`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Engine

from core.db import get_engine, is_sqlite
from core.models.types import utcnow
from core.settings import Settings
from core.webhooks.applier import Applier, ApplierTuning, StepResult
from core.webhooks.applier_process import ApplierJob, ApplierProcess
from core.webhooks.checkpoint import Checkpointer, start_checkpointer
from core.webhooks.health import WebhookHealth, read_health
from core.webhooks.inbox import InboxWriter, inbox_path
from core.webhooks.journal import (
    Journal,
    JournalUnavailable,
    ReceiptIn,
    ReceiptWriter,
    write_receipts,
)
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
        self._inbox_writer: InboxWriter | None = None  # SQLite: bodies go to the inbox file
        self.applier_process: ApplierProcess | None = None  # the applier's own process
        self._db_executor: ThreadPoolExecutor | None = None  # the in-process applier's
        self._journal_executor: ThreadPoolExecutor | None = None
        self._journal: Journal | None = None
        self._applier: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._checkpointer: Checkpointer | None = None  # in-process applier on SQLite

    @property
    def max_body_bytes(self) -> int:
        """The largest body accepted (Meta's reach 3 MB)."""
        return self.settings.webhook_max_body_bytes

    async def start(self) -> None:
        """Open the journal and start the applier (a process of its own, see above)."""
        self._stopping = False
        self._inbox_writer = InboxWriter(self.engine) if inbox_path(self.engine) else None
        write: ReceiptWriter = self._inbox_writer or partial(write_receipts, self.engine)
        # PostgreSQL: two commits in flight (one filling while the other waits for its
        # WAL flush); the SQLite inbox has one writer.
        writers = 1 if self._inbox_writer is not None or is_sqlite(self.engine) else 2
        self._journal_executor = ThreadPoolExecutor(
            max_workers=writers, thread_name_prefix="webhook-journal"
        )
        self._journal = Journal(
            write, self._journal_executor, on_commit=self._committed, concurrency=writers
        )
        in_memory = is_sqlite(self.engine) and self._inbox_writer is None  # no file to share
        if self.tuning.separate_process and not in_memory:
            await self._start_applier_process()
        else:
            self._start_applier_here()
        if self.settings.app_secret is None:
            log.error(
                "WHATSAPP_APP_SECRET is not set: webhook events will be refused (403/503) "
                "until it is"
            )

    async def _start_applier_process(self) -> None:
        job = ApplierJob(
            self.engine.url.render_as_string(hide_password=False),
            self.settings.default_tenant,
            self.tuning,
        )
        self.applier_process = ApplierProcess(
            job,
            on_report=self.metrics.count_applied,
            on_error=lambda _reason: self.metrics.apply_errors.inc(),
        )
        await self.applier_process.start()

    def _start_applier_here(self) -> None:
        self._db_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-db")
        self._checkpointer = start_checkpointer(self.engine)  # SQLite: no fsyncs in commits
        applier = Applier(
            self.engine,
            self.tuning,
            self.settings.default_tenant,
            restart_wal=self._checkpointer is not None,
        )
        self._applier = asyncio.create_task(self._apply_forever(applier), name="webhook-applier")

    async def stop(self) -> None:
        """Finish the commits and the batch in flight, then stop (unapplied work stays)."""
        self._stopping = True
        self._wake.set()
        if self._applier is not None:
            await self._applier
            self._applier = None
        if self.applier_process is not None:
            await self.applier_process.stop()
            self.applier_process = None
        if self._journal is not None:
            await self._journal.close()
        for executor in (self._db_executor, self._journal_executor):
            if executor is not None:
                executor.shutdown(wait=True)
        self._db_executor = self._journal_executor = None
        if self._inbox_writer is not None:
            self._inbox_writer.close()
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
        if self.applier_process is not None:
            self.applier_process.wake()

    async def _apply_forever(self, applier: Applier) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.5
        while not self._stopping:
            try:
                result: StepResult = await loop.run_in_executor(self._db_executor, applier.step)
            except Exception as exc:
                self.metrics.apply_errors.inc()
                log.warning("webhook applier: %s; retrying in %.1f s", type(exc).__name__, delay)
                log.debug("webhook applier error", exc_info=True)
                await self._sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            for report in result.reports:
                self.metrics.count_applied(report)
            if result.batch.more_waiting:
                await asyncio.sleep(0)  # let the requests waiting for the loop go first
                continue
            await self._sleep(self.tuning.idle_poll)  # until the next journal commit

    async def _sleep(self, seconds: float) -> None:
        """Sleep until woken by a journal commit (or shutdown), at most `seconds`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()
