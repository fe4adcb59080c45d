"""core/batch_import.py's pipeline: each chunk's database-free part (`_prepare_chunk`) is
made on a helper thread while the chunk before is written. What it must keep: chunks
recorded in order, each whole or not at all (a failure in the next chunk's preparation
or in its transaction leaves the chunks before it and nothing of its own), a retried
chunk written once from the same prepared rows, rows and ids in the file's order, and no
thread left behind (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, Table
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import batch_import, clock
from core.batch_import import record_plan
from core.batches import batch_progress, batch_results
from core.consent import withdraw
from core.db import session_scope
from core.models.batches import BatchRow, SendBatch
from core.models.consent import ConsentEvent
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier
from core.notify import find_or_add_supplier
from tests.core.test_bulk_import import (
    BY,
    FORMAT,
    checked,
    messages_of,
    mixed_file,
    same,
    with_bulk_tenants,
)


@pytest.fixture
def db(engine: Engine) -> Engine:
    """As in test_bulk_import: both tenants' templates, and a supplier they know."""
    return with_bulk_tenants(engine)


ROWS = 9  # spreadsheet rows 2..10: five chunks of two (the last of one)


def plain_file(prefix: str = "P") -> bytes:
    return "".join(
        ["supplier_name;phone;po_number;total_amount\n"]
        + [f"Proveedor {n};612 500 {n:03d};PO-{prefix}-{n};{n},50\n" for n in range(ROWS)]
    ).encode()


def helpers_alive() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("batch-import-prepare")]


def recorded(db: Engine, tenant: str) -> tuple[list[int], int, set[str], int]:
    """(batch rows' numbers, messages, suppliers' phones, consent events) of `tenant`."""
    with Session(db) as session:
        batch = session.exec(select(SendBatch).where(col(SendBatch.tenant_id) == tenant)).one()
        rows = session.exec(
            select(BatchRow.row_number)
            .where(col(BatchRow.batch_id) == batch.id)
            .order_by(col(BatchRow.row_number))
        ).all()
        messages = session.exec(
            select(WhatsAppMessage.id).where(col(WhatsAppMessage.tenant_id) == tenant)
        ).all()
        phones = session.exec(
            select(Supplier.phone_e164).where(col(Supplier.tenant_id) == tenant)
        ).all()
        events = session.exec(
            select(ConsentEvent.id).where(col(ConsentEvent.tenant_id) == tenant)
        ).all()
    return list(rows), len(messages), set(phones), len(events)


def run(db: Engine, tenant: str, seen: list[tuple[int, int]] | None = None) -> SendBatch:
    return record_plan(
        checked(db, tenant, plain_file()),
        name="pipeline",
        created_by=BY,
        source="csv",
        upload_format=FORMAT,
        engine=db,
        chunk=2,
        on_progress=None if seen is None else lambda done, total, _id: seen.append((done, total)),
    )


def test_a_failed_preparation_leaves_the_chunks_before_it_and_nothing_of_its_own(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = batch_import._prepare_chunk
    prepared_on: dict[int, str] = {}

    def fails_on_the_third(*args: Any, **kwargs: Any) -> Any:
        indexes = args[2]
        prepared_on[indexes.start] = threading.current_thread().name
        if indexes.start == 4:
            raise RuntimeError("preparing failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(batch_import, "_prepare_chunk", fails_on_the_third)
    seen: list[tuple[int, int]] = []
    with pytest.raises(RuntimeError, match="preparing failed"):
        run(db, "bulk", seen)
    assert seen == [(0, ROWS), (2, ROWS), (4, ROWS)]  # chunks 1 and 2 recorded
    rows, messages, phones, events = recorded(db, "bulk")
    assert rows == [2, 3, 4, 5] and messages == 4
    assert phones == {"+34612345014"} | {f"+34612500{n:03d}" for n in range(4)}
    assert events == 1 + 4  # the known supplier's, and chunks 1 and 2's
    assert prepared_on[0] == threading.current_thread().name  # the first: no helper
    assert prepared_on[2].startswith("batch-import-prepare")
    assert helpers_alive() == []
    with Session(db) as session:
        batch = session.exec(select(SendBatch).where(col(SendBatch.tenant_id) == "bulk")).one()
    assert batch_progress(db, batch.id).importing  # as an import that stopped half way


def test_a_failed_transaction_leaves_the_chunks_before_it_and_nothing_of_its_own(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = batch_import.insert_converted
    calls: list[str] = []

    def batch_rows_of_the_third_fail(conn: Any, table: Table, *args: Any, **kwargs: Any) -> Any:
        calls.append(table.name)
        if table.name == "send_batch_rows" and calls.count("send_batch_rows") == 3:
            raise RuntimeError("the disk is full")
        return real(conn, table, *args, **kwargs)

    monkeypatch.setattr(batch_import, "insert_converted", batch_rows_of_the_third_fail)
    with pytest.raises(RuntimeError, match="the disk is full"):
        run(db, "bulk")
    rows, messages, phones, events = recorded(db, "bulk")
    assert rows == [2, 3, 4, 5] and messages == 4  # the third chunk's messages rolled back
    assert phones == {"+34612345014"} | {f"+34612500{n:03d}" for n in range(4)}
    assert events == 1 + 4
    assert helpers_alive() == []


def test_a_retried_chunk_is_written_once_from_its_prepared_rows_in_order(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second chunk meets a concurrent write once (after its messages were
    inserted): it rolls back and is written again from the same prepared work; every
    row and message is then there once, in the file's order, as one chunk of the
    whole file (no pipeline) records it."""
    real = batch_import.insert_converted
    prepare = batch_import._prepare_chunk
    calls: list[str] = []
    preparations: list[int] = []

    def second_fails_once(conn: Any, table: Table, *args: Any, **kwargs: Any) -> Any:
        calls.append(table.name)
        if table.name == "send_batch_rows" and calls.count("send_batch_rows") == 2:
            raise IntegrityError("INSERT INTO send_batch_rows", {}, Exception("UNIQUE constraint"))
        return real(conn, table, *args, **kwargs)

    def counted(*args: Any, **kwargs: Any) -> Any:
        preparations.append(args[2].start)
        return prepare(*args, **kwargs)

    monkeypatch.setattr(batch_import, "insert_converted", second_fails_once)
    monkeypatch.setattr(batch_import, "_prepare_chunk", counted)
    seen: list[tuple[int, int]] = []
    batch = run(db, "bulk", seen)
    assert seen == [(0, ROWS), (2, ROWS), (4, ROWS), (6, ROWS), (8, ROWS), (9, ROWS)]
    assert calls.count("send_batch_rows") == 6  # five chunks, the second twice
    assert sorted(preparations) == [0, 2, 4, 6, 8]  # each prepared once
    monkeypatch.setattr(batch_import, "insert_converted", real)
    whole = record_plan(
        checked(db, "rowwise", plain_file()), name="pipeline", created_by=BY, source="csv",
        upload_format=FORMAT, engine=db, chunk=100,
    )  # fmt: skip
    ours, theirs = batch_results(db, batch.id), batch_results(db, whole.id)
    assert [row["row_number"] for row in ours] == list(range(2, 2 + ROWS))
    assert [same(row) for row in ours] == [same(row) for row in theirs]
    assert messages_of(db, batch.id) == messages_of(db, whole.id)
    with Session(db) as session:
        stored = session.exec(
            select(BatchRow.row_number, BatchRow.message_id, WhatsAppMessage.batch_row)
            .join(WhatsAppMessage, col(WhatsAppMessage.id) == col(BatchRow.message_id))
            .where(col(BatchRow.batch_id) == batch.id)
            .order_by(col(BatchRow.row_number))
        ).all()
    assert [(number, row) for number, _id, row in stored] == [(n, n) for n in range(2, 11)]
    assert len({message_id for _n, message_id, _r in stored}) == ROWS
    assert recorded(db, "bulk")[1] == ROWS
    assert helpers_alive() == []


def test_the_pipelined_path_ends_the_mixed_file_as_one_chunk_does(db: Engine) -> None:
    """Every chunk size ends every row of the mixed file (refusals, duplicates across
    chunks, the gate's rows) the same, with the same messages."""
    plans = {tenant: checked(db, tenant, mixed_file()) for tenant in ("bulk", "rowwise")}
    chunked = record_plan(
        plans["bulk"], name="b", created_by=BY, source="csv", upload_format=FORMAT,
        engine=db, chunk=2,
    )  # fmt: skip
    whole = record_plan(
        plans["rowwise"], name="b", created_by=BY, source="csv", upload_format=FORMAT,
        engine=db, chunk=1000,
    )  # fmt: skip
    ours, theirs = batch_results(db, chunked.id), batch_results(db, whole.id)
    assert [same(row) for row in ours] == [same(row) for row in theirs]
    assert messages_of(db, chunked.id) == messages_of(db, whole.id)
    assert helpers_alive() == []


def test_a_new_supplier_whose_row_confirms_consent_is_stored_as_added_then_granted(
    db: Engine,
) -> None:
    """A supplier the file adds is inserted already consenting when its row (or the
    buyer) confirms it: the columns and event `grant_rows` would write after an insert
    without consent. A known supplier
    is granted by `grant_rows` as before, and an opt-out is never lifted."""
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    with session_scope(db) as session:
        find_or_add_supplier(session, "bulk", "+34612500001", name="Known, no consent")
        stopped = find_or_add_supplier(session, "bulk", "+34612500002", name="Stopped")
        withdraw(session, stopped, source="reply", by=None, evidence="BAJA")
    data = (
        "supplier_name;phone;po_number;total_amount;consent\n"
        "Nuevo sí;612 500 000;PO-C-0;1,50;sí\n"
        "Conocido;612 500 001;PO-C-1;1,50;sí\n"
        "De baja;612 500 002;PO-C-2;1,50;sí\n"
    ).encode()
    with clock.frozen(at):
        record_plan(
            checked(db, "bulk", data, confirmed=False), name="c", created_by=BY,
            source="csv", upload_format=FORMAT, engine=db, chunk=2,
        )  # fmt: skip
    with Session(db) as session:
        suppliers = {
            s.phone_e164: s
            for s in session.exec(select(Supplier).where(col(Supplier.tenant_id) == "bulk"))
        }
        events = session.exec(
            select(ConsentEvent).where(col(ConsentEvent.tenant_id) == "bulk")
        ).all()
    new, known, stopped_now = (suppliers[f"+34612500{n:03d}"] for n in range(3))
    for granted in (new, known):
        assert granted.opted_in and granted.opted_in_at == at == granted.updated_at
        assert (granted.consent_source, granted.consent_by) == ("csv", BY)
    assert new.name == "Nuevo sí" and new.created_at is not None
    assert stopped_now.opted_out_at is not None and not stopped_now.opted_in
    granted_events = [
        (e.supplier_id, e.action, e.source, e.by, e.evidence, e.at)
        for e in events
        if e.supplier_id in (new.id, known.id) and e.action == "granted"
    ]
    assert sorted(granted_events, key=lambda e: e[0] or 0) == sorted(
        [(s.id, "granted", "csv", BY, None, at) for s in (new, known)], key=lambda e: e[0] or 0
    )
    assert [e.action for e in events if e.supplier_id == stopped_now.id] == ["withdrawn"]
