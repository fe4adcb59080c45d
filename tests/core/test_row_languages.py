"""Per-row languages, spreadsheet row numbers and namesake suppliers in bulk sends
(issue 12 items 6, 7 and 9), on a real SQLite database with the sandbox's templates."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select, update

from core.batches import ROW_NUMBERS, batch_results, shown_row_number
from core.bulk import (
    NamesakesNotConfirmed,
    plan_csv,
    plan_results_csv,
    recent_batches,
    results_csv_for,
    start_batch,
)
from core.csv_import import read_csv, spreadsheet_row
from core.db import session_scope
from core.models.batches import SendBatch
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier
from core.models.types import utcnow
from core.row_languages import row_language
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.templates import upsert_templates

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "csv"
HEADER = "supplier_name,phone,po_number,total_amount,currency,language,consent\n"


@pytest.fixture
def db(engine: Engine) -> Engine:
    """The sandbox's templates (po_notification in es and en) plus a pt_BR version."""
    graphs = [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    spanish = next(g for g in graphs if g["name"] == "po_notification" and g["language"] == "es")
    portuguese = {**spanish, "language": "pt_BR", "id": "5550001112223"}
    upsert_templates(engine, "acme", [*graphs, portuguese])
    return engine


def supplier(engine: Engine, name: str, phone: str, **values: Any) -> None:
    with session_scope(engine) as session:
        session.add(
            Supplier(
                tenant_id="acme",
                name=name,
                phone_e164=phone,
                opted_in=True,
                opted_in_at=utcnow(),
                **values,
            )
        )


def plan(db: Engine, body: str, **kw: Any) -> Any:
    return plan_csv(
        (HEADER + body).encode(),
        tenant_id="acme",
        template_name="po_notification",
        language="es",
        engine=db,
        **kw,
    )


# The rule, one row at a time -----------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "kept", "code", "source"),
    [
        ("pt", None, "pt", "row"),
        ("PT", None, "pt", "row"),  # case as people type it
        ("pt-BR", None, "pt", "row"),  # the generic version serves a regional code
        (" en ", "pt", "en", "row"),  # the row's cell beats the supplier's language
        ("", "pt", "pt", "supplier"),
        ("", None, "es", "default"),
        ("", "  ", "es", "default"),
    ],
)
def test_a_row_goes_out_in_its_own_language(
    cell: str, kept: str | None, code: str, source: str
) -> None:
    chosen = row_language(cell, kept, "es", ["es", "en", "pt"])
    assert (chosen.code, chosen.source, chosen.error, chosen.warning) == (code, source, None, None)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("xx", "The template has no approved version in xx (the row's language; approved: es, en)"),
        ("=cmd", "The language '=cmd' is not a language code"),
        ("pt;DROP", "The language 'pt;DROP' is not a language code"),
        ("e" * 200, "The language '" + "e" * 20 + "'… is not a language code"),
        ("pt_BR_x", "is not a language code"),
        ("<b>en</b>", "is not a language code"),
    ],
)
def test_a_language_without_a_version_or_no_language_at_all_is_refused(
    cell: str, reason: str
) -> None:
    chosen = row_language(cell, None, "es", ["es", "en"])
    assert chosen.code is None and chosen.error is not None and reason in chosen.error
    assert len(chosen.error) < 200  # a 200-character cell is quoted, not repeated whole


def test_the_buyer_may_send_such_rows_in_the_default_language_instead() -> None:
    chosen = row_language("xx", None, "es", ["es", "en"], fallback_to_default=True)
    assert (chosen.code, chosen.error) == ("es", None)
    assert chosen.warning == "Sent in es: the template has no approved xx version"
    # A cell that is no language at all is refused even then: it is not guessed.
    assert row_language("=cmd", None, "es", ["es"], fallback_to_default=True).code is None


def test_a_supplier_language_without_a_version_and_an_ambiguous_code_say_so() -> None:
    kept = row_language("", "fr", "es", ["es", "en"])
    assert kept.code is None and kept.error is not None and "the supplier's language" in kept.error
    several = row_language("pt", None, "es", ["es", "pt_BR", "pt_PT"])
    assert several.code is None and several.error is not None
    assert "matches several versions of the template (pt_BR, pt_PT)" in several.error


# A whole file on a real database ---------------------------------------------------------


def test_each_row_is_checked_against_its_languages_version(db: Engine) -> None:
    supplier(db, "Bright Packaging", "+447911123456", language="en")
    checked = plan(
        db,
        "Harinas,612 345 678,PO-1,10.00,EUR,,yes\n"  # row 2: unknown supplier -> default es
        "Bright Packaging,+44 7911 123456,PO-2,20.00,EUR,,yes\n"  # 3: supplier's en
        "Embalagens,+351 912 345 678,PO-3,30.00,EUR,PT,yes\n"  # 4: PT -> the only pt version
        "Nowhere,612 345 679,PO-4,40.00,EUR,xx,yes\n"  # 5: no xx version
        "Formula,612 345 680,PO-5,50.00,EUR,=cmd,yes\n"  # 6: a formula, one reason
        f"Long,612 345 681,PO-6,60.00,EUR,{'e' * 200},yes\n",  # 7
    )
    by_row = {check.row_number: check for check in checked.checks}
    assert [by_row[n].language for n in (2, 3, 4)] == ["es", "en", "pt_BR"]
    assert by_row[2].preview is not None and by_row[2].preview.startswith("Hola Harinas")
    assert by_row[3].preview is not None and "Bright Packaging" in by_row[3].preview
    assert by_row[5].errors == [
        "The template has no approved version in xx (the row's language; approved: es, en, "
        "pt_BR). Approve one, or choose to send such rows in es"
    ]
    assert len(by_row[6].errors) == 1 and "spreadsheet formula" in by_row[6].errors[0]
    assert len(by_row[7].errors) == 1 and "is not a language code" in by_row[7].errors[0]
    previews = checked.previews()
    assert [(p.language, p.rows, p.row_number) for p in previews] == [
        ("es", 1, 2),
        ("en", 1, 3),
        ("pt_BR", 1, 4),
    ]
    assert previews[1].preview.body.startswith("Hello Bright Packaging")
    fallback = plan(db, "Nowhere,612 345 679,PO-4,40.00,EUR,xx,yes\n", fallback_to_default=True)
    (row,) = fallback.checks
    assert row.ok and row.language == "es"
    assert row.warnings == ["Sent in es: the template has no approved xx version"]


def test_a_batch_sends_every_row_in_its_language_and_numbers_rows_as_the_spreadsheet(
    db: Engine,
) -> None:
    checked = plan(
        db,
        '"Harinas\nMartín",612 345 678,PO-1,10.00,EUR,es,yes\n'  # row 2, two lines long
        "Bright,+44 7911 123456,PO-2,20.00,EUR,en-GB,yes\n"  # row 3
        "Nadie,612 345 679,PO-3,30.00,EUR,xx,yes\n"  # row 4: refused
        "Embalagens,+351 912 345 678,PO-4,30.00,EUR,pt,yes\n",  # row 5
    )
    assert [c.row_number for c in checked.checks] == [2, 3, 4, 5]
    # The line break in row 2's name refuses it; the others go in their languages.
    batch = start_batch(checked, name="langs", created_by="buyer-1", engine=db)
    with Session(db) as session:
        sent = session.exec(
            select(WhatsAppMessage).where(col(WhatsAppMessage.batch_id) == batch.id)
        ).all()
        stored = session.get(SendBatch, batch.id)
    assert sorted((m.batch_row, m.template_language) for m in sent) == [(3, "en"), (5, "pt_BR")]
    assert stored is not None and stored.upload_format is not None
    assert stored.upload_format["languages"] == {"en": 1, "pt_BR": 1}
    assert recent_batches(db, "acme")[0].template == "po_notification (en, pt_BR)"
    rows = list(
        csv.DictReader(io.StringIO(results_csv_for(batch.id, engine=db).decode("utf-8-sig")))
    )
    assert [(r["row_number"], r["outcome"]) for r in rows] == [
        ("2", "refused"),
        ("3", "queued"),
        ("4", "refused"),
        ("5", "queued"),
    ]
    assert "no approved version in xx" in rows[2]["error"]
    dry = list(csv.DictReader(io.StringIO(plan_results_csv(checked).decode("utf-8-sig"))))
    assert [r["row_number"] for r in dry] == ["2", "3", "4", "5"]


def test_rows_are_counted_as_records_not_lines_with_blank_lines_kept() -> None:
    data = (SAMPLES / "po_batch_with_errors.csv").read_bytes()
    table = read_csv(data)
    # The sample's row 5 holds a name on two lines: still one spreadsheet row.
    assert table.row_numbers == [2, 3, 4, 5, 6, 7, 8]
    assert table.rows[3]["supplier_name"] == "Nombre con\nsalto de línea"
    assert table.rows[6]["supplier_name"].startswith("=HYPERLINK")  # row 8, as Excel shows
    above = read_csv(b"\n\nname,phone\n\nAna,1\n")  # two blank lines above the header
    assert above.row_numbers == [spreadsheet_row(4)] == [5]


def test_batches_recorded_before_spreadsheet_numbers_are_shown_alike(db: Engine) -> None:
    checked = plan(db, "Harinas,612 345 678,PO-1,10.00,EUR,es,yes\n")
    batch = start_batch(checked, name="old", created_by="b", engine=db)
    assert [r["row_number"] for r in batch_results(db, batch.id)] == [2]
    with session_scope(db) as session:  # as a CSV batch recorded data rows from 1 before
        row = session.get(SendBatch, batch.id)
        assert row is not None and row.upload_format is not None
        old = {k: v for k, v in row.upload_format.items() if k != ROW_NUMBERS}
        session.execute(update(SendBatch).where(col(SendBatch.id) == batch.id).values(
            upload_format=old))  # fmt: skip
        session.execute(
            update(WhatsAppMessage.__table__)  # type: ignore[attr-defined]
            .where(WhatsAppMessage.__table__.c.batch_id == batch.id)  # type: ignore[attr-defined]
            .values(batch_row=1)
        )
    from core.models.batches import BatchRow

    with session_scope(db) as session:
        session.execute(update(BatchRow).where(col(BatchRow.batch_id) == batch.id).values(
            row_number=1))  # fmt: skip
    assert [r["row_number"] for r in batch_results(db, batch.id)] == [2]
    assert shown_row_number(7, None) == 7  # an API batch keeps its item numbers


# Namesakes ---------------------------------------------------------------------------------


def test_a_new_supplier_named_like_another_is_asked_about_first(db: Engine) -> None:
    supplier(db, "Acme S.L.", "+34612000001", external_ref="ERP-7")
    supplier(db, "Known", "+34612000002")
    checked = plan(
        db,
        " ACME s.l. ,612 000 003,PO-1,10.00,EUR,es,yes\n"  # a new number, an existing name
        "Known,612 000 002,PO-2,10.00,EUR,es,yes\n"  # the known supplier itself: fine
        "Twin,612 000 004,PO-3,10.00,EUR,es,yes\n"
        "twin,612 000 005,PO-4,10.00,EUR,es,yes\n"  # two new ones of one name
        "Twin,612 000 004,PO-5,10.00,EUR,es,yes\n",  # the same new one again: fine
    )
    found = {n.row_number: n for n in checked.namesakes_to_confirm}
    assert set(found) == {2, 5}
    assert found[2].others == ["Acme S.L. · +34 612 00 00 01 · ERP ERP-7"]
    assert found[5].others == ["Twin · +34 612 00 00 04 (row 4 of this file)"]
    with pytest.raises(NamesakesNotConfirmed, match="rows 2, 5"):
        start_batch(checked, name="x", created_by="b", engine=db)
    with Session(db) as session:
        assert len(session.exec(select(Supplier)).all()) == 2  # nothing added
    start_batch(checked, name="x", created_by="b", allow_namesakes=True, engine=db)
    with Session(db) as session:
        names = sorted(s.name for s in session.exec(select(Supplier)).all())
    assert names == ["ACME s.l.", "Acme S.L.", "Known", "Twin", "twin"]


# Labels in pickers and filters -------------------------------------------------------------


def test_every_picker_labels_suppliers_apart_with_phone_and_namesakes_erp_ref(
    db: Engine,
) -> None:
    from core import stats
    from core.compose import search_suppliers
    from core.supplier_labels import supplier_label

    supplier(db, "Acme S.L.", "+34612000001", external_ref="NORTE")
    supplier(db, "acme s.l.", "+34612000002", external_ref="SUR")
    supplier(db, "Solo **bold**", "+34612000003", external_ref="X-1")
    labels = {label for _, label in stats.supplier_options(db, ["acme"])}  # order: collation
    assert labels == {
        "Acme S.L. · +34 612 00 00 01 · ERP NORTE",
        "Solo **bold** · +34 612 00 00 03",  # no namesake: no reference; text kept as is
        "acme s.l. · +34 612 00 00 02 · ERP SUR",
    }
    picked = {c.phone_e164: c.label for c in search_suppliers(db, "acme", "acme")}
    assert picked == {
        "+34612000001": "Acme S.L. · +34 612 00 00 01 · ERP NORTE",
        "+34612000002": "acme s.l. · +34 612 00 00 02 · ERP SUR",
    }
    assert supplier_label("Old", "not-a-number") == "Old · not-a-number"  # shown, not dropped
    assert supplier_label("  ", None) == "?"


def test_a_directory_import_asks_before_adding_a_namesake(db: Engine) -> None:
    from core.supplier_directory import SupplierError, apply_import, plan_import, read_import
    from tests.dashboard.pages import person

    admin = person("admin", tenant="acme")
    supplier(db, "Acme S.L.", "+34612000001")
    table, mapping = read_import(
        b"nombre;telefono\nAcme S.L.;612 000 001\nacme s.l.;612 000 009\nOtra;612 000 010\n"
    )
    plan = plan_import(db, "acme", table, mapping, region="ES")
    assert [(n.row_number, n.others) for n in plan.namesakes] == [
        (3, ["Acme S.L. · +34 612 00 00 01"])  # row 2 is the known supplier itself: an update
    ]
    with pytest.raises(SupplierError, match="Rows 3 would add a supplier"):
        apply_import(db, admin, plan)
    assert apply_import(db, admin, plan, allow_namesakes=True).added == 2
