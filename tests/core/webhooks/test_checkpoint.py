"""`core.webhooks.checkpoint`: WAL checkpoints moved off the commit path, WAL still bounded."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, create_engine

from core.db import is_sqlite
from core.webhooks.checkpoint import (
    Checkpointer,
    checkpoint,
    restart_if_large,
    take_over_checkpoints,
    wal_bytes,
)
from core.webhooks.journal import ReceiptIn, write_receipts


@pytest.fixture
def sqlite_engine(engine: Engine) -> Engine:
    if not is_sqlite(engine):
        pytest.skip("WAL checkpoints are SQLite's")
    return engine


def fill(engine: Engine, count: int, tag: str) -> None:
    pad = b"x" * 2000
    for start in range(0, count, 100):
        write_receipts(
            engine,
            [
                ReceiptIn(b'{"entry": [], "n": "%s%d", "p": "%s"}' % (tag.encode(), n, pad),
                          datetime.now(UTC), 0)
                for n in range(start, min(count, start + 100))
            ],
        )  # fmt: skip


def past_automatic_checkpoint(engine: Engine) -> int:
    """Receipts (about 2 KB each) that fill more WAL frames than SQLite's automatic
    checkpoint lets grow (1,000 pages, whatever the file's page size)."""
    with engine.connect() as conn:
        page = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
    return 1000 * page // 2000 * 3 // 2


def test_automatic_checkpoints_are_turned_off_on_the_engines_connections(
    sqlite_engine: Engine,
) -> None:
    assert take_over_checkpoints(sqlite_engine)
    assert take_over_checkpoints(sqlite_engine)  # idempotent
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    with sqlite_engine.connect() as conn:
        page = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
    fill(sqlite_engine, past_automatic_checkpoint(sqlite_engine), "a")
    assert wal_bytes(sqlite_engine) > 1000 * page  # nothing checkpointed on commit


def test_a_checkpoint_copies_every_frame_and_the_wal_then_restarts(sqlite_engine: Engine) -> None:
    take_over_checkpoints(sqlite_engine)
    fill(sqlite_engine, past_automatic_checkpoint(sqlite_engine), "b")
    busy, frames, copied = checkpoint(sqlite_engine) or (1, 0, 0)
    assert busy == 0 and frames > 1000 and copied == frames
    size = wal_bytes(sqlite_engine)
    fill(sqlite_engine, 10, "c")  # the next write starts the WAL from its beginning
    _, frames_after, _ = checkpoint(sqlite_engine) or (1, 0, 0)
    assert frames_after < 50
    assert wal_bytes(sqlite_engine) <= size


def test_restart_if_large(sqlite_engine: Engine) -> None:
    take_over_checkpoints(sqlite_engine)
    fill(sqlite_engine, 500, "d")
    assert not restart_if_large(sqlite_engine, restart_bytes=1 << 40)
    assert restart_if_large(sqlite_engine, restart_bytes=1024)


def test_the_background_thread_checkpoints_while_writes_go_on(sqlite_engine: Engine) -> None:
    take_over_checkpoints(sqlite_engine)
    checkpointer = Checkpointer(sqlite_engine, interval=0.05)
    checkpointer.start()
    try:
        fill(sqlite_engine, 2000, "e")
        time.sleep(0.3)
    finally:
        checkpointer.stop()  # ends with a last checkpoint
    _, frames, copied = checkpoint(sqlite_engine) or (1, 0, 0)
    assert frames == copied


def test_postgresql_is_left_alone() -> None:
    pg = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    assert not take_over_checkpoints(pg)
    assert checkpoint(pg) is None and not restart_if_large(pg, restart_bytes=0)
    Checkpointer(pg).start()  # no thread, no connection attempt
