"""Shared by the seed-interface tests: a held database write lock, supplier rows."""

from __future__ import annotations

import threading
from datetime import datetime
from types import TracebackType

from sqlalchemy import Engine, text
from sqlmodel import Session

from core.db import is_sqlite
from core.models.suppliers import Supplier

#: Longest the lock is held if the test never releases it (a blocked event loop cannot).
SAFETY_RELEASE_SECONDS = 20.0


class WriteLock:
    """A thread holding the database's write lock on the messages table until `release()`.

    While it is held no message can be queued. A coroutine that queues off the event loop
    leaves the loop free to call `release()`; one that blocked the loop would keep it
    from ever doing so, and the lock would only fall after SAFETY_RELEASE_SECONDS, with
    `released_by_test` False.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._locked = threading.Event()
        self._release = threading.Event()
        self.released_by_test = False
        self._thread = threading.Thread(target=self._hold, daemon=True, name="write-lock")

    def _hold(self) -> None:
        with self.engine.connect() as conn:
            if is_sqlite(self.engine):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(text("LOCK TABLE whatsapp_messages, suppliers IN EXCLUSIVE MODE"))
            self._locked.set()
            self.released_by_test = self._release.wait(SAFETY_RELEASE_SECONDS)
            conn.rollback()

    def __enter__(self) -> WriteLock:
        self._thread.start()
        assert self._locked.wait(10), "could not take the write lock"
        return self

    def release(self) -> None:
        """Let writers through."""
        self._release.set()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._release.set()
        self._thread.join(timeout=SAFETY_RELEASE_SECONDS + 5)


def add_supplier(
    engine: Engine,
    phone: str,
    *,
    last_inbound_at: datetime | None = None,
    tenant: str = "default",
    language: str = "es",
) -> int:
    """A supplier row (its last message to us at `last_inbound_at`); returns its id."""
    with Session(engine) as session:
        supplier = Supplier(
            tenant_id=tenant,
            name="Harinas",
            phone_e164=phone,
            language=language,
            last_inbound_at=last_inbound_at,
        )
        session.add(supplier)
        session.commit()
        assert supplier.id is not None
        return supplier.id
