"""SQLite WAL checkpoints off the webhook's write path.

By default SQLite checkpoints the WAL inside the commit that crosses 1,000 pages, and a
checkpoint fsyncs the database file: on a busy disk that stalls the committing thread
for tens of milliseconds, and with it every webhook waiting for its journal commit. So
the webhook process turns automatic checkpoints off on its own connections and
checkpoints from a background thread instead (`PASSIVE`: it never blocks a writer).
Under constant load a passive checkpoint never catches up completely, so the WAL would
not restart; once it has grown past `restart_bytes` the write thread itself runs one
passive checkpoint between two batches (short: the background thread copied almost
everything already), after which the next commit rewinds the WAL.
PostgreSQL needs none of this: every function here does nothing for it.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from sqlalchemy import Engine, event

from core.db import is_sqlite

log = logging.getLogger(__name__)

#: WAL size past which the write thread checkpoints itself, so the WAL can restart.
RESTART_BYTES = 32 * 1024 * 1024
_FLAG = "wanotify_manual_checkpoints"


def _wal_path(engine: Engine) -> str | None:
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return f"{database}-wal"


def take_over_checkpoints(engine: Engine) -> bool:
    """Turn off SQLite's automatic checkpoints on `engine`'s connections (each one as it is
    next checked out). False, changing nothing, for PostgreSQL or an in-memory database."""
    if not is_sqlite(engine) or _wal_path(engine) is None:
        return False
    if not event.contains(engine, "checkout", _manual_checkpoints):
        event.listen(engine, "checkout", _manual_checkpoints)
    return True


def _manual_checkpoints(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    if record.info.get(_FLAG):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()
    record.info[_FLAG] = True


def checkpoint(engine: Engine) -> tuple[int, int, int] | None:
    """One passive checkpoint: (busy, WAL frames, frames copied), or None if not SQLite."""
    if not is_sqlite(engine):
        return None
    with engine.connect() as conn:
        row = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    return int(row[0]), int(row[1]), int(row[2])


def wal_bytes(engine: Engine) -> int:
    """The WAL file's current size (0 when there is none)."""
    path = _wal_path(engine)
    try:
        return os.path.getsize(path) if path else 0
    except OSError:
        return 0


def restart_if_large(engine: Engine, restart_bytes: int = RESTART_BYTES) -> bool:
    """On the write thread: checkpoint when the WAL passed `restart_bytes`; True if it ran."""
    if not is_sqlite(engine) or wal_bytes(engine) < restart_bytes:
        return False
    checkpoint(engine)
    return True


def start_checkpointer(engine: Engine) -> Checkpointer | None:
    """Take over `engine`'s checkpoints and run them from a started `Checkpointer`; None
    (nothing to do) for PostgreSQL or an in-memory database."""
    if not take_over_checkpoints(engine):
        return None
    checkpointer = Checkpointer(engine)
    checkpointer.start()
    return checkpointer


class Checkpointer:
    """A daemon thread running passive checkpoints every `interval` seconds."""

    def __init__(self, engine: Engine, interval: float = 0.5) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start checkpointing (no-op for PostgreSQL)."""
        if not is_sqlite(self._engine) or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="webhook-wal-checkpoint", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and run one last checkpoint."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=30)
        self._thread = None
        self._safe_checkpoint()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._safe_checkpoint()

    def _safe_checkpoint(self) -> None:
        try:
            checkpoint(self._engine)
        except Exception as exc:  # a busy or missing database: the next round tries again
            log.debug("WAL checkpoint skipped: %s", type(exc).__name__)
