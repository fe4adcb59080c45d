"""`core.webhooks.journal`: receipts committed before `append` returns, many per commit."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial

import pytest
from sqlalchemy import Engine, text

from core.db import get_engine
from core.webhooks.journal import Journal, JournalUnavailable, ReceiptIn, write_receipts
from tests.core.webhooks.helpers import T0, status, statuses_body


def stored(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        return [
            (r.body, r.event_count)
            for r in conn.execute(
                text("SELECT body, event_count FROM webhook_receipts ORDER BY id")
            )
        ]


def receipt(n: int) -> ReceiptIn:
    return ReceiptIn(statuses_body(status(f"wamid.J{n}", "sent", T0)), datetime.now(UTC), 1)


def test_write_receipts_stores_bytes_exactly_and_once(engine: Engine) -> None:
    body = b'{"entry": [], "name": "Harinas Mart\xc3\xadn"}'
    write_receipts(engine, [ReceiptIn(body, datetime.now(UTC), 0)])
    write_receipts(engine, [ReceiptIn(body, datetime.now(UTC), 0), receipt(1)])
    rows = stored(engine)
    assert len(rows) == 2
    assert rows[0][0].encode() == body


async def test_appends_return_after_commit_and_share_commits(engine: Engine) -> None:
    batches: list[int] = []
    with ThreadPoolExecutor(max_workers=1) as executor:
        journal = Journal(partial(write_receipts, engine), executor, on_commit=batches.append)
        await asyncio.gather(*(journal.append(receipt(n)) for n in range(300)))
        await journal.close()
    assert len(stored(engine)) == 300  # every append returned only once its row was durable
    assert sum(batches) == 300
    assert len(batches) < 300  # group commit: fewer transactions than receipts


async def test_two_commits_in_flight_lose_nothing_and_store_a_retry_once(
    engine: Engine,
) -> None:
    """concurrency=2 (PostgreSQL's journal): a batch is written while the one before
    waits for its commit; every append returns durable, a body sent twice is one row."""
    in_flight, most = 0, 0
    guard = threading.Lock()
    overlapped = threading.Event()

    def slow_write(receipts: Sequence[ReceiptIn]) -> None:
        nonlocal in_flight, most
        with guard:
            in_flight += 1
            most = max(most, in_flight)
            if in_flight == 2:
                overlapped.set()
        try:
            # A slow WAL flush: the first commit lasts until the next batch is being
            # written (however busy the machine), or 10 s if the journal waits for it.
            overlapped.wait(timeout=10)
            write_receipts(engine, receipts)
        finally:
            with guard:
                in_flight -= 1

    retried = receipt(7)
    with ThreadPoolExecutor(max_workers=2) as executor:
        journal = Journal(slow_write, executor, concurrency=2)
        first = [asyncio.create_task(journal.append(receipt(n))) for n in range(100)]
        await asyncio.sleep(0.01)  # the first batch is being written
        await asyncio.gather(*first, *(journal.append(receipt(n)) for n in range(100, 200)),
                             journal.append(retried))  # fmt: skip
        await journal.close()
    assert most == 2  # two commits overlapped
    assert len(stored(engine)) == 200  # receipt(7) twice: stored once


async def test_an_unwritable_database_fails_the_append(tmp_path) -> None:
    broken = get_engine(f"sqlite:///{tmp_path / 'no-schema.db'}")  # no tables at all
    with ThreadPoolExecutor(max_workers=1) as executor:
        journal = Journal(partial(write_receipts, broken), executor)
        with pytest.raises(JournalUnavailable):
            await journal.append(receipt(1))
        await journal.close()


def test_the_digest_is_of_the_exact_bytes() -> None:
    a = receipt(1)
    b = ReceiptIn(a.body + b" ", a.received_at, 1)
    assert a.sha256 != b.sha256 and len(a.sha256) == 64
