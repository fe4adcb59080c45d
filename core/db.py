"""Database engines and sessions for SQLite (WAL, the embedded default) and PostgreSQL."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Engine,
    Select,
    String,
    any_,
    bindparam,
    event,
    func,
    select,
    text,
    true,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.types import NullType
from sqlmodel import Session, create_engine

from core.settings import get_settings

log = logging.getLogger(__name__)


def normalise_url(url: str) -> str:
    """Pick the drivers wanotify ships: pysqlite for SQLite, psycopg 3 for PostgreSQL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url_or_engine: str | Engine) -> bool:
    """True when the database is a SQLite file (single writer, WAL)."""
    url = url_or_engine.url if isinstance(url_or_engine, Engine) else make_url(url_or_engine)
    return url.get_backend_name() == "sqlite"


#: Page size of a SQLite file wanotify creates. A message row with its checked request
#: body is about 2 KB and is indexed about fifteen times: with 16 KiB pages a 100,000-row
#: import writes a quarter of the WAL frames (two write calls each) that 4 KiB pages take,
#: and records its rows about a fifth faster (`benchmarks.bulk_import`). The price: the
#: webhook path's batched status updates take about 4 % more CPU per event
#: (`benchmarks.webhook_load`), one UPDATE per message 13-19 % more (`benchmarks.analytics`'
#: write test); the charts read as fast. A file made before keeps its page size (it only
#: changes by VACUUM: see the README).
SQLITE_PAGE_BYTES = 16 * 1024
#: SQLite's own default page cache per connection (`PRAGMA cache_size`), in KiB.
SQLITE_CACHE_KIB = 2000
#: The page cache of a connection while it records a bulk chunk (`bulk_write_cache`).
BULK_WRITE_CACHE_KIB = 16 * 1024


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_BYTES}")  # before WAL: a new file only
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    """The shared engine for a database URL (the configured DATABASE_URL by default)."""
    url = normalise_url(url or get_settings().database_url)
    if is_sqlite(url):
        return _sqlite_engine(url, _sqlite_pragmas, pool_size=8, max_overflow=16)
    return create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        connect_args={
            "application_name": application_name(),
            # Day buckets and `now()` in SQL mean UTC days, whatever the server's zone.
            "options": "-c timezone=UTC",
            "connect_timeout": 10,
        },
    )


#: Analytics reads on SQLite map the file and keep a larger page cache per connection.
ANALYTICS_MMAP_BYTES = 1 << 30
ANALYTICS_CACHE_KIB = 128 * 1024


def _analytics_pragmas(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA mmap_size={ANALYTICS_MMAP_BYTES}")
    cursor.execute(f"PRAGMA cache_size=-{ANALYTICS_CACHE_KIB}")
    cursor.close()


def analytics_engine(engine: Engine) -> Engine:
    """The engine analytics reads go through: on a SQLite file, a sibling engine of its
    own (four pooled connections, one per chart a page reads at once, and four more
    while busy) whose connections map the file (`mmap_size`) and keep a
    128 MB page cache, which makes a chart over a million messages several times faster;
    elsewhere (PostgreSQL, an in-memory database) `engine` itself.

    Kept apart so these settings stay on these connections: set on the shared pool's,
    they followed every later user of the connection (a 100,000-row import, a login),
    each mapping the whole file and growing a page cache of its own.
    """
    database = engine.url.database
    if not is_sqlite(engine) or not database or database == ":memory:":
        return engine
    return _analytics_engine(engine.url.render_as_string(hide_password=False))


@lru_cache(maxsize=8)
def _analytics_engine(url: str) -> Engine:
    return _sqlite_engine(url, _analytics_pragmas, pool_size=4, max_overflow=4)


def _sqlite_engine(
    url: str, pragmas: Callable[[Any, Any], None], *, pool_size: int, max_overflow: int
) -> Engine:
    """An engine of a SQLite file whose every new connection gets `pragmas`."""
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=pool_size,
        max_overflow=max_overflow,
    )
    event.listen(engine, "connect", pragmas)
    event.listen(engine, "checkin", _restore_cache)
    return engine


#: Set in a pooled connection's info while `bulk_write_cache` has raised its cache.
_RAISED_CACHE = "wanotify_raised_cache"


def bulk_write_cache(conn: Connection) -> None:
    """On SQLite, give this connection a larger page cache until it goes back to the
    pool; elsewhere nothing.

    A bulk chunk appends to some twenty B-trees at once (a table's and its indexes'
    rightmost pages, the rollups' rows): with SQLite's default 2 MB cache those pages are
    evicted and read again between rows, and dirty ones spilled to the WAL before the
    commit writes them again. The pooled connection keeps no more than the default
    afterwards, so other readers do not each grow a cache of this size.
    """
    if conn.dialect.name != "sqlite":
        return
    conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_WRITE_CACHE_KIB}")
    conn.connection.info[_RAISED_CACHE] = True


def _restore_cache(dbapi_connection: Any, record: Any) -> None:
    """Back to the default page cache (freeing the rest) when a connection whose cache
    `bulk_write_cache` raised returns to the pool."""
    if record is None or not record.info.pop(_RAISED_CACHE, False):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def application_name(argv: list[str] | None = None) -> str:
    """How this process shows in PostgreSQL's `pg_stat_activity`: "wanotify worker",
    "wanotify webhook", ... so an operator can tell the processes apart."""
    args = sys.argv if argv is None else argv
    name = "wanotify"
    if args and Path(args[0]).name == "applier_process.py":  # the webhook app's applier
        return "wanotify webhook-applier"
    if args and Path(args[0]).name in ("wanotify", "cli.py") and len(args) > 1:
        command = args[1]
        if command.replace("-", "").isalnum():
            name = f"wanotify {command}"
    return name[:63]


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def one_of(db: Session | Connection, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN (values)`, written as the database plans it well for a few hundred values.

    On PostgreSQL it is `column = ANY(:values)`, one array parameter: psycopg prepares a
    statement run five times, PostgreSQL may then keep a generic plan, and with one
    parameter per value that plan compared every row of the tenant with every value
    (1.5 s per 500 phones or keys once a tenant has 80,000 suppliers: minutes for a
    100,000-row import) where the array is matched in milliseconds. Elsewhere a plain
    IN with one parameter per value.
    """
    dialect = db.get_bind().dialect if isinstance(db, Session) else db.dialect
    if dialect.name == "postgresql":
        element = String() if isinstance(column.type, NullType) else column.type  # lower(x)
        return column == any_(bindparam(None, list(values), type_=ARRAY(element)))
    return column.in_(values)


def by_unique_key(
    db: Session | Connection,
    columns: Sequence[ColumnElement[Any]],
    scope: ColumnElement[bool],
    key: ColumnElement[Any],
    values: Sequence[Any],
) -> Select[Any]:
    """`SELECT columns WHERE scope AND key IN (values)` for a key that a unique index
    covers together with `scope` (a tenant's phone, a tenant's idempotency key), written
    so the database finds each value through that index though its statistics are stale
    (none at all, or taken while the table was empty, can still mislead it: a bulk step
    refreshes them first, `refresh_statistics`).

    On PostgreSQL one lookup per value (`unnest` joined LATERAL, LIMIT 1): the plain
    `key = ANY(...)` is planned from statistics, and a table that grew since its last
    ANALYZE (autovacuum off or not yet round, a first bulk import) is taken to hold a
    few rows per tenant, so the plan read every row of the tenant and filtered: 110 ms
    per 500 keys once the tenant held 100,000 messages, growing with each chunk of an
    import; through the index, 6 ms. Elsewhere `one_of`.
    """
    dialect = db.get_bind().dialect if isinstance(db, Session) else db.dialect
    if dialect.name != "postgresql":
        return select(*columns).where(scope, one_of(db, key, values))
    wanted = (
        func.unnest(bindparam(None, list(values), type_=ARRAY(key.type)))
        .table_valued("value")
        .render_derived(name="wanted")
    )
    # LIMIT keeps the subquery from being flattened into a join planned from statistics
    found = select(*columns).where(scope, key == wanted.c.value).limit(1).lateral("found")
    return select(*found.c).select_from(wanted).join(found, true())


#: The tables of `:tables` whose statistics autovacuum would refresh now (by the
#: server's own threshold and scale factor).
_STATISTICS_DUE = text(
    "SELECT c.relname FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid "
    "WHERE c.oid = ANY(CAST(:tables AS regclass[])) AND (c.reltuples < 0 OR "
    "s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8 "
    "+ current_setting('autovacuum_analyze_scale_factor')::float8 * c.reltuples)"
)


def refresh_statistics(engine: Engine, tables: Sequence[str]) -> None:
    """On PostgreSQL, ANALYZE those of `tables` whose statistics autovacuum would refresh
    now (never taken, or more rows changed since than its threshold and scale factor
    allow: 50 + 10 % by default); elsewhere nothing.

    A bulk step looks thousands of phones and keys up by unique index, and a plan made
    from missing or outdated statistics may take another index that starts with the
    tenant instead and filter every one of the tenant's rows for each value:
    `ix_whatsapp_messages_tenant_status` for idempotency keys, analyzed while empty and
    holding 625 messages since, cost 30 ms per 500 keys (6 s of a 100,000-row check on a
    new database) where the unique index takes 1 ms. Autovacuum may be off, or not yet
    round after the first rows. Run in a transaction of its own, so its lock (which
    blocks only another ANALYZE, VACUUM or DDL) is not held through the step. Nothing
    stops the step: a user who does not own a table is warned by PostgreSQL, which skips
    it, and any other error is logged; the lookups are then planned as they come.
    """
    if engine.dialect.name != "postgresql" or not tables:
        return
    with engine.connect() as conn:
        due = conn.execute(_STATISTICS_DUE, {"tables": list(tables)}).scalars().all()
        conn.rollback()
        for table in sorted(due):
            quoted = conn.dialect.identifier_preparer.quote(table)
            try:
                with conn.begin():
                    conn.exec_driver_sql(f"ANALYZE {quoted}")
            except DBAPIError as exc:  # a lock timeout, a server error: the step goes on
                log.warning("could not analyze %s (%s): bulk lookups may be slow", table, exc.orig)


def plan_each_statement(db: Session | Connection) -> None:
    """On PostgreSQL, plan every statement of the current transaction for its own values
    and the tables as they are now (`SET LOCAL plan_cache_mode = force_custom_plan`);
    elsewhere nothing.

    For a bulk upload's hundreds of lookups: psycopg prepares a statement run five
    times, and the generic plan PostgreSQL may then keep was costed for the tables as
    they were (a few rows, no statistics yet): a scan of every supplier or message per
    lookup once they hold 100,000 rows (80 s of a 100,000-row check). Planning a lookup
    of 500 values takes well under a millisecond.
    """
    dialect = db.get_bind().dialect if isinstance(db, Session) else db.dialect
    if dialect.name == "postgresql":
        db.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def is_transient(exc: BaseException) -> bool:
    """True for errors that say the database is busy or unreachable, not that data is bad:
    the same work, tried again a moment later, can succeed (a lock, a deadlock PostgreSQL
    broke, a restart)."""
    if isinstance(exc, DisconnectionError):
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    said = str(exc.orig).lower()
    return exc.connection_invalidated or any(
        word in said
        for word in (
            "locked",
            "busy",
            "connect",
            "server closed",
            "terminating",
            "timeout",
            "deadlock",
            "could not serialize",
        )
    )
