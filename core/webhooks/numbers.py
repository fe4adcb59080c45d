"""Whose number a webhook event names: every sending number we know, and its tenant.

Meta names the business number of each status and reply in
`value.metadata.phone_number_id`. An event is applied only to a message sent from that
number (never to another tenant's), and an event naming a number we do not know is
held, not applied (`core.webhooks.statuses`, `core.webhooks.apply`). Known numbers are
the rows of `sender_numbers`, removed ones included (late statuses of their messages
still belong to their tenant), and the environment's WHATSAPP_PHONE_NUMBER_ID as the
default tenant's unless a row names it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Connection, select

from core.models.sender_numbers import SenderNumberRow

log = logging.getLogger(__name__)

NUMBERS = SenderNumberRow.__table__  # type: ignore[attr-defined]

#: phone number id -> its tenant (None: shared by every tenant, as the environment's
#: number is while no number is registered: `core.routing`)
NumberBook = dict[str, str | None]

#: The `webhook_rejections` reason counting replies held for naming a number we do not
#: know (one row, updated in the applier's transaction; health reads it).
HELD_REPLIES_REASON = "reply_to_unknown_number"


def environment_number() -> str | None:
    """The environment's phone number id (the sandbox's in sandbox mode), or None when
    the settings cannot be read (then only registered numbers are known)."""
    from core.settings import get_settings

    try:
        return get_settings().phone_number_id
    except Exception:  # a half-made configuration: fail closed, know fewer numbers
        log.warning("the settings cannot be read: only registered numbers are known")
        return None


def number_book(conn: Connection, default_tenant: str) -> NumberBook:
    """Every number we know and its tenant, read in the caller's transaction.

    The one rule of whose a number is (webhooks, held events, pause alerts):

    - a number with a `sender_numbers` row is that row's tenant's, removed or not (late
      statuses and replies to what it sent still belong to its tenant);
    - the environment's number with no row is the default tenant's once any number is
      registered, and shared by every tenant (None) while none is, as routing sends
      from it for every tenant then (`core.routing`);
    - any other number is not in the book: we do not know it.
    """
    book: NumberBook = {
        row.phone_number_id: row.tenant_id
        for row in conn.execute(select(NUMBERS.c.phone_number_id, NUMBERS.c.tenant_id))
    }
    env = environment_number()
    if env is not None:
        book.setdefault(env, default_tenant if book else None)
    return book


def record_held_replies(conn: Connection, count: int, now: datetime) -> None:
    """Count replies held for naming a number we do not know (health shows the count)."""
    from core.webhooks.rejections import _upsert

    conn.execute(
        _upsert(conn, None),
        {"reason": HELD_REPLIES_REASON, "count": count, "first_at": now, "last_at": now},
    )


def held_note(numbers: set[str], replies: int) -> str:
    """A receipt's note for replies it holds because they name numbers we do not know."""
    shown = ", ".join(sorted(repr(n[:40]) for n in numbers)[:5])
    return f"{HELD_PREFIX} {replies} repl{'y' if replies == 1 else 'ies'} to number {shown}"


#: Receipts whose apply_error starts with this were applied except for replies held
#: because they name a number we do not know (health counts them).
HELD_PREFIX = "held: not ours:"
