"""Who is told what: an event's audience and each person's choices, into outbox rows.

An event becomes one `alert_outbox` row per recipient and channel: an e-mail row per
user of its audience who wants this kind by e-mail and has an address (each address
once), and one chat row per chat channel (the tenant's own webhook, else the global one)
when at least one user of the audience wants this kind in the chat. Channels this
process has not configured get no rows. Marking the event fanned out and writing its
rows is one transaction, and only the process whose update marked it writes them, so
two sender workers never tell anyone twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert, select, update

from core.alerts.config import AlertSettings
from core.alerts.events import EVENTS
from core.alerts.kinds import ADMIN_KINDS, AlertKind
from core.alerts.preferences import DEFAULT, stored_choices
from core.models.alerts import AlertOutboxRow
from core.models.users import User

OUTBOX: Table = AlertOutboxRow.__table__  # type: ignore[attr-defined]
_U: Table = User.__table__  # type: ignore[attr-defined]
#: Events fanned out per transaction: small, so a burst never holds SQLite's one write
#: lock long enough to delay the sender's own writes (about 3 ms an event).
BATCH = 50
#: Events older than this when fanned out are dropped (see `fan_out`).
MAX_AGE = timedelta(days=2)


@dataclass(frozen=True)
class Person:
    """A user an alert may reach."""

    id: int
    username: str
    role: str
    tenant_id: str
    email: str | None
    locale: str | None


def audience(conn: Connection, tenant_id: str | None, wanted: dict[str, Any]) -> list[Person]:
    """The active users an event's audience names (see `core.alerts.events`)."""
    columns = (_U.c.id, _U.c.username, _U.c.role, _U.c.tenant_id, _U.c.email, _U.c.locale)
    base = select(*columns).where(_U.c.is_active.is_(True)).order_by(_U.c.id)
    if tenant_id is not None:
        base = base.where(_U.c.tenant_id == tenant_id)
    found: list[Any] = []
    names = [str(name).lower() for name in wanted.get("usernames") or []]
    if names:
        found = list(conn.execute(base.where(_U.c.username.in_(names))))
    role = wanted.get("role")
    if role:
        found += list(conn.execute(base.where(_U.c.role == role)))
    if not found and wanted.get("fallback_role"):
        found = list(conn.execute(base.where(_U.c.role == wanted["fallback_role"])))
    people: dict[int, Person] = {}
    for row in found:
        people[row.id] = Person(
            row.id, row.username, row.role, row.tenant_id, row.email, row.locale
        )
    return list(people.values())


def outbox_rows(
    event: Any, people: list[Person], conn: Connection, settings: AlertSettings
) -> list[dict[str, Any]]:
    """The outbox rows one event becomes for these people (module docstring's rules)."""
    kind = str(event.kind)
    try:
        admin_only = AlertKind(kind) in ADMIN_KINDS
    except ValueError:
        admin_only = False
    if admin_only:
        people = [person for person in people if person.role == "admin"]
    choices = stored_choices(conn, [person.id for person in people])
    rows: list[dict[str, Any]] = []
    addresses: set[str] = set()
    chats: dict[str, str | None] = {}
    for person in people:
        choice = choices.get((person.id, kind), DEFAULT)
        address = (person.email or "").strip().lower()
        if choice.email and settings.email_enabled and address and address not in addresses:
            addresses.add(address)
            rows.append(_row(event, "email", address, person.id, person.locale))
        if choice.chat:
            target = settings.chat_target(event.tenant_id or person.tenant_id)
            if target is not None and target not in chats:
                chats[target] = person.locale
    for target, locale in chats.items():
        rows.append(_row(event, "chat", target, None, locale))
    return rows


def _row(
    event: Any, channel: str, recipient: str, user_id: int | None, locale: str | None
) -> dict[str, Any]:
    return {
        "event_id": event.id,
        "kind": event.kind,
        "tenant_id": event.tenant_id,
        "channel": channel,
        "recipient": recipient,
        "user_id": user_id,
        "locale": locale,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": None,
        "created_at": event.created_at,
    }


def fan_out(engine: Engine, settings: AlertSettings, now: datetime) -> int:
    """Turn events not yet fanned out into outbox rows; returns the rows written. Events
    older than `MAX_AGE` (waiting while no channel was configured) are dropped: news
    that old would only confuse."""
    written = 0
    while True:
        with engine.begin() as conn:
            events = conn.execute(
                select(EVENTS.c.id, EVENTS.c.kind, EVENTS.c.tenant_id, EVENTS.c.audience,
                       EVENTS.c.created_at)
                .where(EVENTS.c.fanned_out.is_(False))
                .order_by(EVENTS.c.id)
                .limit(BATCH)
            ).all()  # fmt: skip
            for event in events:
                claimed = conn.execute(
                    update(EVENTS)
                    .where(EVENTS.c.id == event.id, EVENTS.c.fanned_out.is_(False))
                    .values(fanned_out=True)
                )
                if not claimed.rowcount:
                    continue
                if event.created_at < now - MAX_AGE:
                    continue
                people = audience(conn, event.tenant_id, dict(event.audience or {}))
                rows = outbox_rows(event, people, conn, settings)
                if rows:
                    conn.execute(insert(OUTBOX), rows)
                    written += len(rows)
        if len(events) < BATCH:
            return written
