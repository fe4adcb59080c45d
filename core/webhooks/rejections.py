"""Refused webhook signatures, remembered where every process sees them.

A delivery that carries an `X-Hub-Signature-256` header but fails the check (wrong
secret, or not `sha256=<64 hex>`) is refused with 401 and Meta retries it for days; if
`WHATSAPP_APP_SECRET` is wrong, *every* delivery goes that way and messages just never
leave `accepted`. So the refusals are counted in `webhook_rejections`, which health,
`wanotify status` and the dashboard (other processes) read.

The webhook POST sustains thousands of requests a second, refused ones included: a
refusal only updates an in-memory tally (`RejectionRecorder.note`), and at most once per
`interval` a thread folds the tally into the table, one upsert per reason. A run of
refusals restarts its count once a valid delivery was journalled after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, Table, case, false, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

from core.alerts import events as alert_events
from core.models.rejections import WebhookRejection
from core.models.types import utcnow
from core.webhooks.signature import SignatureCheck

log = logging.getLogger(__name__)

REJECTIONS: Table = WebhookRejection.__table__  # type: ignore[attr-defined]

#: Refusals that concern a signed-looking delivery (a missing header is not counted:
#: anyone on the internet can post without one, and Meta always signs).
SIGNATURE_REASONS = frozenset({SignatureCheck.MISMATCH.value, SignatureCheck.MALFORMED.value})
#: At most one write per this many seconds per process.
FLUSH_INTERVAL = 1.0


@dataclass(slots=True)
class Tally:
    """Refusals of one reason counted since the last write."""

    count: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True, slots=True)
class RejectionRow:
    """One reason's stored run of refusals."""

    reason: str
    count: int
    first_at: datetime
    last_at: datetime


def record_rejections(
    engine: Engine, tallies: Mapping[str, Tally], valid_at: datetime | None
) -> None:
    """Add `tallies` to the stored runs, one upsert per reason. A run whose last refusal
    is older than `valid_at` (the last valid delivery) starts again from these."""
    if not tallies:
        return
    with engine.begin() as conn:
        for reason, tally in sorted(tallies.items()):
            if _starts_a_run(conn, reason, valid_at):  # admins hear once per run
                alert_events.signatures_refused(conn, reason, tally.count, tally.first_at)
            conn.execute(_upsert(conn, valid_at), {
                "reason": reason, "count": tally.count,
                "first_at": tally.first_at, "last_at": tally.last_at,
            })  # fmt: skip


def _starts_a_run(conn: Connection, reason: str, valid_at: datetime | None) -> bool:
    """True when refusals of `reason` start a new run (none stored, or the stored run
    ended before the last valid delivery)."""
    last = conn.execute(
        select(REJECTIONS.c.last_at).where(REJECTIONS.c.reason == reason)
    ).scalar_one_or_none()
    return last is None or (valid_at is not None and last < valid_at)


def _upsert(conn: Connection, valid_at: datetime | None) -> Executable:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(REJECTIONS)
    new, old = statement.excluded, REJECTIONS.c
    stale = old.last_at < valid_at if valid_at is not None else false()
    return statement.on_conflict_do_update(
        index_elements=["reason"],
        set_={
            "count": case((stale, new["count"]), else_=old["count"] + new["count"]),
            "first_at": case((stale, new.first_at), else_=old.first_at),
            "last_at": case((new.last_at > old.last_at, new.last_at), else_=old.last_at),
        },
    )


def read_rejections(conn: Connection) -> list[RejectionRow]:
    """Every stored run of refusals, by reason."""
    c = REJECTIONS.c
    rows = conn.execute(select(c.reason, c["count"], c.first_at, c.last_at).order_by(c.reason))
    return [RejectionRow(str(r[0]), int(r[1]), r[2], r[3]) for r in rows]


class RejectionRecorder:
    """Counts refused signatures in memory and writes them at most once per `interval`.

    `note` runs on the event loop and never waits; the write runs on a thread. A failed
    write keeps its counts for the next one (the table has a row per reason, so nothing
    grows with a flood).
    """

    def __init__(
        self,
        engine: Engine,
        last_valid_at: Callable[[Engine], datetime | None],
        *,
        interval: float = FLUSH_INTERVAL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self._last_valid_at = last_valid_at
        self._clock = clock
        self._pending: dict[str, Tally] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self.writes = 0  # flushes that reached the database (for tests and metrics)

    def note(self, reason: str) -> None:
        """Count one refusal of `reason` (ignored unless it is a signature refusal)."""
        if reason not in SIGNATURE_REASONS:
            return
        now = self._clock()
        tally = self._pending.get(reason)
        if tally is None:
            self._pending[reason] = Tally(1, now, now)
        else:
            tally.count += 1
            tally.last_at = now
        if self._timer is None and self._flushing is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.interval, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            await self.flush()
        finally:
            self._flushing = None
            if self._pending and self._timer is None:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(self.interval, self._start_flush)

    async def flush(self) -> None:
        """Write what was counted now (off the event loop)."""
        batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            await asyncio.to_thread(self._write, batch)
        except Exception as exc:  # keep the counts; the next write carries them
            log.warning("could not record refused webhook signatures: %s", type(exc).__name__)
            for reason, tally in batch.items():
                self._merge(reason, tally)

    def _write(self, batch: Mapping[str, Tally]) -> None:
        record_rejections(self.engine, batch, self._last_valid_at(self.engine))
        self.writes += 1

    def _merge(self, reason: str, tally: Tally) -> None:
        newer = self._pending.get(reason)
        if newer is None:
            self._pending[reason] = tally
        else:
            newer.count += tally.count
            newer.first_at = min(newer.first_at, tally.first_at)

    async def close(self) -> None:
        """Stop the timer and write what is left."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is not None:
            await self._flushing
        await self.flush()
