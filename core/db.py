"""Database engines and sessions for SQLite (WAL, the embedded default) and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

from core.settings import get_settings


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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
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
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=16,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
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
