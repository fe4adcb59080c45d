"""SQL helpers the webhook modules share: table handles, insert-or-ignore, write transactions.

On SQLite a write transaction starts with `BEGIN IMMEDIATE`, so reading a row and writing
it back is atomic even when several processes share the file; on PostgreSQL the rows read
for writing are locked with `SELECT ... FOR UPDATE` by the callers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from core.db import is_sqlite
from core.models.events import (
    InboundMessage,
    MessageStatusEvent,
    PoAcknowledgement,
    WebhookReceipt,
)
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier
from core.models.templates import WhatsAppTemplate

RECEIPTS: Table = WebhookReceipt.__table__  # type: ignore[attr-defined]
EVENTS: Table = MessageStatusEvent.__table__  # type: ignore[attr-defined]
INBOUND: Table = InboundMessage.__table__  # type: ignore[attr-defined]
ACKS: Table = PoAcknowledgement.__table__  # type: ignore[attr-defined]
MESSAGES: Table = WhatsAppMessage.__table__  # type: ignore[attr-defined]
SUPPLIERS: Table = Supplier.__table__  # type: ignore[attr-defined]
TEMPLATES: Table = WhatsAppTemplate.__table__  # type: ignore[attr-defined]

#: Bound parameters per IN list: far below SQLite's and PostgreSQL's limits.
CHUNK = 500

T = TypeVar("T")


def insert_ignoring(conn: Connection, table: Table, unique: Sequence[str]) -> Insert:
    """`INSERT ... ON CONFLICT (unique) DO NOTHING` in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(unique))
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(unique))


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the write lock from its first statement on SQLite."""
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """`items` in lists of at most `size` (for IN lists and executemany)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def rowcount(result: Any) -> int:
    """Rows an UPDATE changed (0 when the driver cannot tell)."""
    return max(0, int(getattr(result, "rowcount", 0) or 0))
