"""SQL helpers the webhook modules share: table handles, insert-or-ignore, write transactions.

On SQLite a write transaction starts with `BEGIN IMMEDIATE`, so reading a row and writing
it back is atomic even when several processes share the file; on PostgreSQL the rows read
for writing are locked with `SELECT ... FOR UPDATE` by the callers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import Connection, DateTime, Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ClauseElement
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
from core.webhooks.parse import InvalidBody, ParsedPayload, decode_body, parse_payload

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


def parsed_receipts(
    conn: Connection, ids: Iterable[int]
) -> Iterator[tuple[int, datetime, ParsedPayload]]:
    """Each stored receipt of `ids` (its id and arrival) with its body parsed again;
    bodies that no longer parse are skipped. What held events are read back from: the
    timeline keeps no copy of the number an event named."""
    for batch in chunks(sorted(ids)):
        for receipt in conn.execute(
            select(RECEIPTS.c.id, RECEIPTS.c.body, RECEIPTS.c.received_at).where(
                RECEIPTS.c.id.in_(batch)
            )
        ):
            try:
                parsed = parse_payload(decode_body(receipt.body), receipt.received_at)
            except InvalidBody:
                continue
            yield receipt.id, receipt.received_at, parsed


def rowcount(result: Any) -> int:
    """Rows an UPDATE changed (0 when the driver cannot tell)."""
    return max(0, int(getattr(result, "rowcount", 0) or 0))


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement compiled once: its SQL, qmark order, defaults and which binds are times."""

    sql: str
    positions: tuple[str, ...] | None  # qmark order; None for named parameters
    defaults: dict[str, Any]
    times: frozenset[str]  # parameters bound to a DateTime column (converted here)


_COMPILED: dict[tuple[str, str], _Compiled] = {}


def _driver_value(value: Any, sqlite_: bool) -> Any:
    """A parameter as the driver takes it; times as `UTCDateTime` stores them."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: wanotify stores timezone-aware UTC times only")
        value = value.astimezone(UTC)
        if sqlite_:  # SQLAlchemy's SQLite DATETIME text, byte for byte
            return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return value


def _is_time(bind: Any) -> bool:
    """True for a parameter bound to a DateTime column (UTCDateTime included)."""
    affinity = getattr(bind.type, "_type_affinity", None)
    return isinstance(affinity, type) and issubclass(affinity, DateTime)


def _compile(
    conn: Connection, name: str, statement: ClauseElement, columns: Sequence[str] | None
) -> _Compiled:
    key = (name, conn.dialect.name)
    cached = _COMPILED.get(key)
    if cached is None:
        compiled = statement.compile(dialect=conn.dialect, column_keys=list(columns or ()))
        order = getattr(compiled, "positiontup", None)  # SQLCompiler: the qmark order
        positions = tuple(order) if getattr(compiled, "positional", False) and order else None
        binds = getattr(compiled, "binds", {})
        times = frozenset(p for p in compiled.params if p in binds and _is_time(binds[p]))
        cached = _Compiled(compiled.string, positions, dict(compiled.params), times)
        _COMPILED[key] = cached
    return cached


def _positional(compiled: _Compiled, rows: Sequence[Mapping[str, Any]], sqlite_: bool) -> list[Any]:
    positions = compiled.positions or ()
    if not all(p in rows[0] for p in positions) or len(positions) < 2:
        return [
            tuple(_driver_value(row.get(p, compiled.defaults.get(p)), sqlite_) for p in positions)
            for row in rows
        ]
    # The rows name every parameter (the applier's do): C-speed gathering, then only the
    # time parameters converted in Python.
    get = itemgetter(*positions)
    times = [i for i, p in enumerate(positions) if p in compiled.times]
    if not times:
        return [get(row) for row in rows]
    params: list[Any] = []
    for row in rows:
        values = list(get(row))
        for i in times:
            if values[i] is not None:
                values[i] = _driver_value(values[i], sqlite_)
        params.append(tuple(values))
    return params


def execute_many(
    conn: Connection,
    name: str,
    statement: ClauseElement,
    rows: Sequence[Mapping[str, Any]],
    *,
    columns: Sequence[str] | None = None,
) -> int:
    """executemany of `statement` (compiled once per dialect, cached under `name`) with
    parameters converted here, not row by row by SQLAlchemy: the applier writes thousands
    of rows a second and that per-row processing was a fifth of its CPU. Only for plain
    bound parameters (no IN lists); an INSERT names its `columns` (every row has them all).
    Returns the rows changed (0 if the driver cannot tell).
    """
    if not rows:
        return 0
    compiled = _compile(conn, name, statement, columns)
    sqlite_ = conn.dialect.name == "sqlite"
    if compiled.positions is not None:
        params = _positional(compiled, rows, sqlite_)
    else:
        params = [
            {p: _driver_value(row.get(p, v), sqlite_) for p, v in compiled.defaults.items()}
            for row in rows
        ]
    return rowcount(conn.exec_driver_sql(compiled.sql, params))


def _array_type(conn: Connection, table: Table, column: str) -> str:
    """The PostgreSQL array type of a column (`VARCHAR(36)[]`, `TIMESTAMP WITH TIME ZONE[]`)."""
    return f"{table.c[column].type.compile(dialect=conn.dialect)}[]"


def array_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str] | None = None,
    alias: str = "v",
) -> tuple[str, list[list[Any]]]:
    """PostgreSQL: `rows` as one relation, `unnest(%b::T[], ...) AS v(column, ...)`, and its
    parameters (one array per column, each value read from its row under `keys`, default
    the column names). A batch of rows then costs one statement, not one per row: one
    round trip, one plan, and a statement trigger fired once (migration 0025), with no
    parameter dict per row in Python. The arrays go in binary (`%b`): psycopg's text
    arrays test and quote every element in Python, five times the CPU."""
    quote = conn.dialect.identifier_preparer.quote
    types = [_array_type(conn, table, c) for c in columns]
    relation = (
        f"unnest({', '.join(f'%b::{t}' for t in types)}) "
        f"AS {alias}({', '.join(quote(c) for c in columns)})"
    )
    arrays: list[list[Any]] = []
    for column, key in zip(columns, keys or columns, strict=True):
        values = [row[key] for row in rows]
        if _is_time(table.c[column]) and any(v is not None and v.tzinfo is None for v in values):
            raise ValueError("naive datetime: wanotify stores timezone-aware UTC times only")
        arrays.append(values)
    return relation, arrays
