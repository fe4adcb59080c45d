"""The applier: journalled receipts into messages, timelines, replies and templates, in batches.

`apply_next_batch` takes the oldest unapplied receipts (up to a number of events), applies
them in one write transaction and marks them applied, so a crash anywhere leaves them to
be applied again — and applying is idempotent, so again is harmless. On SQLite the same
transaction first moves the next bodies from the webhook inbox file into
`webhook_receipts` (`core.webhooks.inbox`). Several processes may run it at once:
PostgreSQL hands each one different receipts (`FOR UPDATE SKIP LOCKED`) and locks the
message rows it folds; SQLite serialises the transactions (`BEGIN IMMEDIATE`).
A receipt that fails on its own is retried a few times, then left aside and counted in
health; it never holds back the receipts after it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from core import clock
from core.db import is_transient
from core.models.types import utcnow
from core.webhooks.inbound import InboundItem, InboundReport, apply_inbound
from core.webhooks.inbox import Inbox, open_inbox, take_into_receipts
from core.webhooks.numbers import held_note, number_book, record_held_replies
from core.webhooks.parse import (
    InvalidBody,
    ParsedPayload,
    TemplateChange,
    decode_body,
    parse_payload,
)
from core.webhooks.sql import RECEIPTS, write_transaction
from core.webhooks.statuses import StatusItem, StatusReport, apply_status_items, release_held
from core.webhooks.templates import apply_template_changes

log = logging.getLogger(__name__)

#: Tries before a receipt that keeps failing is set aside (health counts it).
MAX_APPLY_ATTEMPTS = 5
#: How long a status may wait for its message before health reports it unmatched.
DEFAULT_HOLD_GRACE = timedelta(hours=1)


@dataclass
class ApplyReport:
    """What one batch (or sweep) did, for metrics, logs and tests."""

    receipts: int = 0
    failed_receipts: int = 0
    statuses: StatusReport = field(default_factory=StatusReport)
    inbound: InboundReport = field(default_factory=InboundReport)
    templates_changed: int = 0
    events: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, word)
    issues: int = 0
    lags: list[float] = field(default_factory=list)  # seconds from receipt to apply
    more_waiting: bool = False  # the batch was cut at its limits: apply again at once

    @property
    def did_work(self) -> bool:
        """True if the batch took any receipt (applied or failed)."""
        return bool(self.receipts or self.failed_receipts)


@dataclass(frozen=True, slots=True)
class _Receipt:
    id: int
    received_at: datetime
    body: str


def apply_next_batch(
    engine: Engine,
    *,
    max_receipts: int = 200,
    max_events: int = 500,
    default_tenant: str = "default",
) -> ApplyReport:
    """Apply the oldest unapplied receipts (at least one, up to `max_events` events), after
    moving the next ones from the SQLite inbox (if there is one) in the same transaction."""
    inbox = open_inbox(engine, create=False)
    try:
        return _apply_batch(engine, max_receipts, max_events, default_tenant, inbox=inbox)
    except Exception as exc:
        if is_transient(exc):
            raise  # the database is busy or gone: the caller retries the same batch later
        log.warning("a webhook batch failed (%s); applying its receipts one by one", exc)
    if inbox is not None:  # the failed batch put its inbox rows back: take them alone
        with write_transaction(engine) as conn:
            take_into_receipts(conn, inbox, max_receipts)
    failed_ids = _batch_ids(engine, max_receipts, max_events)
    # Something in the batch cannot be applied: apply its receipts one by one, so the
    # bad one is found and set aside while the others go through.
    report = ApplyReport()
    for receipt_id in failed_ids:
        try:
            single = _apply_batch(engine, 1, max_events, default_tenant, only=receipt_id)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.exception("webhook receipt %s could not be applied", receipt_id)
            _record_failure(engine, receipt_id, exc)
            report.failed_receipts += 1
            continue
        _merge(report, single)
    return report


def sweep_held(
    engine: Engine,
    *,
    grace: timedelta = DEFAULT_HOLD_GRACE,
    include_unmatched: bool = False,
    limit: int = 1000,
    now: datetime | None = None,
) -> ApplyReport:
    """Apply held statuses whose message has appeared; mark those past `grace` unmatched.

    `now` (default: `core.clock`) is the time the grace is measured from; tests set it so
    that "held for less than the grace" does not depend on the day they run.
    """
    report = ApplyReport()
    now = now or clock.now()
    with write_transaction(engine) as conn:
        report.statuses = release_held(
            conn,
            now=now,
            grace_cutoff=now - grace,
            include_unmatched=include_unmatched,
            limit=limit,
        )
    return report


def retry_failed_receipts(engine: Engine) -> int:
    """Give receipts that were set aside after repeated failures a fresh set of tries."""
    with write_transaction(engine) as conn:
        result = conn.execute(
            update(RECEIPTS)
            .where(
                RECEIPTS.c.applied_at.is_(None),
                RECEIPTS.c.apply_attempts >= MAX_APPLY_ATTEMPTS,
            )
            .values(apply_attempts=0)
        )
    return max(0, int(result.rowcount or 0))


def _candidates(conn: Connection, max_receipts: int, only: int | None) -> list[tuple[int, int]]:
    query = select(RECEIPTS.c.id, RECEIPTS.c.event_count).where(
        RECEIPTS.c.applied_at.is_(None), RECEIPTS.c.apply_attempts < MAX_APPLY_ATTEMPTS
    )
    if only is not None:
        query = query.where(RECEIPTS.c.id == only)
    query = query.order_by(RECEIPTS.c.id).limit(max_receipts)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [(row.id, row.event_count) for row in conn.execute(query)]


def _take(candidates: list[tuple[int, int]], max_events: int) -> list[int]:
    taken: list[int] = []
    events = 0
    for receipt_id, count in candidates:
        if taken and events + count > max_events:
            break
        taken.append(receipt_id)
        events += count
    return taken


def _batch_ids(engine: Engine, max_receipts: int, max_events: int) -> list[int]:
    with engine.connect() as conn:
        return _take(_candidates(conn, max_receipts, None), max_events)


def _apply_batch(
    engine: Engine,
    max_receipts: int,
    max_events: int,
    default_tenant: str,
    *,
    only: int | None = None,
    inbox: Inbox | None = None,
) -> ApplyReport:
    report = ApplyReport()
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            # Not waiting for this commit's WAL flush is safe: a crash can only lose the
            # whole transaction, applied marks included, and the receipts (committed
            # durably before their 200) are applied again. The disk's flushes are left
            # to the journal, whose commits the acknowledgements wait for.
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        taken = take_into_receipts(conn, inbox, max_receipts) if inbox is not None else 0
        candidates = _candidates(conn, max_receipts, only)
        ids = _take(candidates, max_events)
        cut = len(ids) < len(candidates) or len(candidates) == max_receipts
        report.more_waiting = cut or taken == max_receipts
        if not ids:
            return report
        receipts = [_Receipt(row.id, row.received_at, row.body) for row in _bodies(conn, ids)]
        now = utcnow()
        notes = _apply_receipts(conn, receipts, now, default_tenant, report)
        _mark_applied(conn, ids, now)
        for receipt_id, note in notes.items():  # applied, but replies held: health shows it
            conn.execute(
                update(RECEIPTS).where(RECEIPTS.c.id == receipt_id).values(apply_error=note)
            )
    report.receipts = len(receipts)
    report.lags = [(now - r.received_at).total_seconds() for r in receipts]
    return report


def _bodies(conn: Connection, ids: list[int]) -> Any:
    """The receipts `ids` (id, received_at, body) in id order; on PostgreSQL one `= ANY`
    query whose text never changes (an IN list is compiled again for every length)."""
    if conn.dialect.name == "postgresql":
        sql = (
            f"SELECT id, received_at, body FROM {RECEIPTS.name} "  # noqa: S608
            "WHERE id = ANY(%b::bigint[]) ORDER BY id"
        )
        return conn.exec_driver_sql(sql, (ids,))
    return conn.execute(
        select(RECEIPTS.c.id, RECEIPTS.c.received_at, RECEIPTS.c.body)
        .where(RECEIPTS.c.id.in_(ids))
        .order_by(RECEIPTS.c.id)
    )


def _mark_applied(conn: Connection, ids: list[int], now: datetime) -> None:
    """Mark the receipts `ids` applied at `now` (as `_bodies`, one fixed query on PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        sql = (
            f"UPDATE {RECEIPTS.name} SET applied_at = %s, apply_error = NULL "  # noqa: S608
            "WHERE id = ANY(%b::bigint[])"
        )
        conn.exec_driver_sql(sql, (now, ids))
        return
    conn.execute(
        update(RECEIPTS).where(RECEIPTS.c.id.in_(ids)).values(applied_at=now, apply_error=None)
    )


def _apply_receipts(
    conn: Connection,
    receipts: list[_Receipt],
    now: datetime,
    default_tenant: str,
    report: ApplyReport,
) -> dict[int, str]:
    """Apply the receipts' events; return notes for receipts whose replies were held
    (they name a business number we do not know: `core.webhooks.numbers`)."""
    book = number_book(conn, default_tenant)
    statuses: list[StatusItem] = []
    inbound: list[InboundItem] = []
    templates: list[TemplateChange] = []
    notes: dict[int, str] = {}
    for receipt in receipts:
        parsed = _parse(receipt)
        report.issues += len(parsed.issues)
        for update_ in parsed.statuses:
            statuses.append(StatusItem.of(update_, receipt.id, receipt.received_at))
            report.events["status", update_.status] += 1
        strangers: set[str] = set()
        held = 0
        for message in parsed.messages:
            report.events["message", message.type] += 1
            number = message.phone_number_id
            if number is not None and number not in book:
                strangers.add(number)  # never stored under a tenant: held in its receipt
                held += 1
                continue
            inbound.append(InboundItem(message, receipt.id, receipt.received_at))
        if held:
            notes[receipt.id] = held_note(strangers, held)
            report.inbound.held += held
        for change in parsed.template_changes:
            templates.append(change)
            report.events[f"template_{change.kind}", change.value.lower()] += 1
        for other in parsed.other_changes:
            report.events["other", other.field] += 1
    if statuses:
        apply_status_items(conn, statuses, now, report.statuses, book)
    if inbound:
        apply_inbound(conn, inbound, now, default_tenant, report.inbound, book)
    if templates:
        report.templates_changed += apply_template_changes(conn, templates, now)
    if notes:
        record_held_replies(conn, report.inbound.held, now)
    return notes


def _parse(receipt: _Receipt) -> ParsedPayload:
    try:
        doc = decode_body(receipt.body)
    except InvalidBody as exc:  # only possible if the journal was written by other means
        parsed = ParsedPayload(object=None)
        parsed.issues.append(f"receipt {receipt.id}: {exc}")
        return parsed
    return parse_payload(doc, receipt.received_at)


def _record_failure(engine: Engine, receipt_id: int, exc: BaseException) -> None:
    text = f"{type(exc).__name__}: {exc}"[:2000]
    with write_transaction(engine) as conn:
        conn.execute(
            update(RECEIPTS)
            .where(RECEIPTS.c.id == receipt_id)
            .values(apply_attempts=RECEIPTS.c.apply_attempts + 1, apply_error=text)
        )


def _merge(total: ApplyReport, part: ApplyReport) -> None:
    total.receipts += part.receipts
    total.more_waiting = total.more_waiting or part.more_waiting
    total.failed_receipts += part.failed_receipts
    total.templates_changed += part.templates_changed
    total.issues += part.issues
    total.lags.extend(part.lags)
    total.events.update(part.events)
    names = ("applied", "duplicates", "held", "unmatched", "conflicts", "wrong_number")
    for name in (*names, "messages_changed"):
        setattr(total.statuses, name, getattr(total.statuses, name) + getattr(part.statuses, name))
    total.statuses.templates_held += part.statuses.templates_held
    for name in ("stored", "duplicates", "matched_suppliers", "acknowledgements", "held"):
        setattr(total.inbound, name, getattr(total.inbound, name) + getattr(part.inbound, name))
