"""Recording a checked CSV batch at volume: 100,000 rows, chunk by chunk.

`record_plan` is what `core.bulk.start_batch` does with a checked file. The batch is
written first with status `importing` and its number of rows; then each chunk of rows
is recorded in one transaction: its new suppliers, the consent its rows confirm, its
messages (queued: the dispatcher may start sending them at once) and one batch row per
input row, with what it became or why it was refused. Every lookup is set-based (the
chunk's suppliers, its idempotency keys, the tenant's consent setting once); inserts are
one COPY (PostgreSQL) or a few multi-row INSERT statements (SQLite) per table and chunk
(`insert_many`: values converted by the columns' own types), not one ORM object and
flush per row. What a chunk writes that does not depend on the database (each checked
row's message and its converted values, the batch rows' values) is prepared on a
helper thread while the chunk before it is written (`_prepare_chunk`): SQLite and COPY
run without the GIL meanwhile. Chunks are still recorded one after the other, in order.

Every row passes the gate's rules once, not twice: the check (`core.csv_import`) filled
the template with the row's values and kept the request body it would send; while the
version it was checked against is still the one in force, the row is queued from that
body after the rules that may have changed since are judged again as
`core.notify.prepare_template_message` judges them (consent now, the sending number).
A row whose version changed since goes through `prepare_template_message` itself. Keys
stay unique per tenant (the database decides: a key another process queued meanwhile
makes the chunk start again, and its row is then "already sent").

Nothing lost: a chunk is recorded whole or not at all. When the import stops half way
(the process died), the batch keeps status `importing` with fewer rows recorded than it
announced, and `import_interrupted` says so once no chunk has landed for
`STALE_AFTER`: the page shows it as interrupted, never as a complete batch. Uploading the
file again queues the rest; the rows already queued are recognised by their keys and
not sent twice.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from itertools import chain
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import JSON, Connection, Engine, Table, insert, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from core import clock
from core.consent.policy import refusal_for
from core.consent.record import grant_event, grant_rows, granted_columns
from core.consent.tenant import allows_unrecorded
from core.csv_import import RowCheck
from core.db import (
    bulk_write_cache,
    by_unique_key,
    plan_each_statement,
    refresh_statistics,
    session_scope,
)
from core.heap import fewer_collections
from core.keys import content_key
from core.models.batches import BatchRow, BatchStatus, SendBatch
from core.models.consent import ConsentEvent
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.suppliers import Supplier
from core.models.types import utcnow
from core.notify import (
    DEFAULT_LANGUAGE,
    NoticeRejected,
    prepare_template_message,
    resolve_template,
)
from core.notify import _jsonable as jsonable_params  # the gate's own helpers: the same rules
from core.notify import _sender_id as sender_id_of
from core.outbox import KeyHolder, OutboundMessage, key_holders
from core.phones import country_calling_code
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
EV = ConsentEvent.__table__  # type: ignore[attr-defined]

#: The tables a bulk step looks its rows up in by their unique keys (a tenant's phones,
#: its idempotency keys): analyzed first when autovacuum would (`refresh_statistics`).
LOOKED_UP = (M.name, S.name)
#: Rows per transaction: small enough that other writers (the dispatcher, webhooks, the
#: page's own clicks) get the database between chunks, large enough to be cheap.
CHUNK = 2_000
#: Values per `IN (...)`: well under SQLite's variable limit.
IN_CHUNK = 500
#: A chunk that meets a key queued meanwhile by another process is tried again this often.
ATTEMPTS = 3
#: Rows the helper thread prepares between two pauses of `PAUSE` seconds
#: (`_prepare_chunk`): about half a millisecond of work.
_SLICE = 32
PAUSE = 0.0001
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


@fewer_collections()  # 100,000 rows: millions of small containers made and dropped
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
    phone_number_id: str | None = None,
) -> SendBatch:
    """Record the batch of a checked file and queue its valid rows, chunk by chunk.

    The default language's template is resolved first, as it is now (NoticeRejected,
    and no batch at all, if it was paused or removed since the file was checked);
    another language's version that cannot be sent refuses its rows with the reason.
    Returns the batch as it ends: `running`, or `done` when no row was queued. Every
    message goes out from `phone_number_id` (one of the tenant's numbers), else from
    the tenant's default: routed once, before anything is written.
    """
    sender = _sender(engine, plan.tenant_id, phone_number_id)
    refresh_statistics(engine, LOOKED_UP)
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
        sender_id: str | None = None
        sender_problem: NoticeRejected | None = None
        try:  # as the gate writes it on every message (a routed number: no query)
            sender_id = sender_id_of(session, plan.tenant_id, sender)
        except NoticeRejected as exc:  # every row refused with it, once consent allows it
            sender_problem = exc
    state = _ImportState(versions, allowed, sender, sender_id, sender_problem)
    state.checked_alike = {
        language
        for language, version in versions.items()
        if not isinstance(version, NoticeRejected) and version == plan.version(language)
    }
    total = len(plan.checks)
    if on_progress is not None:
        on_progress(0, total, batch_id)
    dialect = engine.dialect

    def prepared(indexes: range, pause: float = 0.0) -> _ChunkWork:
        return _prepare_chunk(
            plan, batch_id, indexes, state, dialect, by=created_by, src=source, pause=pause
        )

    # The helper prepares the next chunk (no database) while this thread writes the
    # current one's messages and batch rows and commits: SQLite runs those statements
    # without the GIL, so that Python work costs little wall time. Started then, not
    # earlier: while this thread runs many short statements (the lookups), each would
    # wait for the GIL the helper holds. At most one chunk is prepared ahead.
    helper = ThreadPoolExecutor(1, thread_name_prefix="batch-import-prepare")
    ahead: Future[_ChunkWork] | None = None
    try:
        for start in range(0, total, chunk):
            indexes = range(start, min(start + chunk, total))
            work = prepared(indexes) if ahead is None else ahead.result()
            ahead = None
            following = range(indexes.stop, min(indexes.stop + chunk, total))

            def prepare_following(following: range = following) -> None:
                nonlocal ahead
                if ahead is None and following:
                    context = contextvars.copy_context()
                    ahead = helper.submit(context.run, prepared, following, PAUSE)

            for attempt in range(1, ATTEMPTS + 1):
                try:
                    _record_chunk(
                        engine, plan, batch_id, work, state,
                        by=created_by, src=source, before_writes=prepare_following,
                    )  # fmt: skip
                    break
                except IntegrityError:  # a key (or supplier) another process wrote meanwhile
                    if attempt == ATTEMPTS:
                        raise
                    log.info(
                        "batch %s: chunk at row %d met a concurrent write; again", batch_id, start
                    )
            if on_progress is not None:
                on_progress(indexes.stop, total, batch_id)
    finally:  # a chunk that failed: the one being prepared is finished and dropped
        helper.shutdown(wait=True, cancel_futures=True)
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
    #: its id as the gate writes it (`core.notify._sender_id`), or why it may not be used
    sender_id: str | None = None
    sender_problem: NoticeRejected | None = None
    first_row_of: dict[str, int] = field(default_factory=dict)  # key -> the row queuing it
    #: Languages whose version now is the one the file was checked against: their rows'
    #: checked payloads stand (`_as_checked`); others go through the gate again.
    checked_alike: set[str] = field(default_factory=set)
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


#: A row the gate builds again while its chunk is recorded (its version changed since
#: the check, or the check kept no payload).
_GATE = object()


@dataclass(frozen=True)
class _Checked:
    """A row queued from its checked payload, as far as it is known without the
    database: its message's place in the chunk, key and language; `broken`: building
    the message failed (raised once consent allows the row, as the gate would);
    `invalid`: the outbox refuses it (raised when it would be queued)."""

    position: int
    key: str
    language: str
    broken: Exception | None = None
    invalid: Exception | None = None


@dataclass
class _ChunkWork:
    """What one chunk's transaction writes that does not depend on the database,
    prepared beforehand (`_prepare_chunk`, on the helper thread for every chunk but the
    first) and never changed by the transaction, so a retried chunk uses it again.

    `entries` has one item per row: its refusal (text), `_GATE`, or a `_Checked`.
    `message_head` holds the converted values (`_MESSAGE_HEAD`) of each `_Checked`
    row's message, `ids` their ids, `row_head` each row's converted `_ROW_HEAD`."""

    indexes: range
    entries: list[str | object]
    message_head: list[tuple[Any, ...]]
    ids: list[str]
    row_head: list[tuple[Any, ...]]
    keys: list[str]  # the rows' own idempotency keys, to look up
    first: dict[str, RowCheck]  # phone -> the chunk's first valid row with it
    newcomers: dict[str, tuple[str, str]]  # phone -> (name, language) if it is added
    confirmed: set[str]  # phones whose rows confirm consent


#: whatsapp_messages columns known before a chunk's transaction, in a message's values
#: (`_message_values`), and those set in it: the supplier, the chunk's time.
_MESSAGE_TAIL = ("supplier_id", "created_at", "updated_at")
#: batch_rows columns known before, and those set in the transaction.
_ROW_HEAD = ("batch_id", "row_number", "raw")
_ROW_TAIL = ("error", "message_id")


def _prepare_chunk(
    plan: BulkPlan,
    batch_id: str,
    indexes: range,
    state: _ImportState,
    dialect: Any,
    *,
    by: str | None,
    src: str,
    pause: float = 0.0,
) -> _ChunkWork:
    """The database-free part of recording the rows `indexes` (see `_ChunkWork`):
    rows refused by the check or by a template version that cannot be sent, each
    checked row's message (`_as_checked` without consent) with its values converted by
    the columns' types, the batch rows' values, the suppliers' phones. Reads only the
    plan and what `state` fixed before the first chunk.

    Rows are taken `_SLICE` at a time; with `pause` (the helper thread, while the
    chunk before is written), this thread sleeps that long before each slice: the
    GIL is then free for the writing thread, which otherwise waits up to the switch
    interval (5 ms) each time one of its statements returns."""
    checks = plan.checks[indexes.start : indexes.stop]
    raws = plan.table.rows[indexes.start : indexes.stop]
    meta = {"source": src}  # every checked message's, encoded once per slice
    entries: list[str | object] = []
    message_head: list[tuple[Any, ...]] = []
    row_head: list[tuple[Any, ...]] = []
    ids: list[str] = []
    for start in range(0, len(checks), _SLICE):
        if pause:
            time.sleep(pause)
        messages: list[dict[str, Any]] = []
        for check in checks[start : start + _SLICE]:
            if not check.ok or check.phone_e164 is None:
                entries.append("; ".join(check.errors))
                continue
            language = check.language or plan.definition.language
            version = state.versions[language]
            if isinstance(version, NoticeRejected):
                entries.append(str(version))
                continue
            if language not in state.checked_alike or check.payload is None:
                entries.append(_GATE)
                continue
            try:
                outbound = _as_checked(
                    plan, check, version, state, batch_id=batch_id, by=by, meta=meta
                )
            except Exception as exc:  # raised in the transaction (`_Checked`)
                entries.append(_Checked(-1, "", version.language, broken=exc))
                continue
            invalid: Exception | None = None
            try:
                outbound.validate()
            except Exception as exc:  # raised if the row would be queued
                invalid = exc
            position = len(message_head) + len(messages)  # in the chunk's messages
            entries.append(
                _Checked(position, outbound.idempotency_key, version.language, None, invalid)
            )
            messages.append(_message_columns(outbound))
        for values, message_id in zip(messages, new_ids(len(messages)), strict=True):
            values["id"] = message_id
            ids.append(message_id)
        message_head.extend(_converted(M, dialect, messages, _MESSAGE_HEAD, _JSON_TEXT))
        row_head.extend(
            _converted(
                R,
                dialect,
                [
                    {"batch_id": batch_id, "row_number": check.row_number, "raw": raw}
                    for check, raw in zip(
                        checks[start : start + _SLICE], raws[start : start + _SLICE], strict=True
                    )
                ],
                _ROW_HEAD,
                frozenset(),
            )
        )
    first: dict[str, RowCheck] = {}
    for check in checks:
        if check.ok and check.phone_e164 is not None:
            first.setdefault(check.phone_e164, check)
    return _ChunkWork(
        indexes=indexes,
        entries=entries,
        message_head=message_head,
        ids=ids,
        row_head=row_head,
        keys=[c.idempotency_key for c in checks if c.ok and c.idempotency_key],
        first=first,
        newcomers={
            phone: (
                (check.values.get("supplier_name") or phone).strip()[:200],
                new_supplier_language(check),
            )
            for phone, check in first.items()
        },
        confirmed={
            check.phone_e164
            for check in checks
            if check.ok and check.phone_e164 is not None and plan.consent.get(check.row_number)
        },
    )


def _record_chunk(
    engine: Engine,
    plan: BulkPlan,
    batch_id: str,
    work: _ChunkWork,
    state: _ImportState,
    *,
    by: str | None,
    src: str,
    before_writes: Callable[[], None] | None = None,
) -> None:
    """One chunk of rows in one transaction: suppliers, consent, messages, batch rows
    (what needs the database; the rest is in `work`, which this leaves as it is).
    `before_writes` is called before the messages and batch rows are inserted."""
    checks = plan.checks[work.indexes.start : work.indexes.stop]
    firsts = dict(state.first_row_of)  # kept only if the chunk commits
    languages = dict(state.languages)
    queued = 0
    with session_scope(engine) as session:
        conn = session.connection()
        dialect = conn.dialect
        plan_each_statement(conn)  # its lookups and writes, planned for the tables as they are
        bulk_write_cache(conn)
        suppliers = _suppliers(conn, plan, work, by)
        earlier = key_holders(conn, plan.tenant_id, work.keys)
        now = utcnow()
        stored_now = _converted(M, dialect, [{"created_at": now}], ["created_at"], frozenset())[0]
        tail = stored_now + stored_now  # created_at, updated_at
        supplier_id = M.c.supplier_id.type._cached_bind_processor(dialect)
        error_of, message_of = (R.c[key].type._cached_bind_processor(dialect) for key in _ROW_TAIL)
        messages: list[tuple[Any, ...]] = []
        rows: list[tuple[Any, ...]] = []
        for check, entry, head in zip(checks, work.entries, work.row_head, strict=True):
            error: str | None = None
            message_id: str | None = None
            if isinstance(entry, str):
                error = entry
            elif isinstance(entry, _Checked):
                assert check.phone_e164 is not None
                supplier = suppliers[check.phone_e164]
                refusal = refusal_for(
                    conn, plan.tenant_id, supplier, unrecorded_allowed=state.unrecorded_allowed
                )
                if refusal is not None:
                    error = str(NoticeRejected([refusal.reason]))
                elif entry.broken is not None:
                    raise entry.broken
                elif state.sender_problem is not None:
                    error = str(state.sender_problem)
                elif (error := _taken(entry.key, earlier, firsts)) is None:
                    if entry.invalid is not None:
                        raise entry.invalid
                    firsts[entry.key] = check.row_number
                    stored = supplier.id if supplier_id is None else supplier_id(supplier.id)
                    messages.append(work.message_head[entry.position] + (stored, *tail))
                    message_id = work.ids[entry.position]
                    languages[entry.language] = languages.get(entry.language, 0) + 1
                    queued += 1
            else:  # _GATE
                assert check.phone_e164 is not None
                language = check.language or plan.definition.language
                version = state.versions[language]
                assert not isinstance(version, NoticeRejected)
                try:
                    outbound = prepare_template_message(
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
                    ).outbound
                except NoticeRejected as exc:
                    error = str(exc)
                else:
                    key = outbound.idempotency_key
                    if (error := _taken(key, earlier, firsts)) is None:
                        firsts[key] = check.row_number
                        values = _message_values(outbound, now, new_ids(1)[0])
                        messages += _converted(M, dialect, [values], _MESSAGE_ORDER, _JSON_TEXT)
                        message_id = values["id"]
                        languages[version.language] = languages.get(version.language, 0) + 1
                        queued += 1
            if error_of is not None and error is not None:
                error = error_of(error)
            if message_of is not None and message_id is not None:
                message_id = message_of(message_id)
            rows.append((*head, error, message_id))
        if before_writes is not None:
            before_writes()
        insert_converted(conn, M, _MESSAGE_ORDER, messages)
        insert_converted(conn, R, [*_ROW_HEAD, *_ROW_TAIL], rows)
        conn.execute(update(BT).where(BT.c.id == batch_id).values(updated_at=now))
    state.first_row_of, state.languages = firsts, languages
    state.queued += queued


def _as_checked(
    plan: BulkPlan,
    check: RowCheck,
    version: TemplateDefinition,
    state: _ImportState,
    *,
    batch_id: str,
    by: str | None,
    meta: dict[str, Any],
) -> OutboundMessage:
    """The message of a row checked against the version of the template in force now:
    `prepare_template_message` without resolving the template a second time, and
    without its supplier (set in the chunk's transaction, `_record_chunk`).

    The check filled the template with the row's values (`core.csv_import`: problems,
    preview and request body from the same resolved values, the same `fill` the gate
    runs) for this very version, so its payload and preview stand. What may have changed
    since the check is judged in the chunk's transaction as the gate judges it: the
    supplier's consent now (`refusal_for`, first) and the sending number. `meta`
    ({"source": ...}) is one dict for every message of the chunk: stored as JSON, never
    changed, encoded once.
    """
    assert check.phone_e164 is not None and check.payload is not None
    params = dict(check.params or {})
    return OutboundMessage(
        tenant_id=plan.tenant_id,
        idempotency_key=check.idempotency_key
        or content_key(check.phone_e164, [version.name, version.language, params]),
        recipient_phone=check.phone_e164,
        request_payload=_CheckedPayload(check.payload),
        message_type="template",
        template_name=version.name,
        template_language=version.language,
        template_parameters=jsonable_params(params),
        body_text=check.preview,
        recipient_country=country_calling_code(check.phone_e164),
        po_number=(check.values.get("po_number") or "").strip() or None,
        supplier_id=None,
        batch_id=batch_id,
        batch_row=check.row_number,
        created_by=by,
        meta=meta,
        phone_number_id=state.sender_id,
    )


class _CheckedPayload(dict[str, Any]):
    """A request body kept as the JSON text the check wrote: written to the database as
    that text (`insert_many`), never encoded a second time, and read as a dict of the
    body's top-level members that are not objects or arrays, which is where the outbox's
    rules look (`OutboundMessage.validate`: its type, `to`, no callback data).

    The text is parsed whole (so the rules judge what is stored), but the nested
    members (the template and its components) are dropped at once rather than kept for
    the chunk: at 100,000 rows they were millions of live containers, walked by every
    garbage collection while the import ran. A text that is not a JSON object reads as
    an empty dict, which the rules refuse (no type).
    """

    def __init__(self, text: str) -> None:
        body = _loads(text)
        members = body.items() if isinstance(body, dict) else ()
        super().__init__((k, v) for k, v in members if not isinstance(v, dict | list))
        self.text = text


def _loads(text: str) -> Any:
    """JSON text read as `json.loads` reads it, by orjson (several times faster on a
    100,000-row import); what orjson refuses (integers beyond 64 bits) by `json.loads`."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def insert_many(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    json_text: frozenset[str] = frozenset(),
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]] | None:
    """INSERT `rows` (each with the same columns) in one go, in the connection's
    transaction: PostgreSQL `COPY ... FROM STDIN` (row triggers and constraints apply
    as to an INSERT), SQLite multi-row `INSERT ... VALUES (...), (...)` statements of up
    to `SQLITE_ROWS` rows (`_sqlite_insert`), elsewhere one driver `executemany` of a
    statement compiled once.

    Every value is converted by its column's own type (JSON encoded, times as the
    dialect stores them), as a Core INSERT does, without SQLAlchemy's per-row
    bookkeeping. `json_text` columns may hold a `_CheckedPayload`, written as its JSON
    text. Columns with a Python-side default must be given (a Core INSERT would fill
    them; this cannot).

    A driver error is raised as SQLAlchemy raises it (a key taken meanwhile is an
    `IntegrityError`, which `record_plan` answers by trying the chunk again), not as the
    driver's own exception, which nothing here would catch.

    With `returning` (column keys), SQLite returns each inserted row's values of those
    columns as stored (`RETURNING`, converted by the columns' types; in no particular
    order); elsewhere (and on a SQLite before 3.35) None: read them back.
    """
    if not rows:
        return insert_converted(conn, table, (), (), returning=returning)
    keys = list(rows[0])
    defaulted = [c.key for c in table.columns if c.default is not None and c.key not in keys]
    if defaulted:
        raise ValueError(f"insert_many into {table.name} needs values for {defaulted}")
    converted = _converted(table, conn.dialect, rows, keys, json_text)
    return insert_converted(conn, table, keys, converted, returning=returning)


def insert_converted(
    conn: Connection,
    table: Table,
    keys: Sequence[str],
    values: Sequence[tuple[Any, ...]],
    *,
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]] | None:
    """`insert_many` of values already converted by the columns' types (`_converted`:
    each a tuple in the order of `keys`), as `insert_many` writes them: COPY on
    PostgreSQL, multi-row INSERT statements on SQLite, elsewhere one `executemany`."""
    if not values:
        return [] if returning and conn.dialect.name == "sqlite" else None
    dialect = conn.dialect
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if dialect.name == "postgresql":
            target = dialect.identifier_preparer.format_table(table)
            columns = _column_list(dialect, table, keys)
            with cursor.copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
            return None
        if dialect.name == "sqlite":
            if sqlite3.sqlite_version_info < (3, 35):  # no RETURNING before 3.35
                returning = ()
            return _sqlite_insert(cursor, dialect, table, keys, values, returning)
        compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
        if compiled.positiontup is not None:  # in the statement's order
            where = [list(keys).index(key) for key in compiled.positiontup]
            params: list[Any] = [tuple(row[i] for i in where) for row in values]
        else:
            params = [dict(zip(keys, row, strict=True)) for row in values]
        cursor.executemany(compiled.string, params)
        return None
    except dialect.loaded_dbapi.Error as exc:  # as SQLAlchemy raises it: IntegrityError...
        raise DBAPIError.instance(None, None, exc, dialect.loaded_dbapi.Error) from exc
    finally:
        cursor.close()


#: Rows per SQLite INSERT statement (fewer when the columns would pass its variable limit).
SQLITE_ROWS = 500


def _sqlite_insert(
    cursor: Any,
    dialect: Any,
    table: Table,
    keys: Sequence[str],
    values: Sequence[tuple[Any, ...]],
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]] | None:
    """`values` (converted, in the order of `keys`) inserted into `table` by multi-row
    `INSERT ... VALUES (...), (...)` statements of up to `SQLITE_ROWS` rows each; with
    `returning`, the inserted rows' values of those columns (see `insert_many`).

    On a table with triggers (whatsapp_messages: the rollups and the latency columns)
    SQLite opens a statement journal for every statement it runs, and a driver
    `executemany` runs one statement per row: about half the time of inserting a
    100,000-row import's messages went there. The rows, their values and every
    trigger's effect are the same (the triggers still fire once per row); a row that
    fails fails its statement, and the caller's transaction rolls back as before.
    """
    limit = cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per = max(1, min(SQLITE_ROWS, limit // len(keys)))
    head = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "  # noqa: S608  (names)
        f"({_column_list(dialect, table, keys)}) VALUES "
    )
    one = f"({', '.join('?' * len(keys))})"
    tail = f" RETURNING {_column_list(dialect, table, returning)}" if returning else ""
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(values), per):
        part = values[start : start + per]
        sql = head + ", ".join([one] * len(part)) + tail
        cursor.execute(sql, list(chain.from_iterable(part)))
        if returning:
            found.extend(cursor.fetchall())
    if not returning:
        return None
    processors = [table.c[key].type._cached_result_processor(dialect, None) for key in returning]
    return [
        tuple(
            value if process is None or value is None else process(value)
            for process, value in zip(processors, row, strict=True)
        )
        for row in found
    ]


def _column_list(dialect: Any, table: Table, keys: Sequence[str]) -> str:
    """The columns of `keys`, quoted as the dialect needs, comma separated."""
    quote = dialect.identifier_preparer.quote
    return ", ".join(quote(table.c[key].name) for key in keys)


def _converted(
    table: Table,
    dialect: Any,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    json_text: frozenset[str],
) -> list[tuple[Any, ...]]:
    """Each row's values for `keys`, in that order, converted by the columns' own types
    (None stays None; a `_CheckedPayload` in a `json_text` column is its text): built
    column by column, so a 100,000-row import makes one pass per column, not a call per
    value; a column holding one object in every row (a chunk's `now`) converts it once.
    On SQLite a JSON column's values are encoded by orjson (`_sqlite_json`)."""
    columns = []
    for key in keys:  # each converted by its type's own processor
        column_type = table.c[key].type
        processor: Callable[[Any], Any] | None = column_type._cached_bind_processor(dialect)
        if processor is not None and dialect.name == "sqlite" and isinstance(column_type, JSON):
            processor = _sqlite_json(processor)
        columns.append(_column_values([row[key] for row in rows], processor, key in json_text))
    return list(zip(*columns, strict=True))


#: orjson hands these to the JSON type's own encoder (`_sqlite_json`), as it raises
#: for what it cannot encode (Decimal, integers beyond 64 bits, keys that are not str,
#: lone surrogates): datetimes, dataclasses and subclasses of str, int, dict and list,
#: which `json.dumps` encodes otherwise (or refuses).
_ORJSON_AS_JSON = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _sqlite_json(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A SQLite JSON column's bind processor (`json.dumps`) made several times faster:
    the value's text by orjson when `json.loads` reads it back as the same value (the
    column is only ever read parsed), else by `processor`. orjson writes non-ASCII
    characters as themselves rather than as \\u escapes, and no spaces; it writes NaN
    and infinities as null, so a text holding null (rare: a None, or the word in a
    string) is encoded by `processor`, which keeps them."""

    def encode(value: Any) -> Any:
        try:
            text = orjson.dumps(value, option=_ORJSON_AS_JSON)
        except TypeError:  # orjson.JSONEncodeError: the type's encoder decides
            return processor(value)
        if b"null" in text:
            return processor(value)
        return text.decode()

    return encode


def _column_values(
    items: list[Any], processor: Callable[[Any], Any] | None, json_text: bool
) -> list[Any]:
    """One column's values as the database takes them (see `_converted`)."""
    if json_text:
        return [
            None
            if item is None
            else item.text
            if isinstance(item, _CheckedPayload)
            else processor(item)
            if processor is not None
            else item
            for item in items
        ]
    if processor is None:
        return items
    first = items[0] if items else None
    if all(item is first for item in items):  # one object in every row (`now`, `meta`)
        return [None if first is None else processor(first)] * len(items)
    return [None if item is None else processor(item) for item in items]


#: OutboundMessage fields stored under another column name.
_COLUMN_OF = {"meta": "metadata", "not_before": "next_attempt_at"}
#: (field, column) of every OutboundMessage field, read once rather than per row.
_MESSAGE_COLUMNS = [
    (item.name, _COLUMN_OF.get(item.name, item.name)) for item in fields(OutboundMessage)
]
#: The columns of a message's values (`_message_values`), in that order.
_MESSAGE_KEYS = [column for _name, column in _MESSAGE_COLUMNS] + [
    key
    for key in ("id", "request_payload", "status", "attempt_count", "created_at", "updated_at")
    if key not in {column for _name, column in _MESSAGE_COLUMNS}
]
#: Those known before a chunk's transaction (`_prepare_chunk`), and all of them in the
#: order a chunk inserts them: those, then `_MESSAGE_TAIL`.
_MESSAGE_HEAD = [key for key in _MESSAGE_KEYS if key not in _MESSAGE_TAIL]
_MESSAGE_ORDER = [*_MESSAGE_HEAD, *_MESSAGE_TAIL]
#: Message columns written as the JSON text they hold (a `_CheckedPayload`).
_JSON_TEXT = frozenset({"request_payload"})


def _message_values(msg: OutboundMessage, now: datetime, message_id: str) -> dict[str, Any]:
    """The pending outbox row of `msg` as a Core INSERT takes it: the columns
    `OutboundMessage.to_row` sets (every field of the message), its new id, `now`."""
    msg.validate()
    values = _message_columns(msg)
    values.update(id=message_id, created_at=now, updated_at=now)
    return values


def _message_columns(msg: OutboundMessage) -> dict[str, Any]:
    """`_message_values` without validating, its id or its times (set by the caller)."""
    values: dict[str, Any] = {column: getattr(msg, name) for name, column in _MESSAGE_COLUMNS}
    payload = msg.request_payload
    if "to" not in payload:  # a checked payload has it (and stays its JSON text)
        payload = {**payload, "to": msg.recipient_phone[1:]}
    values.update(request_payload=payload, status=MessageStatus.PENDING.value, attempt_count=0)
    return values


def new_ids(count: int) -> list[str]:
    """`count` new message ids, each what `core.models.types.new_id` makes
    (`str(uuid.uuid4())`: 16 bytes of `os.urandom`, version nibble 4, the RFC 4122
    variant bits 10), from one `os.urandom` call rather than a `uuid.UUID` per id."""
    text = os.urandom(16 * count).hex()
    return [
        f"{text[i : i + 8]}-{text[i + 8 : i + 12]}-4{text[i + 13 : i + 16]}-"
        f"{_VARIANT[text[i + 16]]}{text[i + 17 : i + 20]}-{text[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


#: A random hex digit with its two high bits set to the RFC 4122 variant (10), as
#: `uuid.UUID(version=4)` sets them.
_VARIANT = {f"{n:x}": f"{8 | n & 3:x}" for n in range(16)}


def _sender(engine: Engine, tenant_id: str, chosen: str | None = None) -> SenderNumber:
    """The number the batch's messages go out from (`core.routing`: the tenant's
    default, or `chosen` when it is one of the tenant's), routed once for the whole
    batch; NoticeRejected if it has none or `chosen` is not the tenant's."""
    try:
        return route(engine, get_settings(), tenant_id, chosen)
    except NumberError as exc:
        raise NoticeRejected([str(exc)]) from None


def _suppliers(
    conn: Any, plan: BulkPlan, work: _ChunkWork, by: str | None
) -> dict[str, SupplierRow]:
    """The tenant's supplier for the phone of every valid row of the chunk.

    Known ones are read in a few `IN (...)` queries; unknown ones are added exactly as
    `find_or_add_supplier` adds them (name from the row, its language or the row's), in
    one INSERT. The consent the rows confirm (`plan.consent`: their `consent` cell or
    the buyer's tick) is recorded as `core.consent.grant` records it (source `csv`),
    never over an opt-out: for known suppliers without it by `grant_rows`; an added
    one is inserted with it (`granted_columns`) and its event (`grant_event`), as it
    would stand after being added without consent and then granted it.
    """
    found = _read_suppliers(conn, plan.tenant_id, list(work.first))
    at = clock.now()
    granted = grant_rows(
        conn,
        plan.tenant_id,
        [found[phone][0] for phone in work.confirmed if phone in found],
        source="csv",
        by=by,
        at=at,
    )
    missing = [phone for phone in work.first if phone not in found]
    if missing:
        now = utcnow()
        unconsented = {  # consent only as the row or the buyer confirms it
            "opted_in": False,
            "opted_in_at": None,
            "consent_source": None,
            "consent_by": None,
            "updated_at": now,
        }
        consented = granted_columns(source="csv", by=by, at=at)
        added = insert_many(
            conn,
            S,
            [
                {
                    "tenant_id": plan.tenant_id,
                    "name": work.newcomers[phone][0],
                    "phone_e164": phone,
                    "language": work.newcomers[phone][1],
                    "is_active": True,
                    "created_at": now,
                    **(consented if phone in work.confirmed else unconsented),
                }
                for phone in missing
            ],
            returning=_SUPPLIER_COLUMNS,
        )
        if added is None:  # PostgreSQL (COPY): read back
            added_found = _read_suppliers(conn, plan.tenant_id, missing)
        else:
            added_found = dict(_supplier_entry(row) for row in added)
        found.update(added_found)
        events = sorted(entry[0] for phone, entry in added_found.items() if phone in work.confirmed)
        insert_many(
            conn,
            EV,
            [
                grant_event(plan.tenant_id, supplier_id, source="csv", by=by, at=at)
                for supplier_id in events
            ],
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


#: What a batch reads of a supplier, phone first (`_supplier_entry`).
_SUPPLIER_COLUMNS = ("phone_e164", "id", "name", "opted_in", "opted_out_at", "opt_out_source")
_SupplierEntry = tuple[int, str, bool, datetime | None, str | None]


def _supplier_entry(row: Sequence[Any]) -> tuple[str, _SupplierEntry]:
    """phone -> (id, name, opted in, opted out at, opt-out source) of a row of
    `_SUPPLIER_COLUMNS`."""
    return row[0], (int(row[1]), row[2], bool(row[3]), row[4], row[5])


def _read_suppliers(conn: Any, tenant_id: str, phones: Sequence[str]) -> dict[str, _SupplierEntry]:
    found: dict[str, _SupplierEntry] = {}
    for start in range(0, len(phones), IN_CHUNK):
        found.update(
            _supplier_entry(row)
            for row in conn.execute(
                by_unique_key(
                    conn,
                    [S.c[key] for key in _SUPPLIER_COLUMNS],
                    S.c.tenant_id == tenant_id,
                    S.c.phone_e164,
                    phones[start : start + IN_CHUNK],
                )
            )
        )
    return found


def _taken(key: str, earlier: Mapping[str, KeyHolder], firsts: Mapping[str, int]) -> str | None:
    """Why a row with idempotency `key` is not queued: an earlier message holds the key
    (`earlier`, read in the chunk's transaction), or an earlier row of this file queued
    it (`firsts`); None when it may be queued."""
    if key in earlier:
        return earlier[key].refusal()
    if key in firsts:
        return f"duplicate of row {firsts[key]}"
    return None


def new_supplier_language(check: RowCheck) -> str:
    """The language a supplier added by this row is kept with: its cell (a checked code,
    written as Meta writes codes: pt_BR), else the language the row is sent in."""
    base, _sep, region = (
        (check.values.get("language") or "").strip().replace("-", "_").partition("_")
    )
    if base:
        return f"{base.lower()}_{region.upper()}" if region else base.lower()
    return check.language or DEFAULT_LANGUAGE
