"""One throughput budget shared by every sender worker of a phone number, via the database.

Meta counts a phone number's sends per second, whichever process makes them. Each
worker keeps its own sliding-window limiter (no database trip per send) and enforces a
*share* of WHATSAPP_MAX_MPS that the workers agree on through `sender_budget_members`:

- every `refresh` (a few times a second) a worker renews its heartbeat, forgets members
  whose heartbeat is older than the lease, and takes its fair share (the cap split
  evenly, the remainder to the first workers by id) — but only as much of it as the
  others leave free;
- a worker that lowers its share keeps the old one reserved until `settled_at` (its
  window still holds starts made under the old share); one that raises takes only room
  nobody holds, so the shares of live workers never sum to more than the cap;
- a worker that cannot renew its heartbeat stops sending (`WorkerBudget` expires its
  share after `stop_after` seconds), well before the others' lease on it ends, so a
  worker that is presumed dead really is silent.

Each member's limiter keeps at most `share` starts in any window, so together they keep
at most the cap in any window. A new worker starts at 0 and gets its share once the
others have made room (about two seconds). Refreshes are serialised: on PostgreSQL by a
transaction-scoped advisory lock, on SQLite by its single writer (the first statement
writes).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, select, text, update

from core.db import is_sqlite
from core.models.control import SenderBudgetMember
from core.models.types import utcnow

BM = SenderBudgetMember.__table__  # type: ignore[attr-defined]

#: Seconds between refreshes of a worker's share.
REFRESH_SECONDS = 0.25
#: A worker that could not renew its share for this long stops sending.
STOP_AFTER_SECONDS = 2.0
#: Others forget a member whose heartbeat is older than this (> stop_after + a window).
LEASE_SECONDS = 4.0
#: Extra time a lowered share stays reserved, beyond the limiter's window.
SETTLE_SLACK_SECONDS = 0.5


@dataclass(frozen=True)
class BudgetShare:
    """What a refresh decided: this worker's share, and how many workers split the cap."""

    share: int
    members: int
    fair_share: int


def _lock(conn: object, engine: Engine, phone_number_id: str) -> None:
    if not is_sqlite(engine):
        key = zlib.crc32(f"wanotify-budget:{phone_number_id}".encode())
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})  # type: ignore[attr-defined]


def fair_share(cap: int, members: list[str], worker_id: str) -> int:
    """`worker_id`'s even part of `cap` among `members` (sorted ids; remainder to the first)."""
    ordered = sorted(members)
    base, extra = divmod(cap, len(ordered))
    return base + (1 if ordered.index(worker_id) < extra else 0)


def refresh(
    engine: Engine,
    *,
    worker_id: str,
    phone_number_id: str,
    cap: int,
    window_seconds: float,
    lease_seconds: float = LEASE_SECONDS,
    now: datetime | None = None,
) -> BudgetShare:
    """Renew this worker's heartbeat and decide its share (in one serialised transaction).

    `window_seconds` is the span of the worker's limiter: after lowering its share, the
    old share stays reserved that long (plus a little slack).
    """
    if cap < 0:
        raise ValueError("cap must not be negative")
    now = now or utcnow()
    settle = timedelta(seconds=window_seconds + SETTLE_SLACK_SECONDS)
    with engine.begin() as conn:
        _lock(conn, engine, phone_number_id)
        renewed = conn.execute(
            update(BM)
            .where(BM.c.worker_id == worker_id)
            .values(heartbeat_at=now, phone_number_id=phone_number_id)
        )
        if not renewed.rowcount:
            conn.execute(
                BM.insert().values(
                    worker_id=worker_id,
                    phone_number_id=phone_number_id,
                    share=0,
                    previous_share=0,
                    settled_at=now,
                    heartbeat_at=now,
                    joined_at=now,
                )
            )
        conn.execute(
            delete(BM).where(
                BM.c.phone_number_id == phone_number_id,
                BM.c.worker_id != worker_id,
                BM.c.heartbeat_at < now - timedelta(seconds=lease_seconds),
            )
        )
        rows = conn.execute(
            select(BM.c.worker_id, BM.c.share, BM.c.previous_share, BM.c.settled_at).where(
                BM.c.phone_number_id == phone_number_id
            )
        ).all()
        mine = next(r for r in rows if r.worker_id == worker_id)
        held_by_others = sum(
            max(r.share, r.previous_share) if r.settled_at > now else r.share
            for r in rows
            if r.worker_id != worker_id
        )
        fair = fair_share(cap, [r.worker_id for r in rows], worker_id)
        target = max(0, min(fair, cap - held_by_others))
        still_settling = mine.settled_at > now
        if target < mine.share:  # lower now; keep the old share reserved until settled
            previous = max(mine.share, mine.previous_share if still_settling else 0)
            values = {"share": target, "previous_share": previous, "settled_at": now + settle}
        else:
            previous = max(target, mine.previous_share if still_settling else 0)
            values = {"share": target, "previous_share": previous}
        conn.execute(update(BM).where(BM.c.worker_id == worker_id).values(**values))
    return BudgetShare(share=target, members=len(rows), fair_share=fair)


def leave(engine: Engine, *, worker_id: str, window_seconds: float) -> None:
    """A worker stops sending: free its share once its last starts left the window.

    The row stays (share 0, the old share reserved until settled) and expires with its
    heartbeat at the same moment, so no other worker takes the room too early.
    """
    now = utcnow()
    settle = timedelta(seconds=window_seconds + SETTLE_SLACK_SECONDS)
    with engine.begin() as conn:
        row = conn.execute(
            select(BM.c.share, BM.c.previous_share, BM.c.settled_at, BM.c.phone_number_id).where(
                BM.c.worker_id == worker_id
            )
        ).first()
        if row is None:
            return
        _lock(conn, engine, row.phone_number_id)
        previous = max(row.share, row.previous_share if row.settled_at > now else 0)
        conn.execute(
            update(BM)
            .where(BM.c.worker_id == worker_id)
            .values(
                share=0,
                previous_share=previous,
                settled_at=now + settle,
                heartbeat_at=now + settle - timedelta(seconds=LEASE_SECONDS),
            )
        )


def members(engine: Engine, phone_number_id: str) -> list[tuple[str, int]]:
    """(worker id, share) of every member row of a phone number (for status and tests)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(BM.c.worker_id, BM.c.share)
            .where(BM.c.phone_number_id == phone_number_id)
            .order_by(BM.c.worker_id)
        ).all()
    return [(r.worker_id, int(r.share)) for r in rows]


def total_share(engine: Engine, phone_number_id: str) -> int:
    """The sum of the live shares of a phone number (never above the cap)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.coalesce(func.sum(BM.c.share), 0)).where(
                    BM.c.phone_number_id == phone_number_id
                )
            ).scalar_one()
        )
