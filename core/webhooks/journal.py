"""The journal: each webhook body is committed before its 200 goes out, many per transaction.

Requests that arrive while a commit is in flight wait together and share the next one
(group commit), so the database sees one short transaction per batch rather than one per
request — that is how one SQLite file keeps up with Meta's peak rate with low latency.
Writes run on the single database thread the caller provides, never on the event loop,
into `webhook_receipts` (`write_receipts`) or, on SQLite, the inbox file (`core.webhooks.inbox`).
A body Meta sends again (a retry) is stored once: its SHA-256 is unique.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from core.webhooks.sql import RECEIPTS, array_rows, insert_ignoring

log = logging.getLogger(__name__)

#: Upper bounds of one group commit.
MAX_BATCH_RECEIPTS = 1000
MAX_BATCH_BYTES = 8 * 1024 * 1024


class JournalUnavailable(RuntimeError):
    """The receipt could not be committed (database down or full): do not acknowledge."""


@dataclass(frozen=True, slots=True)
class ReceiptIn:
    """A verified webhook body on its way into the journal."""

    body: bytes
    received_at: datetime
    event_count: int

    @property
    def sha256(self) -> str:
        """The body's SHA-256, the key Meta's retries of it collapse on."""
        return hashlib.sha256(self.body).hexdigest()


def write_receipts(engine: Engine, receipts: Sequence[ReceiptIn]) -> None:
    """Commit `receipts` in one transaction; bodies already stored are skipped."""
    rows = [
        {
            "received_at": r.received_at,
            "body_sha256": r.sha256,
            "body": r.body.decode("utf-8"),
            "event_count": r.event_count,
            "apply_attempts": 0,
        }
        for r in receipts
    ]
    # In key order: two commits in flight (see `Journal`) holding the same retried body
    # then wait on each other in one order only, never in a cycle.
    rows.sort(key=lambda row: str(row["body_sha256"]))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One statement for the batch (arrays in binary), not one per body.
            relation, arrays = array_rows(conn, RECEIPTS, list(rows[0]), rows)
            conn.exec_driver_sql(
                f"INSERT INTO {RECEIPTS.name} ({', '.join(rows[0])}) SELECT * FROM "  # noqa: S608
                f"{relation} ON CONFLICT (body_sha256) DO NOTHING",
                tuple(arrays),
            )
            return
        conn.execute(insert_ignoring(conn, RECEIPTS, ["body_sha256"]), rows)


#: Commits a batch of receipts in one transaction (`write_receipts` or an inbox's writer).
ReceiptWriter = Callable[[Sequence[ReceiptIn]], None]


class Journal:
    """Group-committing appender; `append` returns once the receipt is durable.

    `concurrency` commits may be in flight at once (each on a thread of `executor`,
    which needs that many): on PostgreSQL a batch then fills while the one before waits
    for its WAL flush, instead of waiting behind it, so a slow fsync on a busy disk
    delays one batch rather than every batch after it. A SQLite inbox takes one writer.
    """

    def __init__(
        self,
        write: ReceiptWriter,
        executor: Executor,
        *,
        on_commit: Callable[[int], None] | None = None,
        concurrency: int = 1,
    ) -> None:
        self._write = write
        self._executor = executor
        self._on_commit = on_commit
        self._concurrency = max(1, concurrency)
        self._queue: list[tuple[ReceiptIn, asyncio.Future[None]]] = []
        self._flushers: set[asyncio.Task[None]] = set()

    async def append(self, receipt: ReceiptIn) -> None:
        """Wait until `receipt` is committed; raise JournalUnavailable if it cannot be."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.append((receipt, done))
        if len(self._flushers) < self._concurrency:
            task = loop.create_task(self._flush())
            self._flushers.add(task)
        await done

    async def close(self) -> None:
        """Wait for the commits in flight (called on shutdown, after the last request)."""
        while self._flushers:
            running = list(self._flushers)
            await asyncio.shield(asyncio.gather(*running, return_exceptions=True))
            self._flushers.difference_update(running)

    async def _flush(self) -> None:
        try:
            await self._write_while_waiting()
        finally:
            # at once, not in a done callback: an append between this task's last look
            # at the queue and such a callback would find no flusher free to start
            task = asyncio.current_task()
            if task is not None:
                self._flushers.discard(task)

    async def _write_while_waiting(self) -> None:
        """Write batches while receipts wait (one flusher's life)."""
        loop = asyncio.get_running_loop()
        while self._queue:
            batch = self._next_batch()
            try:
                await loop.run_in_executor(self._executor, self._write, [r for r, _ in batch])
            except Exception as exc:
                log.error("webhook journal write failed: %s", type(exc).__name__)
                failure = JournalUnavailable("the webhook journal could not be written")
                for _, done in batch:
                    if not done.done():
                        done.set_exception(failure)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
            if self._on_commit is not None:
                self._on_commit(len(batch))

    def _next_batch(self) -> list[tuple[ReceiptIn, asyncio.Future[None]]]:
        size = 0
        count = 0
        for receipt, _ in self._queue:
            if count and (
                count >= MAX_BATCH_RECEIPTS or size + len(receipt.body) > MAX_BATCH_BYTES
            ):
                break
            size += len(receipt.body)
            count += 1
        batch, self._queue = self._queue[:count], self._queue[count:]
        return batch
