"""core/batch_import.py: a checked file queued chunk by chunk, as the per-row path would.

The same mixed file (bad rows, consent refusals, duplicates, hostile cells, several
languages, a supplier opting out and a PO sent elsewhere between the check and the
send) goes through the chunked path for one tenant and through the per-row path (one
supplier lookup, one consent grant, one gate call per row, then `create_batch`) for
another: every row must end the same, and every message be the same message.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core import clock
from core.batch_import import new_supplier_language, record_plan
from core.batches import (
    ROW_NUMBERS,
    SPREADSHEET_ROWS,
    BatchInput,
    batch_progress,
    batch_results,
    create_batch,
)
from core.bulk import BulkPlan, plan_csv
from core.consent import ConsentGrant, withdraw
from core.csv_import import MAX_ROWS, CsvError, read_csv
from core.db import session_scope
from core.models.batches import SendBatch
from core.models.consent import ConsentEvent
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier
from core.notify import (
    NoticeRejected,
    PoNotice,
    find_or_add_supplier,
    prepare_template_message,
    resolve_template,
    send_po_notice,
)
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.templates import upsert_templates

TENANTS = ("bulk", "rowwise")
FORMAT = {ROW_NUMBERS: SPREADSHEET_ROWS}  # rows numbered as the spreadsheet shows them
BY = "buyer-1"


def mixed_file() -> bytes:
    """The mixed file in UTF-8 (it holds a character Windows-1252 cannot)."""
    rows = [
        "Proveedor;Teléfono;Pedido;Importe;Idioma;Consentimiento",
        "Harinas Ruiz;612 345 001;PO-1;10,50;es;sí",
        "Harinas Ruiz;612 345 001;PO-2;20,00;es;",
        "Harinas Ruiz;612 345 001;PO-1;10,50;es;sí",
        "Sin teléfono;;PO-3;5,00;es;sí",
        "Mal importe;612 345 004;PO-4;doce euros;es;sí",
        '"=HYPERLINK(""http://evil.example"")";612 345 005;PO-5;1,00;es;sí',
        "A\u202eLIAME;612 345 006;PO-6;1,00;es;sí",
        "Dice que no;612 345 007;PO-7;1,00;es;no",
        "Quizás;612 345 008;PO-8;1,00;es;quizás",
        "Se dará de baja;612 345 009;PO-9;1,00;es;sí",
        "Ya enviado;612 345 010;PO-10;1,00;es;sí",
        "Bright Packaging;+44 7911 123 456;PO-11;30,00;EN;sí",
        "Embalagens Lda;+351 912 700 003;PO-12;30,00;pt;sí",
        '"Línea\nrota";612 345 013;PO-13;1,00;es;sí',
        "Conocido;612 345 014;PO-14;7,25;;",
        "Teléfono raro;12;PO-15;1,00;es;sí",
        "Último válido;612 345 016;PO-16;99,99;es;sí",
    ]
    return ("\r\n".join(rows) + "\r\n").encode("utf-8")


@pytest.fixture
def db(engine: Engine) -> Engine:
    return with_bulk_tenants(engine)


def with_bulk_tenants(engine: Engine) -> Engine:
    """`engine` with both tenants' templates, and a consenting supplier each knows."""
    definitions = [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    for tenant in TENANTS:
        upsert_templates(engine, tenant, definitions)
        with session_scope(engine) as session:
            known = Supplier(tenant_id=tenant, name="Conocido S.L.", phone_e164="+34612345014")
            session.add(known)
            session.flush()
            find_or_add_supplier(
                session, tenant, "+34612345014", consent=ConsentGrant("admin", "admin")
            )
    return engine


def checked(db: Engine, tenant: str, data: bytes, *, confirmed: bool = True) -> BulkPlan:
    return plan_csv(
        data,
        tenant_id=tenant,
        template_name="po_notification",
        language="es",
        decimal=",",
        consent_confirmed=confirmed,
        engine=db,
    )


def between_check_and_send(db: Engine, tenant: str) -> None:
    """PO-10 is sent from elsewhere (an ERP event) after the file was checked."""
    send_po_notice(
        PoNotice(
            tenant_id=tenant,
            supplier_name="Ya enviado",
            phone="612 345 010",
            po_number="PO-10",
            amount=Decimal("1.00"),
            currency="EUR",
            language="es",
            consent_confirmed=True,
            source="api",
        ),
        engine=db,
    )


def opt_out(db: Engine, tenant: str, phone: str) -> None:
    with session_scope(db) as session:
        supplier = find_or_add_supplier(session, tenant, phone, name="Se dará de baja")
        withdraw(session, supplier, source="reply", by=None, evidence="BAJA")


def per_row(db: Engine, plan: BulkPlan) -> str:
    """The batch as the per-row path records it: one lookup, grant and gate call per row."""
    rows: list[BatchInput] = []
    with session_scope(db) as session:
        for check, raw in zip(plan.checks, plan.table.rows, strict=True):
            if not check.ok or check.phone_e164 is None:
                rows.append(BatchInput(check.row_number, raw, error="; ".join(check.errors)))
                continue
            try:
                version = resolve_template(
                    session, plan.tenant_id, "po_notification", check.language or "es"
                )
                confirmed = plan.consent.get(check.row_number)
                supplier = find_or_add_supplier(
                    session,
                    plan.tenant_id,
                    check.phone_e164,
                    name=check.values.get("supplier_name"),
                    language=new_supplier_language(check),
                    consent=ConsentGrant("csv", BY) if confirmed else None,
                )
                prepared = prepare_template_message(
                    session,
                    tenant_id=plan.tenant_id,
                    phone=check.phone_e164,
                    template_name=version.name,
                    language=version.language,
                    params=check.params,
                    idempotency_key=check.idempotency_key,
                    supplier=supplier,
                    po_number=(check.values.get("po_number") or "").strip() or None,
                    created_by=BY,
                    source="csv",
                    definition=version,
                )
            except NoticeRejected as exc:
                rows.append(BatchInput(check.row_number, raw, error=str(exc)))
                continue
            rows.append(BatchInput(check.row_number, raw, message=prepared.outbound))
    return create_batch(
        db, plan.tenant_id, "ref", "po_notification", "es", rows, BY, upload_format=FORMAT
    ).id


MESSAGE_FIELDS = (
    "batch_row",
    "idempotency_key",
    "recipient_phone",
    "request_payload",
    "template_name",
    "template_language",
    "template_parameters",
    "body_text",
    "recipient_country",
    "po_number",
    "status",
    "meta",
    "created_by",
    "phone_number_id",
)


def messages_of(db: Engine, batch_id: str) -> dict[int | None, dict[str, Any]]:
    with Session(db) as session:
        rows = session.exec(
            select(WhatsAppMessage).where(col(WhatsAppMessage.batch_id) == batch_id)
        ).all()
        suppliers = {s.id: s.phone_e164 for s in session.exec(select(Supplier)).all()}
    return {
        m.batch_row: {
            **{name: getattr(m, name) for name in MESSAGE_FIELDS},
            "supplier": suppliers.get(m.supplier_id),
        }
        for m in rows
    }


def suppliers_of(db: Engine, tenant: str) -> dict[str, tuple[Any, ...]]:
    with Session(db) as session:
        rows = session.exec(select(Supplier).where(col(Supplier.tenant_id) == tenant)).all()
        events = session.exec(
            select(ConsentEvent).where(col(ConsentEvent.tenant_id) == tenant)
        ).all()
        per_supplier: dict[int | None, list[tuple[str, str, str | None]]] = {}
        for event in events:
            per_supplier.setdefault(event.supplier_id, []).append(
                (event.action, event.source, event.by)
            )
    return {
        s.phone_e164: (
            s.name,
            s.language,
            s.opted_in,
            s.consent_source,
            s.consent_by,
            s.opted_out_at is not None,
            sorted(per_supplier.get(s.id, [])),
        )
        for s in rows
    }


def same(row: dict[str, Any]) -> dict[str, Any]:
    """A results row without what differs between tenants: the ids of messages."""
    ids = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    return {k: ids.sub("<id>", v) if isinstance(v, str) else v for k, v in row.items()}


def test_the_chunked_path_ends_every_row_as_the_per_row_path_does(db: Engine) -> None:
    plans = {tenant: checked(db, tenant, mixed_file(), confirmed=True) for tenant in TENANTS}
    for tenant in TENANTS:
        opt_out(db, tenant, "+34612345009")
        between_check_and_send(db, tenant)
    chunked = record_plan(
        plans["bulk"],
        name="bulk",
        created_by=BY,
        source="csv",
        upload_format=FORMAT,
        engine=db,
        chunk=3,  # rows of one supplier and their duplicates fall in different chunks
    )
    reference = per_row(db, plans["rowwise"])

    ours, theirs = batch_results(db, chunked.id), batch_results(db, reference)
    assert len(ours) == len(theirs) == 17
    for mine, other in zip(ours, theirs, strict=True):
        assert same(mine) == same(other), mine["row_number"]
    outcome = {row["row_number"]: (row["outcome"], row["error"]) for row in ours}
    assert [n for n, (o, _e) in outcome.items() if o == "queued"] == [2, 3, 13, 16, 18]
    assert "duplicate" in outcome[4][1] or "Same PO" in outcome[4][1]
    assert "opted out" in outcome[11][1]
    assert outcome[12][1].startswith("already sent as message")
    assert "spreadsheet formula" in outcome[7][1]
    assert "U+202E" in outcome[8][1]
    assert "did not agree" in outcome[9][1]
    assert "no approved version in pt" in outcome[14][1]
    assert "line break" in outcome[15][1]

    ours_m, theirs_m = messages_of(db, chunked.id), messages_of(db, reference)
    assert ours_m.keys() == theirs_m.keys() == {2, 3, 13, 16, 18}
    for row in ours_m:
        assert ours_m[row] == theirs_m[row], row
    assert suppliers_of(db, "bulk") == suppliers_of(db, "rowwise")
    progress = batch_progress(db, chunked.id)
    assert chunked.status == "running" and progress.recorded_rows == 17
    assert progress.enqueued == 5 and not progress.importing and not progress.interrupted


def test_a_file_of_100000_rows_is_read_and_one_more_is_refused() -> None:
    header = b"phone,po_number\n"
    rows = b"612345678,PO\n" * MAX_ROWS
    assert MAX_ROWS == 100_000
    assert len(read_csv(header + rows).rows) == MAX_ROWS
    with pytest.raises(CsvError, match="more than 100,000 rows; split it"):
        read_csv(header + rows + b"612345678,PO\n")
    blank_lines = b"\n" * 10  # blank lines are not rows
    assert len(read_csv(header + blank_lines + rows).rows) == MAX_ROWS


def test_an_import_that_stops_half_way_shows_as_interrupted_and_can_be_completed(
    db: Engine,
) -> None:
    data = "".join(
        ["supplier_name;phone;po_number;total_amount\n"]
        + [f"Proveedor {n};612 400 {n:03d};PO-H-{n};{n},50\n" for n in range(1, 8)]
    ).encode()
    plan = checked(db, "bulk", data)
    seen: list[tuple[int, int]] = []

    def dies_after_the_second_chunk(done: int, total: int, batch_id: str) -> None:
        seen.append((done, total))
        if done >= 4:
            raise RuntimeError("the process died")

    with pytest.raises(RuntimeError):
        record_plan(
            plan,
            name="half",
            created_by=BY,
            source="csv",
            upload_format=FORMAT,
            engine=db,
            on_progress=dies_after_the_second_chunk,
            chunk=2,
        )
    assert seen == [(0, 7), (2, 7), (4, 7)]
    with Session(db) as session:
        batch = session.exec(select(SendBatch).where(col(SendBatch.name) == "half")).one()
    progress = batch_progress(db, batch.id)
    assert (progress.status, progress.total_rows, progress.recorded_rows) == ("importing", 7, 4)
    assert progress.importing and not progress.done and progress.enqueued == 4
    # while rows are being recorded their messages are not counted by status (a page
    # watching a 100,000-row import would count them every second)
    assert not progress.counted and progress.counts == {} and progress.queued == 0
    with clock.frozen(clock.now() + timedelta(minutes=5)):
        late = batch_progress(db, batch.id)
    assert late.interrupted and not late.importing and not late.done
    assert late.counted and late.counts == {"pending": 4} and late.queued == 4
    assert [row["row_number"] for row in batch_results(db, batch.id)] == [2, 3, 4, 5]

    again = record_plan(
        checked(db, "bulk", data), name="again", created_by=BY, source="csv",
        upload_format=FORMAT, engine=db, chunk=2,
    )  # fmt: skip
    results = batch_results(db, again.id)
    assert [r["outcome"] for r in results] == ["refused"] * 4 + ["queued"] * 3
    assert all("lready sent as message" in r["error"] for r in results[:4])  # by the check
    with Session(db) as session:
        keys = session.exec(
            select(WhatsAppMessage.idempotency_key).where(col(WhatsAppMessage.tenant_id) == "bulk")
        ).all()
    assert len(keys) == len(set(keys)) == 7  # every PO once


def test_a_template_edited_after_the_check_puts_its_rows_through_the_gate_again(
    db: Engine,
) -> None:
    """A row is queued from its checked request body only while the version it was
    checked against is the one in force: here the Spanish version's footer changes
    between the check and the send, so its rows are built again by the gate (and go
    out as the new version says), while the English row keeps its checked body. Each
    chunk's messages are the per-row path's, hostile rows still refused."""
    plans = {tenant: checked(db, tenant, mixed_file(), confirmed=True) for tenant in TENANTS}
    catalogue = [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    for graph in catalogue:
        if graph["name"] == "po_notification" and graph["language"] == "es":
            for component in graph["components"]:
                if component["type"] == "BODY":
                    component["text"] += " Gracias de nuevo."
    for tenant in TENANTS:
        upsert_templates(db, tenant, catalogue)
    chunked = record_plan(
        plans["bulk"], name="bulk", created_by=BY, source="csv", upload_format=FORMAT,
        engine=db, chunk=4,
    )  # fmt: skip
    reference = per_row(db, plans["rowwise"])
    ours, theirs = messages_of(db, chunked.id), messages_of(db, reference)
    assert ours.keys() == theirs.keys() == {2, 3, 11, 12, 13, 16, 18}
    for row in ours:
        assert ours[row] == theirs[row], row
    checked_bodies = {check.row_number: check.preview for check in plans["bulk"].checks}
    assert "Gracias de nuevo" not in (checked_bodies[2] or "")
    assert ours[2]["body_text"].endswith("Gracias de nuevo.")  # built again, by the gate
    assert ours[13]["body_text"] == checked_bodies[13]  # English: as checked
    assert ours[13]["request_payload"]["template"]["language"]["code"] == "en"
    outcome = {row["row_number"]: row["error"] for row in batch_results(db, chunked.id)}
    assert "spreadsheet formula" in outcome[7] and "U+202E" in outcome[8]


def test_values_copy_and_executemany_must_escape_are_stored_exactly(db: Engine) -> None:
    """Rows are written by PostgreSQL COPY (text format) or SQLite executemany: cells
    holding COPY's own markers (a backslash, `\\N`, the `\\.` end line, quotes), emoji
    and accents come back exactly as the per-row path stores them, in messages, batch
    rows (raw cells) and new suppliers; hostile rows beside them are still refused."""
    names = [
        "Back\\slash \\N S.L.",
        "\\.",
        "Comillas \"dobles\" y 'simples'; punto y coma",
        "Ñandú 😀 Ltda",
        "=cmd|' /C calc'!A0",  # a formula: refused
        "Tab\there",  # a tab: refused
    ]
    lines = ["Proveedor;Teléfono;Pedido;Importe"]
    for n, name in enumerate(names):
        quoted = '"' + name.replace('"', '""') + '"'
        lines.append(f"{quoted};612 777 {n:03d};PO-\\N-{n};{n},25")
    data = ("\r\n".join(lines) + "\r\n").encode("utf-8")
    plans = {tenant: checked(db, tenant, data, confirmed=True) for tenant in TENANTS}
    chunked = record_plan(
        plans["bulk"], name="bulk", created_by=BY, source="csv", upload_format=FORMAT,
        engine=db, chunk=2,
    )  # fmt: skip
    reference = per_row(db, plans["rowwise"])
    ours, theirs = batch_results(db, chunked.id), batch_results(db, reference)
    for mine, other in zip(ours, theirs, strict=True):
        assert same(mine) == same(other), mine["row_number"]
    assert [row["outcome"] for row in ours] == ["queued"] * 4 + ["refused"] * 2
    assert [row["Proveedor"] for row in ours] == names
    ours_m, theirs_m = messages_of(db, chunked.id), messages_of(db, reference)
    assert ours_m == theirs_m
    assert ours_m[2]["template_parameters"]["supplier_name"] == "Back\\slash \\N S.L."
    assert ours_m[2]["po_number"] == "PO-\\N-0"
    assert ours_m[4]["request_payload"]["template"]["components"]
    assert suppliers_of(db, "bulk") == suppliers_of(db, "rowwise")
    assert {s[0] for s in suppliers_of(db, "bulk").values()} >= set(names[:4])


def test_a_key_queued_meanwhile_makes_the_chunk_start_again(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PO-10 is queued by another process after the chunk looked its keys up: inserting
    it fails on the key (an IntegrityError, whichever database: COPY and the SQLite
    statements raise it as SQLAlchemy does), the chunk rolls back whole and starts again,
    and the row is then "already sent"; nothing is queued twice."""
    from core import batch_import

    plan = checked(db, "bulk", mixed_file(), confirmed=True)
    between_check_and_send(db, "bulk")
    real = batch_import.key_holders
    calls: list[int] = []

    def blind_first(conn: Any, tenant_id: str, keys: Any) -> Any:
        calls.append(len(keys))
        return {} if len(calls) == 1 else real(conn, tenant_id, keys)  # missed it once

    monkeypatch.setattr(batch_import, "key_holders", blind_first)
    batch = record_plan(
        plan, name="bulk", created_by=BY, source="csv", upload_format=FORMAT, engine=db
    )
    assert len(calls) == 2  # one chunk, tried twice
    outcome = {row["row_number"]: row for row in batch_results(db, batch.id)}
    assert outcome[12]["error"].startswith("already sent as message")
    assert messages_of(db, batch.id).keys() == {2, 3, 11, 13, 16, 18}
    with Session(db) as session:
        keys = session.exec(
            select(WhatsAppMessage.idempotency_key).where(WhatsAppMessage.tenant_id == "bulk")
        ).all()
    assert len(keys) == len(set(keys)) == 7  # and PO-10 once, from elsewhere
