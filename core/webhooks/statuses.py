"""Status events into the messages table: match, record in the timeline, fold, write.

A status is matched to its message by wamid, or by `biz_opaque_callback_data` (our own
message id) when the wamid is not recorded yet — then the wamid is recorded too. A status
that matches nothing is kept in the timeline as `pending` and applied by `sweep_held`
once its message appears; past the grace period it is marked `unmatched` (health shows
it). All functions here run inside the caller's write transaction.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, or_, select, update

from core.errors import TEMPLATE_CODES
from core.models.events import StatusEventState
from core.webhooks.fold import MessageState, StatusFact, fold
from core.webhooks.numbers import NumberBook
from core.webhooks.parse import (
    Conversation,
    EventError,
    Pricing,
    StatusUpdate,
)
from core.webhooks.sql import (
    EVENTS,
    MESSAGES,
    TEMPLATES,
    array_rows,
    chunks,
    execute_many,
    insert_ignoring,
    parsed_receipts,
    rowcount,
)

_STATE_COLUMNS = tuple(f.name for f in fields(MessageState))
_ROW_COLUMNS = (*_STATE_COLUMNS, "tenant_id", "whatsapp_message_id", "template_name")
_ROW_COLUMNS_ALL = (*_ROW_COLUMNS, "template_language", "phone_number_id")


@dataclass(frozen=True, slots=True)
class StatusItem:
    """A status event on its way to a message: from a new receipt or from the timeline."""

    fact: StatusFact
    wamid: str
    callback_data: str | None
    received_at: datetime
    receipt_id: int | None = None
    update: StatusUpdate | None = None  # None when re-read from the timeline (sweep)
    #: the business number the event names (`metadata.phone_number_id`)
    phone_number_id: str | None = None

    @classmethod
    def of(cls, update: StatusUpdate, receipt_id: int | None, received_at: datetime) -> StatusItem:
        """An item for a status parsed from a receipt."""
        return cls(
            fact=StatusFact.of(update),
            wamid=update.wamid,
            callback_data=update.callback_data,
            received_at=received_at,
            receipt_id=receipt_id,
            update=update,
            phone_number_id=update.phone_number_id,
        )


@dataclass
class StatusReport:
    """What applying a set of status events did."""

    applied: int = 0  # events folded into a message (duplicates included)
    duplicates: int = 0  # events the timeline already had
    held: int = 0  # events with no message yet
    unmatched: int = 0  # held events given up on by the sweep
    conflicts: int = 0  # callback data naming a message with another wamid
    wrong_number: int = 0  # naming a number we do not know, or not their message's
    messages_changed: int = 0
    templates_held: int = 0


@dataclass
class _Message:
    state: MessageState
    tenant_id: str
    wamid: str | None
    template_name: str | None
    template_language: str | None
    phone_number_id: str | None = None  # the number it went out from
    new_wamid: str | None = None  # recorded from callback data in this transaction


def apply_status_items(
    conn: Connection,
    items: list[StatusItem],
    now: datetime,
    report: StatusReport,
    book: NumberBook | None = None,
) -> list[StatusItem]:
    """Match, record and fold `items`; return the ones that stay held (no message).

    With the `book` of known numbers, an event naming a number not in it is held
    (`unknown_num`); with or without it, an event whose message went out from another
    number than the one it names is not applied (`other_number`)."""
    unique: dict[str, StatusItem] = {}
    for item in items:
        unique.setdefault(item.fact.key, item)
    report.duplicates += len(items) - len(unique)  # the same event twice in this batch
    items = sorted(unique.values(), key=lambda i: (i.wamid, i.fact.key))
    if not items:
        return []
    by_wamid, by_id = _lock_messages(conn, items)
    targets: dict[str, tuple[_Message | None, str]] = {}
    for item in items:
        targets[item.fact.key] = _match(item, by_wamid, by_id, book)
    _record_timeline(conn, items, targets, now, report)
    held: list[StatusItem] = []
    facts: dict[str, list[StatusFact]] = defaultdict(list)
    messages: dict[str, _Message] = {}
    for item in items:
        message, state = targets[item.fact.key]
        if state == StatusEventState.APPLIED and message is not None:
            facts[message.state.id].append(item.fact)
            messages[message.state.id] = message
            report.applied += 1
        elif state == StatusEventState.CONFLICT:
            report.conflicts += 1
        elif state in (StatusEventState.UNKNOWN_NUMBER, StatusEventState.OTHER_NUMBER):
            report.wrong_number += 1
        else:
            held.append(item)
    _fold_and_write(conn, messages, facts, now, report)
    report.held += len(held)
    return held


def _lock_messages(
    conn: Connection, items: list[StatusItem]
) -> tuple[dict[str, _Message], dict[str, _Message]]:
    """The messages the items name, locked for this transaction (by wamid, then by id)."""
    by_wamid: dict[str, _Message] = {}
    for row in _locked_rows(conn, "whatsapp_message_id", sorted({i.wamid for i in items})):
        by_wamid[row.whatsapp_message_id] = _message(row)
    wanted = {
        i.callback_data
        for i in items
        if i.wamid not in by_wamid and i.callback_data and _is_uuid(i.callback_data)
    }
    by_id: dict[str, _Message] = {}
    for row in _locked_rows(conn, "id", sorted(wanted)):
        by_id[row.id] = _message(row)
    return by_wamid, by_id


def _locked_rows(conn: Connection, column: str, values: list[str]) -> Iterator[Row[Any]]:
    """The messages whose `column` is one of `values`, locked on PostgreSQL (in id order):
    there one `= ANY(array)` query whose text never changes (parsed and planned once),
    not IN lists of a new length each batch, compiled again by SQLAlchemy and psycopg."""
    if not values:
        return
    if conn.dialect.name == "postgresql":
        sql = (
            f"SELECT {', '.join(_ROW_COLUMNS_ALL)} FROM {MESSAGES.name} "  # noqa: S608
            f"WHERE {column} = ANY(%b::varchar[]) ORDER BY id FOR UPDATE"
        )
        yield from conn.exec_driver_sql(sql, (values,))
        return
    columns = [MESSAGES.c[name] for name in _ROW_COLUMNS_ALL]
    for batch in chunks(values):
        query = select(*columns).where(MESSAGES.c[column].in_(batch))
        yield from conn.execute(query.order_by(MESSAGES.c.id))


def _message(row: Row[Any]) -> _Message:
    values = row._mapping
    return _Message(
        state=MessageState(**{name: values[name] for name in _STATE_COLUMNS}),
        tenant_id=values["tenant_id"],
        wamid=values["whatsapp_message_id"],
        template_name=values["template_name"],
        template_language=values["template_language"],
        phone_number_id=values["phone_number_id"],
    )


def _match(
    item: StatusItem,
    by_wamid: dict[str, _Message],
    by_id: dict[str, _Message],
    book: NumberBook | None = None,
) -> tuple[_Message | None, str]:
    number = item.phone_number_id
    if book is not None and number is not None and number not in book:
        return None, StatusEventState.UNKNOWN_NUMBER
    found = by_wamid.get(item.wamid) or by_id.get(item.callback_data or "")
    if found is not None and number is not None and found.phone_number_id not in (None, number):
        return None, StatusEventState.OTHER_NUMBER  # never applied across numbers
    if (message := by_wamid.get(item.wamid)) is not None:
        return message, StatusEventState.APPLIED
    message = by_id.get(item.callback_data or "")
    if message is None:
        return None, StatusEventState.PENDING
    if message.wamid == item.wamid:
        # Another process recorded this wamid from callback data while we waited for the
        # row's lock (it was not there when we looked it up by wamid).
        return message, StatusEventState.APPLIED
    if message.wamid is None and message.new_wamid in (None, item.wamid):
        # Meta's first word on a send whose API answer we never recorded: adopt its wamid.
        message.new_wamid = item.wamid
        by_wamid[item.wamid] = message
        return message, StatusEventState.APPLIED
    return message, StatusEventState.CONFLICT


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


def _record_timeline(
    conn: Connection,
    items: list[StatusItem],
    targets: dict[str, tuple[_Message | None, str]],
    now: datetime,
    report: StatusReport,
) -> None:
    """Insert new events; bring events the timeline already held up to date."""
    fresh = [i for i in items if i.update is not None]
    inserted = 0
    if fresh:
        rows = [_timeline_row(i, *targets[i.fact.key], now) for i in fresh]
        if conn.dialect.name == "postgresql":
            inserted = _insert_timeline_pg(conn, rows)
        else:
            statement = insert_ignoring(conn, EVENTS, ["event_key"])
            inserted = execute_many(conn, "timeline_insert", statement, rows, columns=list(rows[0]))
        report.duplicates += len(fresh) - inserted
    if inserted == len(items):
        return
    # Some events were there already (Meta's duplicates, or held events being swept):
    # those still held move to where they belong now. Applied ones never move back.
    promote = [
        {
            "b_key": item.fact.key,
            "b_state": state,
            "b_message": message.state.id if message else None,
            "b_tenant": message.tenant_id if message else None,
            "b_now": now,
        }
        for item in items
        for message, state in [targets[item.fact.key]]
        if state != StatusEventState.PENDING
    ]
    if promote:
        conn.execute(
            update(EVENTS)
            .where(
                EVENTS.c.event_key == bindparam("b_key"),
                # Not `IN (...)`: an expanding parameter cannot be used with executemany.
                or_(
                    EVENTS.c.state == StatusEventState.PENDING,
                    EVENTS.c.state == StatusEventState.UNMATCHED,
                ),
            )
            .values(
                state=bindparam("b_state"),
                message_id=bindparam("b_message"),
                tenant_id=bindparam("b_tenant"),
                applied_at=bindparam("b_now", type_=EVENTS.c.applied_at.type),
            ),
            promote,
        )


def _timeline_row(
    item: StatusItem, message: _Message | None, state: str, now: datetime
) -> dict[str, Any]:
    fact = item.fact
    error = fact.error or EventError(None, None, None, None)
    pricing = fact.pricing or Pricing(None, None, None, None)
    conversation = fact.conversation or Conversation(None, None, None)
    return {
        "event_key": fact.key,
        "tenant_id": message.tenant_id if message else None,
        "message_id": message.state.id if message else None,
        "wamid": item.wamid,
        "status": fact.status,
        "at": fact.at,
        "recipient_id": fact.recipient_id,
        "callback_data": item.callback_data,
        "error_code": error.code,
        "error_title": error.title,
        "error_details": error.details,
        "pricing_category": pricing.category,
        "pricing_type": pricing.type,
        "pricing_model": pricing.model,
        "billable": pricing.billable,
        "conversation_id": conversation.id,
        "conversation_origin": conversation.origin,
        "conversation_expires_at": conversation.expires_at,
        "state": state,
        "receipt_id": item.receipt_id,
        "received_at": item.received_at,
        "applied_at": now if state == StatusEventState.APPLIED else None,
    }


def _fold_and_write(
    conn: Connection,
    messages: dict[str, _Message],
    facts: dict[str, list[StatusFact]],
    now: datetime,
    report: StatusReport,
) -> None:
    changes: list[dict[str, Any]] = []
    holds: dict[tuple[str, str, str], str] = {}
    for mid, message in messages.items():
        folded = fold(message.state, facts[mid])
        if folded == message.state and message.new_wamid is None:
            continue
        changes.append({"b_id": mid, "b_wamid": message.new_wamid, "b_now": now, **_values(folded)})
        message.state = folded
        if message.new_wamid is not None:
            message.wamid, message.new_wamid = message.new_wamid, None
        if folded.error_code in TEMPLATE_CODES and message.template_name:
            key = (message.tenant_id, message.template_name, message.template_language or "")
            holds[key] = folded.error_message or "Template held by Meta"
    if changes:
        if conn.dialect.name == "postgresql":
            _update_messages_pg(conn, changes, now)
        else:
            execute_many(conn, "message_update", _message_update(), changes)
        report.messages_changed += len(changes)
    if holds:
        report.templates_held += _hold_templates(conn, holds, now)


def _values(state: MessageState) -> dict[str, Any]:
    return {f"b_{name}": getattr(state, name) for name in _STATE_COLUMNS if name != "id"}


def _message_update() -> Any:
    values: dict[str, Any] = {
        name: bindparam(f"b_{name}", type_=MESSAGES.c[name].type)
        for name in _STATE_COLUMNS
        if name != "id"
    }
    values["whatsapp_message_id"] = func.coalesce(
        MESSAGES.c.whatsapp_message_id,
        bindparam("b_wamid", type_=MESSAGES.c.whatsapp_message_id.type),
    )
    values["updated_at"] = bindparam("b_now", type_=MESSAGES.c.updated_at.type)
    return update(MESSAGES).where(MESSAGES.c.id == bindparam("b_id")).values(**values)


def _insert_timeline_pg(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """PostgreSQL: the batch's new timeline rows in one INSERT (events already there are
    skipped); returns how many were new."""
    columns = list(rows[0])
    relation, arrays = array_rows(conn, EVENTS, columns, rows)
    quote = conn.dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {EVENTS.name} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
        f"SELECT * FROM {relation} ON CONFLICT (event_key) DO NOTHING"
    )
    return rowcount(conn.exec_driver_sql(sql, tuple(arrays)))


def _update_messages_pg(conn: Connection, changes: list[dict[str, Any]], now: datetime) -> None:
    """PostgreSQL: every changed message in one UPDATE ... FROM unnest(...), so the
    rollups' statement triggers (migration 0025) add up the batch once, per cell."""
    names = [name for name in _STATE_COLUMNS if name != "id"]
    columns = ["id", "whatsapp_message_id", *names]
    keys = ["b_id", "b_wamid", *(f"b_{name}" for name in names)]
    rows = sorted(changes, key=lambda change: str(change["b_id"]))
    relation, arrays = array_rows(conn, MESSAGES, columns, rows, keys)
    sets = ", ".join(f"{name} = v.{name}" for name in names)
    sql = (
        f"UPDATE {MESSAGES.name} AS m SET {sets}, "  # noqa: S608
        "whatsapp_message_id = COALESCE(m.whatsapp_message_id, v.whatsapp_message_id), "
        f"updated_at = %s FROM {relation} WHERE m.id = v.id"
    )
    conn.exec_driver_sql(sql, (now, *arrays))


def item_of_row(row: Row[Any], phone_number_id: str | None) -> StatusItem:
    """A stored timeline row as a status to match again (its number read back from
    its receipt: the timeline keeps no copy)."""
    return StatusItem(
        fact=fact_of_row(row),
        wamid=row.wamid,
        callback_data=row.callback_data,
        received_at=row.received_at,
        receipt_id=row.receipt_id,
        phone_number_id=phone_number_id,
    )


def fact_of_row(row: Row[Any]) -> StatusFact:
    """The facts of a timeline row (the same values `StatusFact.of` gives its update)."""
    error = None
    if row.error_code is not None or row.error_title is not None or row.error_details is not None:
        error = EventError(row.error_code, row.error_title, None, row.error_details)
    pricing = Pricing(row.billable, row.pricing_model, row.pricing_category, row.pricing_type)
    conversation = Conversation(
        row.conversation_id, row.conversation_origin, row.conversation_expires_at
    )
    return StatusFact(
        key=row.event_key,
        status=row.status,
        at=row.at,
        recipient_id=row.recipient_id,
        error=error,
        pricing=None if pricing == Pricing(None, None, None, None) else pricing,
        conversation=None if conversation == Conversation(None, None, None) else conversation,
    )


def _hold_templates(conn: Connection, holds: dict[tuple[str, str, str], str], now: datetime) -> int:
    result = conn.execute(
        update(TEMPLATES)
        .where(
            TEMPLATES.c.tenant_id == bindparam("b_tenant"),
            TEMPLATES.c.template_name == bindparam("b_name"),
            TEMPLATES.c.language == bindparam("b_lang"),
            TEMPLATES.c.held_reason.is_(None),
        )
        .values(
            held_reason=bindparam("b_reason"),
            updated_at=bindparam("b_now", type_=TEMPLATES.c.updated_at.type),
        ),
        [
            {"b_tenant": t, "b_name": n, "b_lang": lang, "b_reason": reason, "b_now": now}
            for (t, n, lang), reason in holds.items()
        ],
    )
    return max(0, int(result.rowcount or 0))


def _numbers_named(conn: Connection, rows: Sequence[Row[Any]]) -> dict[tuple[int, str], str]:
    """The number each held event named, from its receipt (the timeline keeps no copy):
    (receipt id, wamid) -> phone number id. Few rows: only held events that now match."""
    ids = {row.receipt_id for row in rows if row.receipt_id is not None}
    found: dict[tuple[int, str], str] = {}
    for receipt_id, _, parsed in parsed_receipts(conn, ids):
        for status in parsed.statuses:
            if status.phone_number_id is not None:
                found[(receipt_id, status.wamid)] = status.phone_number_id
    return found


def release_held(
    conn: Connection, *, now: datetime, grace_cutoff: datetime, include_unmatched: bool, limit: int
) -> StatusReport:
    """Apply held events whose message now exists; mark `unmatched` those past the grace.

    Only events that can match are read back (their wamid, or their callback data as a
    message id, is in the messages table), so statuses that will never match — another
    system's messages on the same number — cost the sweep nothing and never crowd out
    the ones that can be applied.
    """
    report = StatusReport()
    states = [StatusEventState.PENDING]
    if include_unmatched:
        states.append(StatusEventState.UNMATCHED)
    m = MESSAGES.c
    matchable = or_(
        select(m.id).where(m.whatsapp_message_id == EVENTS.c.wamid).exists(),
        select(m.id).where(m.id == EVENTS.c.callback_data).exists(),
    )
    # `state <> 'applied'` lets SQLite use the partial index of held events (not a scan).
    not_applied = EVENTS.c.state != StatusEventState.APPLIED
    rows = conn.execute(
        select(EVENTS)
        .where(not_applied, EVENTS.c.state.in_(states), matchable)
        .order_by(EVENTS.c.id)
        .limit(limit)
    ).all()
    numbers = _numbers_named(conn, rows)
    items = [item_of_row(row, numbers.get((row.receipt_id, row.wamid))) for row in rows]
    if items:
        apply_status_items(conn, items, now, report)
    result = conn.execute(
        update(EVENTS)
        .where(
            not_applied,
            EVENTS.c.state == StatusEventState.PENDING,
            EVENTS.c.received_at < bindparam("b_cutoff", type_=EVENTS.c.received_at.type),
        )
        .values(state=StatusEventState.UNMATCHED),
        {"b_cutoff": grace_cutoff},
    )
    report.unmatched += rowcount(result)
    report.held = 0  # still held: counted when first held, not again at each sweep
    return report
