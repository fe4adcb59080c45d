"""The webhook inbox: on SQLite, where the webhook app commits bodies before answering 200.

SQLite has one write lock per file. When the webhook app journalled into the main file,
every acknowledgement waited for the applier's batch transaction to finish, and at
Meta's peak that wait, not the commit, was the latency. So on SQLite the app commits
each verified body to an inbox file of its own beside the database
(`<database>-webhook-inbox`), which only webhook processes write. The applier — another
process, see `core.webhooks.applier_process` — moves inbox rows into `webhook_receipts`
inside its own batch transaction on the main file and advances `webhook_inbox_progress`
in that same transaction, so each row is taken exactly once whatever crashes when.

The inbox is a queue, not a record: rows already taken are pruned after a while (the
receipt in the main database is the record). Its schema is created here, not by Alembic:
it holds nothing that outlives a restart's worth of traffic. Each file carries a random
identity, so a new inbox file (deleted, restored, moved) starts from its first row
instead of being skipped up to an older file's progress. PostgreSQL has row locks and
needs none of this: the app journals straight into `webhook_receipts` there.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import sqlite

from core.db import get_engine, is_sqlite
from core.models.events import WebhookInboxProgress
from core.models.types import UTCDateTime, utcnow
from core.webhooks.checkpoint import Checkpointer, restart_if_large, start_checkpointer
from core.webhooks.journal import ReceiptIn
from core.webhooks.sql import RECEIPTS, insert_ignoring

log = logging.getLogger(__name__)

#: How long a taken row stays in the inbox before it is pruned (health reads rely on it).
KEEP_TAKEN = timedelta(seconds=60)
#: Seconds between prunes (each runs inside a journal commit).
PRUNE_EVERY = 5.0
SUFFIX = "-webhook-inbox"

_metadata = MetaData()
INBOX = Table(
    "webhook_inbox",
    _metadata,
    # AUTOINCREMENT: an id is never reused after pruning, so progress stays meaningful.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("body", Text(), nullable=False),
    Column("event_count", Integer, nullable=False),
    sqlite_autoincrement=True,
)
IDENTITY = Table("webhook_inbox_identity", _metadata, Column("id", String(36), primary_key=True))
PROGRESS: Table = WebhookInboxProgress.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Inbox:
    """An open inbox file: its engine and the identity progress is recorded under."""

    engine: Engine
    identity: str

    @property
    def path(self) -> str:
        """The inbox file's path."""
        return str(self.engine.url.database)


@dataclass(frozen=True, slots=True)
class InboxBacklog:
    """Inbox rows the applier has not taken yet."""

    count: int = 0
    oldest_at: datetime | None = None
    last_at: datetime | None = None  # the newest row of the inbox, taken or not


_open: dict[str, Inbox] = {}
_open_lock = threading.Lock()


def inbox_path(main: Engine) -> Path | None:
    """Where `main`'s inbox file lives; None when it has none (PostgreSQL, in-memory)."""
    database = main.url.database
    if not is_sqlite(main) or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None  # URI filenames (shared in-memory databases in tests): no inbox
    return Path(database).with_name(Path(database).name + SUFFIX)


def open_inbox(main: Engine, *, create: bool) -> Inbox | None:
    """`main`'s inbox, created if `create` (the webhook app) or None if it does not exist
    (readers: nothing was ever received through one) or cannot have one."""
    path = inbox_path(main)
    if path is None:
        return None
    key = str(path.resolve())
    with _open_lock:
        known = _open.get(key)
        if known is not None and path.exists():
            return known
        if not create and not path.exists():
            return None
        engine = get_engine(f"sqlite:///{path}")
        inbox = Inbox(engine, _ensure_schema(engine))
        _open[key] = inbox
        return inbox


def _ensure_schema(engine: Engine) -> str:
    with engine.begin() as conn:
        _metadata.create_all(conn, checkfirst=True)
        identity = conn.execute(select(IDENTITY.c.id)).scalar()
        if identity is None:
            identity = str(uuid.uuid4())
            conn.execute(insert(IDENTITY).values(id=identity))
    return str(identity)


class InboxWriter:
    """The webhook app's journal writer on SQLite: append bodies, now and then prune.

    The inbox file is opened (created) on the first write, so the app starts even while
    the database directory is unavailable and answers 503 until it is back; from then
    on its WAL is checkpointed by a background thread, not inside the commits."""

    def __init__(self, main: Engine) -> None:
        self._main = main
        self._inbox: Inbox | None = None
        self._checkpointer: Checkpointer | None = None
        self._next_prune = time.monotonic() + PRUNE_EVERY

    def __call__(self, receipts: Sequence[ReceiptIn]) -> None:
        """Commit `receipts` to the inbox in one transaction (prune taken rows with them)."""
        inbox = self._open()
        rows = [
            {
                "received_at": r.received_at,
                "body_sha256": r.sha256,
                "body": r.body.decode("utf-8"),
                "event_count": r.event_count,
            }
            for r in receipts
        ]
        prune_upto = self._prune_point(inbox)
        with inbox.engine.begin() as conn:
            conn.execute(insert(INBOX), rows)
            if prune_upto is not None:
                _prune(conn, prune_upto)
        restart_if_large(inbox.engine)

    def close(self) -> None:
        """Stop the checkpoint thread (after the last write)."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None

    def _open(self) -> Inbox:
        inbox = open_inbox(self._main, create=True)
        if inbox is None:
            raise RuntimeError("this database has no webhook inbox (not a SQLite file)")
        if inbox is not self._inbox:
            self._inbox = inbox
            if self._checkpointer is None:
                self._checkpointer = start_checkpointer(inbox.engine)
        return inbox

    def _prune_point(self, inbox: Inbox) -> int | None:
        now = time.monotonic()
        if now < self._next_prune:
            return None
        self._next_prune = now + PRUNE_EVERY
        try:
            with self._main.connect() as conn:
                return taken_upto(conn, inbox)
        except Exception as exc:  # the main database is busy or gone: prune next time
            log.debug("inbox prune skipped: %s", type(exc).__name__)
            return None


def _prune(conn: Connection, taken: int) -> None:
    cutoff = utcnow() - KEEP_TAKEN
    conn.execute(delete(INBOX).where(INBOX.c.id <= taken, INBOX.c.received_at < cutoff))


def taken_upto(conn: Connection, inbox: Inbox) -> int:
    """The last inbox row the applier has taken (0 before the first), read on `main`."""
    value = conn.execute(
        select(PROGRESS.c.last_id).where(PROGRESS.c.inbox_id == inbox.identity)
    ).scalar()
    return int(value or 0)


def take_into_receipts(conn: Connection, inbox: Inbox, max_receipts: int) -> int:
    """Inside the applier's write transaction on the main database: move the next inbox
    rows (up to `max_receipts`) into `webhook_receipts` and advance the progress with
    them, so a rollback puts them back. Returns the inbox rows taken (retries of a body
    already received are taken but not stored again)."""
    after = taken_upto(conn, inbox)
    with inbox.engine.connect() as source:
        rows = source.execute(
            select(
                INBOX.c.id,
                INBOX.c.received_at,
                INBOX.c.body_sha256,
                INBOX.c.body,
                INBOX.c.event_count,
            )
            .where(INBOX.c.id > after)
            .order_by(INBOX.c.id)
            .limit(max_receipts)
        ).all()
    if not rows:
        return 0
    conn.execute(  # a retry of a body stored already (or earlier in `rows`) is skipped
        insert_ignoring(conn, RECEIPTS, ["body_sha256"]),
        [
            {
                "received_at": row.received_at,
                "body_sha256": row.body_sha256,
                "body": row.body,
                "event_count": row.event_count,
                "apply_attempts": 0,
            }
            for row in rows
        ],
    )
    values = {"last_id": int(rows[-1].id), "updated_at": utcnow()}
    conn.execute(
        sqlite.insert(PROGRESS)
        .values(inbox_id=inbox.identity, **values)
        .on_conflict_do_update(index_elements=["inbox_id"], set_=values)
    )
    return len(rows)


def inbox_backlog(main_conn: Connection, inbox: Inbox) -> InboxBacklog:
    """The inbox rows not taken yet. Read the progress on `main_conn` before anything else
    of the main database: taken rows stay in the inbox a while, so a move between the
    two reads can only make a row count twice, never zero times."""
    after = taken_upto(main_conn, inbox)
    with inbox.engine.connect() as conn:
        count, oldest = conn.execute(
            select(func.count(), func.min(INBOX.c.received_at)).where(INBOX.c.id > after)
        ).one()
        last = conn.execute(
            select(INBOX.c.received_at).order_by(INBOX.c.id.desc()).limit(1)
        ).scalar()
    return InboxBacklog(int(count), oldest, last)


@dataclass(frozen=True, slots=True)
class WaitingReceipt:
    """An acknowledged body still in the inbox, not yet in `webhook_receipts`."""

    received_at: datetime
    body_sha256: str
    body: str
    event_count: int


def waiting_receipts(main: Engine) -> list[WaitingReceipt]:
    """The inbox rows the applier has not taken (empty without an inbox): with
    `webhook_receipts` they are everything acknowledged (for audits and benchmarks)."""
    inbox = open_inbox(main, create=False)
    if inbox is None:
        return []
    with main.connect() as conn:
        after = taken_upto(conn, inbox)
    with inbox.engine.connect() as conn:
        rows = conn.execute(
            select(INBOX.c.received_at, INBOX.c.body_sha256, INBOX.c.body, INBOX.c.event_count)
            .where(INBOX.c.id > after)
            .order_by(INBOX.c.id)
        )
        return [WaitingReceipt(*row) for row in rows]
