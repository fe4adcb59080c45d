"""core.supplier_directory on a real SQLite file: checks, role and tenant rules, consent,
and CSV imports with hostile and malformed rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core.auth import PermissionDenied
from core.csv_import import CsvError
from core.models.suppliers import Supplier
from core.supplier_directory import (
    SupplierError,
    SupplierInput,
    add_supplier,
    apply_import,
    check_supplier,
    get_supplier,
    list_suppliers,
    plan_import,
    read_import,
    set_opt_in,
    update_supplier,
)
from tests.dashboard.pages import person

ADMIN = person("admin")
SAMPLES = Path("/work/shared/samples/csv")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (SupplierInput("", "+34612345678"), "name is empty"),
        (SupplierInput("=HYPERLINK(\"x\")", "+34612345678"), "formula"),
        (SupplierInput("A" * 201, "+34612345678"), "longer than 200"),
        (SupplierInput("Acme", "12"), "too short"),
        (SupplierInput("Acme", "+34612345678", language="klingon"), "Unknown language"),
        (SupplierInput("Acme", "+34612345678", external_ref="R" * 65), "reference is longer"),
    ],
)
def test_bad_supplier_input_is_refused_with_a_reason(data: SupplierInput, problem: str) -> None:
    with pytest.raises(SupplierError, match=problem):
        check_supplier(data, "ES")


def test_add_edit_and_consent(engine: Engine) -> None:
    view = add_supplier(engine, ADMIN, SupplierInput("  Harinas   Martín ", "612 34 56 78"))
    assert view.name == "Harinas Martín" and view.phone_e164 == "+34612345678"
    assert view.opted_in and view.opted_in_at is not None
    with pytest.raises(SupplierError, match="already belongs to Harinas"):
        add_supplier(engine, ADMIN, SupplierInput("Copy", "+34 612 345 678"))
    changed = SupplierInput("Harinas Martín S.L.", "+34612345679", "en", "ERP-7")
    edited = update_supplier(engine, ADMIN, view.id, changed)
    assert (edited.phone_e164, edited.language) == ("+34612345679", "en")
    assert edited.external_ref == "ERP-7"
    out = set_opt_in(engine, ADMIN, view.id, False)  # an admin's untick is an opt-out
    assert not out.opted_in and out.consent == "opted_out"
    assert out.opt_out_source == "admin" and out.opted_out_at is not None
    back = set_opt_in(engine, ADMIN, view.id, True)  # only an admin lifts an opt-out
    assert back.consent == "consenting" and back.opted_in_at is not None
    assert back.consent_source == "admin" and back.opted_out_at is None
    same = SupplierInput("Harinas Martín S.L.", "+34612345679")
    retired = update_supplier(engine, ADMIN, view.id, same, active=False)
    assert not retired.is_active
    assert list_suppliers(engine, "default").total == 0
    assert list_suppliers(engine, "default", include_inactive=True).total == 1


def test_only_admins_change_and_only_their_own_tenant(engine: Engine) -> None:
    view = add_supplier(engine, ADMIN, SupplierInput("Acme", "+34612345678"))
    for role in ("manager", "buyer"):
        with pytest.raises(PermissionDenied):
            add_supplier(engine, person(role), SupplierInput("Other", "+34612345670"))
    other_admin = person("admin", "branch")
    with pytest.raises(SupplierError, match="No such supplier"):
        update_supplier(engine, other_admin, view.id, SupplierInput("Mine now", "+34612345678"))
    with pytest.raises(SupplierError, match="No such supplier"):
        set_opt_in(engine, other_admin, view.id, False)
    assert get_supplier(engine, "branch", view.id) is None


def test_search_is_plain_text_and_paged(engine: Engine) -> None:
    for i in range(7):
        add_supplier(engine, ADMIN, SupplierInput(f"Proveedor_{i}", f"+3461234560{i}"))
    add_supplier(engine, ADMIN, SupplierInput("Proveedor%X", "+34612345699"))
    assert list_suppliers(engine, "default", query="%").total == 1
    assert list_suppliers(engine, "default", query="r_").total == 7  # "_" is literal
    assert list_suppliers(engine, "default", query="345 602").rows[0].name == "Proveedor_2"
    page = list_suppliers(engine, "default", page=2, page_size=3)
    assert (page.total, page.pages, len(page.rows)) == (8, 3, 3)


def test_import_reports_every_bad_row_and_writes_only_on_apply(engine: Engine) -> None:
    add_supplier(engine, ADMIN, SupplierInput("Old name", "+34612345678", external_ref="P-1"))
    data = (
        "Proveedor;Teléfono;Idioma;Código;Consentimiento\n"
        "Harinas Martín S.L.;+34 612 34 56 78;es;P-1;sí\n"
        "Lácteos Ruiz;612 555 111;es;P-2;si\n"
        ";612 555 112;es;P-3;si\n"
        "Sin número;;es;P-4;si\n"
        "=cmd|' /C calc'!A0;612 555 113;es;P-5;si\n"
        "Duplicado;612-555-111;es;P-6;si\n"
        "Frutas Roca;612 555 114;xx;P-7;quizás\n"
        "Bright Packaging;+44 7911 123456;en;P-8;no\n"
    ).encode("cp1252")
    table, mapping = read_import(data)
    assert mapping == {"supplier_name": "Proveedor", "phone": "Teléfono", "language": "Idioma",
                       "supplier_ref": None, "opted_in": None}  # fmt: skip
    mapping.update(supplier_ref="Código", opted_in="Consentimiento")
    plan = plan_import(engine, "default", table, mapping, region="ES")
    assert [r.row_number for r in plan.good] == [2, 3, 9]  # as the spreadsheet numbers them
    reasons = {r.row_number: " ".join(r.problems) for r in plan.bad}
    assert "name is empty" in reasons[4]
    assert "empty" in reasons[5]
    assert "formula" in reasons[6]
    assert "same number as row 3" in reasons[7]
    assert "Unknown language" in reasons[8] and "not yes or no" in reasons[8]
    assert plan.good[0].updates_existing
    with Session(engine) as session:
        assert len(session.exec(select(Supplier)).all()) == 1  # planning wrote nothing
    result = apply_import(engine, ADMIN, plan)
    assert (result.added, result.updated, result.skipped) == (2, 1, 5)
    names = {s.name: s for s in list_suppliers(engine, "default").rows}
    assert set(names) == {"Harinas Martín S.L.", "Lácteos Ruiz", "Bright Packaging"}
    assert not names["Bright Packaging"].opted_in
    with pytest.raises(PermissionDenied):
        apply_import(engine, person("manager"), plan)


def test_an_import_without_the_required_columns_says_so(engine: Engine) -> None:
    table, _ = read_import(b"colour,size\nred,1\n")
    plan = plan_import(engine, "default", table, {"supplier_name": None, "phone": None})
    assert plan.problems and "supplier name" in plan.problems[0]
    forged = plan_import(engine, "default", table, {"supplier_name": "colour", "phone": "nope"})
    assert "no column 'nope'" in forged.problems[0]
    with pytest.raises(SupplierError):
        apply_import(engine, ADMIN, plan)


@pytest.mark.parametrize("data", [b"", b"\x00\x01\x02PK\x03\x04binary", b"PK\x03\x04" + b"x" * 50])
def test_unreadable_files_are_refused(data: bytes) -> None:
    with pytest.raises(CsvError):
        read_import(data)


def test_the_team_sample_file_imports_its_good_rows(engine: Engine) -> None:
    table, mapping = read_import((SAMPLES / "po_batch_with_errors.csv").read_bytes())
    plan = plan_import(engine, "default", table, mapping, region="ES")
    assert plan.good and plan.bad
    assert all(r.problems for r in plan.bad)
