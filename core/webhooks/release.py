"""Events held for a number we did not know, applied once that number is registered.

The applier holds what names a business number not in the book (`number_book`): a status
is kept in the timeline as `unknown_num`, a reply stays in its receipt (whose
`apply_error` starts with `HELD_PREFIX`). Nothing of them was applied, so once the number
is known (registered with `wanotify numbers add`, or made the environment's number) they
can be applied exactly as if they had just arrived: `release_held_numbers` does that, in
one write transaction, for every held event whose number the book now knows.

A released status goes through the usual matching (`apply_status_items`): applied to its
message when that went out from the same number, `other_number` when not, and `pending`
(then the sweep's, as any status waiting for its message) when its message is not there.
A released reply is stored with its number's tenant (`apply_inbound`); replies of the
receipt that still name an unknown number stay held, and its note says so. The count of
held replies health shows goes down by the replies released.

Cost: the held statuses are read by the partial index of events not applied; held
replies are found by their receipts' note (a scan of `webhook_receipts` without reading
bodies, then only the held receipts are parsed): an admin's command, not a hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, case, select, update

from core import clock
from core.models.events import StatusEventState
from core.webhooks.inbound import InboundItem, InboundReport, apply_inbound
from core.webhooks.numbers import (
    HELD_PREFIX,
    HELD_REPLIES_REASON,
    NumberBook,
    held_note,
    number_book,
)
from core.webhooks.rejections import REJECTIONS
from core.webhooks.sql import EVENTS, RECEIPTS, parsed_receipts, write_transaction
from core.webhooks.statuses import (
    StatusReport,
    _numbers_named,
    apply_status_items,
    item_of_row,
)


@dataclass(frozen=True)
class Released:
    """What releasing held events did."""

    statuses: int = 0  # held statuses taken up again (applied, or waiting for their message)
    applied: int = 0  # of those, applied to their message now
    replies: int = 0  # held replies stored now

    @property
    def total(self) -> int:
        """Held events taken up (statuses and replies)."""
        return self.statuses + self.replies


def release_held_numbers(
    engine: Engine, *, default_tenant: str, now: datetime | None = None
) -> Released:
    """Apply the held events (statuses and replies) whose business number is now known.

    Idempotent: what is released is no longer held, so running it again does nothing.
    """
    now = now or clock.now()
    with write_transaction(engine) as conn:
        book = number_book(conn, default_tenant)
        report = StatusReport()
        statuses = _release_statuses(conn, book, now, report)
        replies = _release_replies(conn, book, now, default_tenant)
    return Released(statuses, report.applied, replies)


def _release_statuses(
    conn: Connection, book: NumberBook, now: datetime, report: StatusReport
) -> int:
    rows = conn.execute(
        select(EVENTS)
        .where(
            EVENTS.c.state != StatusEventState.APPLIED,  # the partial index of held events
            EVENTS.c.state == StatusEventState.UNKNOWN_NUMBER,
        )
        .order_by(EVENTS.c.id)
    ).all()
    named = _numbers_named(conn, rows)
    known = [
        (row, number)
        for row in rows
        if (number := named.get((row.receipt_id, row.wamid))) is not None and number in book
    ]
    if not known:
        return 0
    # Known now: each is an ordinary status waiting for its message, then matched as one.
    conn.execute(
        update(EVENTS)
        .where(EVENTS.c.id == bindparam("b_id"))
        .values(state=StatusEventState.PENDING),
        [{"b_id": row.id} for row, _ in known],
    )
    items = [item_of_row(row, number) for row, number in known]
    apply_status_items(conn, items, now, report, book)
    return len(items)


def _release_replies(conn: Connection, book: NumberBook, now: datetime, default_tenant: str) -> int:
    held = conn.execute(
        select(RECEIPTS.c.id).where(
            RECEIPTS.c.applied_at.is_not(None), RECEIPTS.c.apply_error.like(f"{HELD_PREFIX}%")
        )
    ).scalars()
    items: list[InboundItem] = []
    notes: list[dict[str, object]] = []
    for receipt_id, received_at, parsed in parsed_receipts(conn, held):
        strangers: set[str] = set()
        still = 0
        taken = 0
        for message in parsed.messages:
            number = message.phone_number_id
            if number is None or number in book:
                taken += 1
                items.append(InboundItem(message, receipt_id, received_at))
            else:
                strangers.add(number)
                still += 1
        if taken:
            note = held_note(strangers, still) if still else None
            notes.append({"b_id": receipt_id, "b_note": note})
    if not items:
        return 0
    report = InboundReport()
    apply_inbound(conn, items, now, default_tenant, report, book)
    conn.execute(
        update(RECEIPTS)
        .where(RECEIPTS.c.id == bindparam("b_id"))
        .values(apply_error=bindparam("b_note")),
        notes,
    )
    # the receipt's replies applied at first (a known number's) are duplicates now
    released = report.stored
    count = REJECTIONS.c["count"]
    conn.execute(
        update(REJECTIONS)
        .where(REJECTIONS.c.reason == HELD_REPLIES_REASON)
        .values({count: case((count > released, count - released), else_=0)})
    )
    return released
