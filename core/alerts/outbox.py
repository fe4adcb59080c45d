"""The alert outbox's rows: what is due, grouping holds, claims, outcomes and the list.

A row is `pending` until a delivery carrying it succeeds (`sent`, with the delivery's id
and time). A failure keeps it pending with one more attempt, the error's words and a
later `next_attempt_at` (`backoff`), so a broken SMTP server loses nothing. Claims are a
token and a lease: two processes never send the same rows at once, and rows a crashed
process held are due again when the lease ends (sent again: at least once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, or_, select, update

from core.alerts.events import EVENTS
from core.alerts.rules import OUTBOX
from core.i18n import _, ngettext

#: First retry after this many seconds, doubling per failed attempt up to `MAX_BACKOFF`.
FIRST_BACKOFF = 30.0
MAX_BACKOFF = 3600.0
#: How long a claim holds rows before another process may take them.
CLAIM_LEASE = timedelta(minutes=5)
#: Longest stored error text.
MAX_ERROR = 500


@dataclass(frozen=True)
class OutboxItem:
    """One pending row as the delivery loop sees it, with its event's facts."""

    id: int
    kind: str
    channel: str
    recipient: str
    locale: str | None
    tenant_id: str | None
    attempts: int
    facts: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class ListedAlert:
    """A row of `wanotify alerts list`."""

    id: int
    kind: str
    channel: str
    recipient: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed delivery of a row."""
    return timedelta(seconds=min(FIRST_BACKOFF * 2 ** max(attempts - 1, 0), MAX_BACKOFF))


def _due(now: datetime) -> Any:
    c = OUTBOX.c
    return and_(
        c.status == "pending",
        or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now),
        or_(c.claimed_until.is_(None), c.claimed_until <= now),
    )


def due_keys(conn: Connection, now: datetime) -> list[tuple[str, str, str]]:
    """The (channel, recipient, kind) groups with a row due now."""
    c = OUTBOX.c
    rows = conn.execute(select(c.channel, c.recipient, c.kind).where(_due(now)).distinct()).all()
    return sorted((str(r[0]), str(r[1]), str(r[2])) for r in rows)


def last_sent(conn: Connection, channel: str, recipient: str, kind: str) -> datetime | None:
    """When `recipient` was last sent an alert of `kind` on `channel` (None: never)."""
    c = OUTBOX.c
    return conn.execute(
        select(func.max(c.sent_at)).where(
            c.channel == channel, c.recipient == recipient, c.kind == kind, c.status == "sent"
        )
    ).scalar_one_or_none()


def in_flight(conn: Connection, key: tuple[str, str, str], now: datetime) -> bool:
    """True while another delivery holds rows of this group (claimed, lease not over):
    its outcome decides whether the grouping window starts now."""
    c = OUTBOX.c
    channel, recipient, kind = key
    found = conn.execute(
        select(c.id)
        .where(
            c.status == "pending", c.claimed_until > now, c.channel == channel,
            c.recipient == recipient, c.kind == kind,
        )
        .limit(1)
    ).first()  # fmt: skip
    return found is not None


def hold_until(conn: Connection, key: tuple[str, str, str], until: datetime, now: datetime) -> int:
    """Make a group's due rows wait until `until` (the end of its grouping window)."""
    c = OUTBOX.c
    channel, recipient, kind = key
    result = conn.execute(
        update(OUTBOX)
        .where(_due(now), c.channel == channel, c.recipient == recipient, c.kind == kind)
        .values(next_attempt_at=until)
    )
    return int(result.rowcount or 0)


def claim(
    conn: Connection, key: tuple[str, str, str], token: str, now: datetime
) -> list[OutboxItem]:
    """Claim a group's due rows for one delivery; returns them oldest first (with facts)."""
    c = OUTBOX.c
    channel, recipient, kind = key
    conn.execute(
        update(OUTBOX)
        .where(_due(now), c.channel == channel, c.recipient == recipient, c.kind == kind)
        .values(claim_token=token, claimed_until=now + CLAIM_LEASE)
    )
    rows = conn.execute(
        select(
            c.id, c.kind, c.channel, c.recipient, c.locale, c.tenant_id, c.attempts,
            c.created_at, EVENTS.c.facts,
        )
        .select_from(OUTBOX.join(EVENTS, EVENTS.c.id == c.event_id))
        .where(c.claim_token == token, c.status == "pending")
        .order_by(c.created_at, c.id)
    ).all()  # fmt: skip
    return [
        OutboxItem(
            r.id, r.kind, r.channel, r.recipient, r.locale, r.tenant_id, int(r.attempts),
            dict(r.facts or {}), r.created_at,
        )
        for r in rows
    ]  # fmt: skip


def mark_sent(conn: Connection, token: str, now: datetime) -> int:
    """The delivery of claim `token` worked: its rows are sent, with the delivery's id."""
    c = OUTBOX.c
    result = conn.execute(
        update(OUTBOX)
        .where(c.claim_token == token, c.status == "pending")
        .values(status="sent", sent_at=now, delivery_id=token, claim_token=None, claimed_until=None)
    )
    return int(result.rowcount or 0)


def mark_failed(conn: Connection, items: Sequence[OutboxItem], error: str, now: datetime) -> None:
    """The delivery failed: each row keeps waiting, one attempt more, retried after
    `backoff`, with the error's words."""
    if not items:
        return
    c = OUTBOX.c
    conn.execute(
        update(OUTBOX)
        .where(c.id == bindparam("b_id"), c.status == "pending")
        .values(
            attempts=bindparam("b_attempts"),
            next_attempt_at=bindparam("b_next", type_=c.next_attempt_at.type),
            last_error=error[:MAX_ERROR],
            claim_token=None,
            claimed_until=None,
        ),
        [
            {
                "b_id": item.id,
                "b_attempts": item.attempts + 1,
                "b_next": now + backoff(item.attempts + 1),
            }
            for item in items
        ],
    )


def list_alerts(
    engine: Engine, *, status: str | None = None, limit: int = 50, tenant_id: str | None = None
) -> list[ListedAlert]:
    """The newest outbox rows (one status, or all), for `wanotify alerts list`; with
    `tenant_id`, only that tenant's and the installation-wide ones (the dashboard)."""
    c = OUTBOX.c
    query = select(
        c.id, c.kind, c.channel, c.recipient, c.status, c.attempts, c.next_attempt_at,
        c.last_error, c.created_at, c.sent_at,
    ).order_by(c.id.desc()).limit(limit)  # fmt: skip
    if status is not None:
        query = query.where(c.status == status)
    if tenant_id is not None:
        query = query.where(or_(c.tenant_id == tenant_id, c.tenant_id.is_(None)))
    with engine.connect() as conn:
        return [ListedAlert(**row._mapping) for row in conn.execute(query)]


def status_line(engine: Engine) -> str:
    """One line for `wanotify status`: how many alerts wait, and the last delivery error."""
    c = OUTBOX.c
    with engine.connect() as conn:
        waiting = conn.execute(
            select(func.count()).select_from(OUTBOX).where(c.status == "pending")
        ).scalar_one()
        failing = conn.execute(
            select(c.last_error)
            .where(c.status == "pending", c.attempts > 0)
            .order_by(c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    line = ngettext("Alerts: {n} waiting", "Alerts: {n} waiting", int(waiting)).format(
        n=int(waiting)
    )
    if failing:
        line += " · " + _("last delivery error: {error}").format(error=failing)
    return line


#: Sent alerts (and their events) are kept this long, for `alerts list` and the page.
KEEP_SENT = timedelta(days=90)


def prune(engine: Engine, now: datetime) -> int:
    """Delete alerts sent more than `KEEP_SENT` ago and the events nothing points at any
    more (fanned out and that old); pending alerts are never deleted. Returns the rows."""
    c, e = OUTBOX.c, EVENTS.c
    cutoff = now - KEEP_SENT
    with engine.begin() as conn:
        gone = conn.execute(delete(OUTBOX).where(c.status == "sent", c.sent_at < cutoff))
        orphans = conn.execute(
            delete(EVENTS).where(
                e.fanned_out.is_(True),
                e.created_at < cutoff,
                ~select(c.id).where(c.event_id == e.id).exists(),
            )
        )
    return int(gone.rowcount or 0) + int(orphans.rowcount or 0)
