"""Recording a checked CSV batch at volume: 100,000 rows, chunk by chunk.

`record_plan` is what `core.bulk.start_batch` does with a checked file. The batch is
written first with status `importing` and its number of rows; then each chunk of rows
is recorded in one transaction: its new suppliers, the consent its rows confirm, its
messages (queued: the dispatcher may start sending them at once) and one batch row per
input row, with what it became or why it was refused. Every lookup is set-based (the
chunk's suppliers, its idempotency keys, the tenant's consent setting once); inserts are
Core INSERTs of many rows, not one ORM object and flush per row.

Every row still passes the one gate, `core.notify.prepare_template_message` (consent,
parameters, template), and keys stay unique per tenant (the database decides: a key
another process queued meanwhile makes the chunk start again, and its row is then
"already sent").

Nothing lost: a chunk is recorded whole or not at all. When the import stops half way
(the process died), the batch keeps status `importing` with fewer rows recorded than it
announced, and `import_interrupted` says so once no chunk has landed for
`STALE_AFTER`: the page shows it as interrupted, never as a complete batch. Uploading the
file again queues the rest; the rows already queued are recognised by their keys and
not sent twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core import clock
from core.consent.record import grant_rows
from core.consent.tenant import allows_unrecorded
from core.csv_import import RowCheck
from core.db import session_scope
from core.models.batches import BatchRow, BatchStatus, SendBatch
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.suppliers import Supplier
from core.models.types import new_id, utcnow
from core.notify import (
    DEFAULT_LANGUAGE,
    NoticeRejected,
    prepare_template_message,
    resolve_template,
)
from core.outbox import OutboundMessage
from core.routing import NumberError, SenderNumber, route
from core.settings import get_settings
from core.templates import TemplateDefinition

if TYPE_CHECKING:
    from core.bulk import BulkPlan

log = logging.getLogger(__name__)

M = WhatsAppMessage.__table__  # type: ignore[attr-defined]
R = BatchRow.__table__  # type: ignore[attr-defined]
BT = SendBatch.__table__  # type: ignore[attr-defined]
S = Supplier.__table__  # type: ignore[attr-defined]

#: Rows per transaction: small enough that other writers (the dispatcher, webhooks, the
#: page's own clicks) get the database between chunks, large enough to be cheap.
CHUNK = 2_000
#: Values per `IN (...)`: well under SQLite's variable limit.
IN_CHUNK = 500
#: A chunk that meets a key queued meanwhile by another process is tried again this often.
ATTEMPTS = 3
#: An importing batch without a new chunk for this long was interrupted (its process died).
STALE_AFTER = timedelta(minutes=2)

#: Called once the batch is recorded and after each chunk, with (rows recorded, rows
#: in the file, the batch's id).
ImportProgress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SupplierRow:
    """A supplier as a batch reads it in bulk: what the gate and the consent rule need."""

    id: int | None
    name: str
    opted_in: bool
    opted_out_at: datetime | None
    opt_out_source: str | None


def record_plan(
    plan: BulkPlan,
    *,
    name: str,
    created_by: str | None,
    source: str,
    upload_format: Mapping[str, Any],
    engine: Engine,
    on_progress: ImportProgress | None = None,
    chunk: int = CHUNK,
) -> SendBatch:
    """Record the batch of a checked file and queue its valid rows, chunk by chunk.

    The default language's template is resolved first, as it is now (NoticeRejected,
    and no batch at all, if it was paused or removed since the file was checked);
    another language's version that cannot be sent refuses its rows with the reason.
    Returns the batch as it ends: `running`, or `done` when no row was queued.
    """
    sender = _sender(engine, plan.tenant_id)
    with session_scope(engine) as session:
        definition = resolve_template(
            session, plan.tenant_id, plan.definition.name, plan.definition.language
        )
        versions = _current_versions(session, plan, definition)
        allowed = allows_unrecorded(session, plan.tenant_id)
        batch = SendBatch(
            tenant_id=plan.tenant_id,
            name=name[:255] or "batch",
            source=source,
            template_name=definition.name,
            template_language=definition.language,
            status=BatchStatus.IMPORTING,
            total_rows=len(plan.checks),
            created_by=created_by,
            upload_format=dict(upload_format),
        )
        session.add(batch)
        session.flush()
        batch_id = batch.id
    state = _ImportState(versions, allowed, sender)
    total = len(plan.checks)
    if on_progress is not None:
        on_progress(0, total, batch_id)
    for start in range(0, total, chunk):
        indexes = range(start, min(start + chunk, total))
        for attempt in range(1, ATTEMPTS + 1):
            try:
                _record_chunk(engine, plan, batch_id, indexes, state, by=created_by, src=source)
                break
            except IntegrityError:  # a key (or supplier) another process wrote meanwhile
                if attempt == ATTEMPTS:
                    raise
                log.info("batch %s: chunk at row %d met a concurrent write; again", batch_id, start)
        if on_progress is not None:
            on_progress(indexes.stop, total, batch_id)
    with session_scope(engine) as session:
        finished = session.get(SendBatch, batch_id)
        assert finished is not None
        finished.status = BatchStatus.RUNNING if state.queued else BatchStatus.DONE
        finished.upload_format = {**dict(upload_format), "languages": dict(state.languages)}
        finished.updated_at = utcnow()
        session.add(finished)
        session.flush()
        log.info("batch %s (%s): %d rows, %d queued", batch_id, name, total, state.queued)
        return finished


def import_interrupted(status: str, updated_at: datetime, now: datetime | None = None) -> bool:
    """True for a batch whose import stopped half way: still `importing`, and no chunk
    recorded for `STALE_AFTER` (the import writes one every few seconds while it runs)."""
    if status != BatchStatus.IMPORTING:
        return False
    return (now or clock.now()) - updated_at > STALE_AFTER


@dataclass
class _ImportState:
    """What one import carries from chunk to chunk."""

    versions: dict[str, TemplateDefinition | NoticeRejected]
    unrecorded_allowed: bool
    sender: SenderNumber  # the number every message goes out from
    first_row_of: dict[str, int] = field(default_factory=dict)  # key -> the row queuing it
    queued: int = 0
    languages: dict[str, int] = field(default_factory=dict)


def _current_versions(
    session: Session, plan: BulkPlan, definition: TemplateDefinition
) -> dict[str, TemplateDefinition | NoticeRejected]:
    """The template's version in every language the valid rows use, as it is now."""
    versions: dict[str, TemplateDefinition | NoticeRejected] = {definition.language: definition}
    for language in {check.language or definition.language for check in plan.checks if check.ok}:
        if language not in versions:
            try:
                versions[language] = resolve_template(
                    session, plan.tenant_id, plan.definition.name, language
                )
            except NoticeRejected as exc:
                versions[language] = exc
    return versions


def _record_chunk(
    engine: Engine,
    plan: BulkPlan,
    batch_id: str,
    indexes: range,
    state: _ImportState,
    *,
    by: str | None,
    src: str,
) -> None:
    """One chunk of rows in one transaction: suppliers, consent, messages, batch rows."""
    checks = plan.checks[indexes.start : indexes.stop]
    raws = plan.table.rows[indexes.start : indexes.stop]
    firsts = dict(state.first_row_of)  # kept only if the chunk commits
    languages = dict(state.languages)
    queued = 0
    with session_scope(engine) as session:
        conn = session.connection()
        suppliers = _suppliers(conn, plan, checks, by)
        keys = [c.idempotency_key for c in checks if c.ok and c.idempotency_key]
        earlier = _existing_keys(conn, plan.tenant_id, keys)
        now = utcnow()
        messages: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        for check, raw in zip(checks, raws, strict=True):
            row: dict[str, Any] = {
                "batch_id": batch_id,
                "row_number": check.row_number,
                "raw": raw,
                "error": None,
                "message_id": None,
            }
            rows.append(row)
            if not check.ok or check.phone_e164 is None:
                row["error"] = "; ".join(check.errors)
                continue
            version = state.versions[check.language or plan.definition.language]
            if isinstance(version, NoticeRejected):
                row["error"] = str(version)
                continue
            try:
                prepared = prepare_template_message(
                    session,
                    tenant_id=plan.tenant_id,
                    phone=check.phone_e164,
                    template_name=version.name,
                    language=version.language,
                    params=check.params,
                    idempotency_key=check.idempotency_key,
                    supplier=suppliers[check.phone_e164],
                    po_number=(check.values.get("po_number") or "").strip() or None,
                    created_by=by,
                    source=src,
                    batch_id=batch_id,
                    batch_row=check.row_number,
                    definition=version,
                    phone_normalised=True,
                    unrecorded_allowed=state.unrecorded_allowed,
                    phone_number_id=state.sender,
                )
            except NoticeRejected as exc:
                row["error"] = str(exc)
                continue
            key = prepared.outbound.idempotency_key
            if key in earlier:
                row["error"] = _already_sent(*earlier[key])
            elif key in firsts:
                row["error"] = f"duplicate of row {firsts[key]}"
            else:
                firsts[key] = check.row_number
                values = _message_values(prepared.outbound, now)
                messages.append(values)
                row["message_id"] = values["id"]
                languages[version.language] = languages.get(version.language, 0) + 1
                queued += 1
        if messages:
            conn.execute(insert(M), messages)
        conn.execute(insert(R), rows)
        conn.execute(update(BT).where(BT.c.id == batch_id).values(updated_at=now))
    state.first_row_of, state.languages = firsts, languages
    state.queued += queued


#: OutboundMessage fields stored under another column name.
_COLUMN_OF = {"meta": "metadata", "not_before": "next_attempt_at"}


def _message_values(msg: OutboundMessage, now: datetime) -> dict[str, Any]:
    """The pending outbox row of `msg` as a Core INSERT takes it: the columns
    `OutboundMessage.to_row` sets (every field of the message), a new id, `now`."""
    msg.validate()
    values: dict[str, Any] = {
        _COLUMN_OF.get(item.name, item.name): getattr(msg, item.name) for item in fields(msg)
    }
    payload = dict(msg.request_payload)
    payload.setdefault("to", msg.recipient_phone[1:])
    values.update(
        id=new_id(),
        request_payload=payload,
        status=MessageStatus.PENDING.value,
        attempt_count=0,
        created_at=now,
        updated_at=now,
    )
    return values


def _sender(engine: Engine, tenant_id: str) -> SenderNumber:
    """The number the batch's messages go out from (`core.routing`: the tenant's
    default), routed once for the whole batch; NoticeRejected if it has none."""
    try:
        return route(engine, get_settings(), tenant_id)
    except NumberError as exc:
        raise NoticeRejected([str(exc)]) from None


def _suppliers(
    conn: Any, plan: BulkPlan, checks: Sequence[RowCheck], by: str | None
) -> dict[str, SupplierRow]:
    """The tenant's supplier for the phone of every valid row of the chunk.

    Known ones are read in a few `IN (...)` queries; unknown ones are added exactly as
    `find_or_add_supplier` adds them (name from the row, its language or the row's; no
    consent), in one INSERT. Then the consent the rows confirm (`plan.consent`: their
    `consent` cell or the buyer's tick) is recorded for those without it, as
    `core.consent.grant` records it (source `csv`), never over an opt-out.
    """
    first: dict[str, RowCheck] = {}
    for check in checks:
        if check.ok and check.phone_e164 is not None:
            first.setdefault(check.phone_e164, check)
    found = _read_suppliers(conn, plan.tenant_id, list(first))
    missing = [phone for phone in first if phone not in found]
    if missing:
        now = utcnow()
        conn.execute(
            insert(S),
            [
                {
                    "tenant_id": plan.tenant_id,
                    "name": (first[phone].values.get("supplier_name") or phone).strip()[:200],
                    "phone_e164": phone,
                    "language": new_supplier_language(first[phone]),
                    "opted_in": False,  # consent only as the row or the buyer confirms it
                    "is_active": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for phone in missing
            ],
        )
        found.update(_read_suppliers(conn, plan.tenant_id, missing))
    confirmed = {
        check.phone_e164
        for check in checks
        if check.ok and check.phone_e164 is not None and plan.consent.get(check.row_number)
    }
    granted = grant_rows(
        conn,
        plan.tenant_id,
        [found[phone][0] for phone in confirmed if phone in found],
        source="csv",
        by=by,
        at=clock.now(),
    )
    return {
        phone: SupplierRow(
            supplier_id,
            supplier_name,
            opted_in or supplier_id in granted,
            opted_out_at,
            opt_out_source,
        )
        for phone, (supplier_id, supplier_name, opted_in, opted_out_at, opt_out_source) in (
            found.items()
        )
    }


def _read_suppliers(
    conn: Any, tenant_id: str, phones: Sequence[str]
) -> dict[str, tuple[int, str, bool, datetime | None, str | None]]:
    found: dict[str, tuple[int, str, bool, datetime | None, str | None]] = {}
    for start in range(0, len(phones), IN_CHUNK):
        for row in conn.execute(
            select(
                S.c.phone_e164, S.c.id, S.c.name, S.c.opted_in, S.c.opted_out_at, S.c.opt_out_source
            ).where(
                S.c.tenant_id == tenant_id, S.c.phone_e164.in_(phones[start : start + IN_CHUNK])
            )
        ):
            found[row[0]] = (int(row[1]), row[2], bool(row[3]), row[4], row[5])
    return found


def _existing_keys(
    conn: Any, tenant_id: str, keys: Sequence[str]
) -> dict[str, tuple[str, datetime, str]]:
    """Messages of the tenant already holding any of `keys`: key -> (id, created, status)."""
    found: dict[str, tuple[str, datetime, str]] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), IN_CHUNK):
        for key, message_id, created_at, status in conn.execute(
            select(M.c.idempotency_key, M.c.id, M.c.created_at, M.c.status).where(
                M.c.tenant_id == tenant_id,
                M.c.idempotency_key.in_(unique[start : start + IN_CHUNK]),
            )
        ):
            found[key] = (message_id, created_at, status)
    return found


def _already_sent(message_id: str, created_at: datetime, status: str) -> str:
    """The refusal of a row whose key an earlier message holds (as `create_batch` words it)."""
    return (
        f"already sent as message {message_id} on {created_at:%Y-%m-%d %H:%M} UTC (status {status})"
    )


def new_supplier_language(check: RowCheck) -> str:
    """The language a supplier added by this row is kept with: its cell (a checked code,
    written as Meta writes codes: pt_BR), else the language the row is sent in."""
    base, _sep, region = (
        (check.values.get("language") or "").strip().replace("-", "_").partition("_")
    )
    if base:
        return f"{base.lower()}_{region.upper()}" if region else base.lower()
    return check.language or DEFAULT_LANGUAGE
