"""The suppliers page (AppTest) on a real SQLite file: empty state, add, edit, consent,
CSV import with the bad rows listed, and role checks."""

from __future__ import annotations

from sqlalchemy import Engine

from core.supplier_directory import SupplierInput, add_supplier, list_suppliers
from tests.dashboard.pages import dashboard_env, page, person, texts

__all__ = ["dashboard_env"]

MODULE = "dashboard.views.suppliers"
ADMIN = person("admin")


def test_empty_directory_then_add(dashboard_env: str, engine: Engine) -> None:
    at = page(MODULE, ADMIN).run()
    assert not at.exception
    assert "No suppliers yet" in texts(at)
    form = at.tabs[1]
    form.text_input[0].set_value("Harinas Martín S.L.")
    form.text_input[1].set_value("612 34 56 78")
    form.button[0].click().run()
    assert "Harinas Martín S.L. (+34 612 34 56 78) added" in texts(at)
    assert list_suppliers(engine, "default").rows[0].phone_e164 == "+34612345678"


def test_a_bad_number_is_refused_on_add(dashboard_env: str, engine: Engine) -> None:
    at = page(MODULE, ADMIN).run()
    form = at.tabs[1]
    form.text_input[0].set_value("Sin número")
    form.text_input[1].set_value("12")
    form.button[0].click().run()
    assert "too short" in texts(at)
    assert list_suppliers(engine, "default").total == 0


def test_edit_and_withdraw_consent(dashboard_env: str, engine: Engine) -> None:
    view = add_supplier(engine, ADMIN, SupplierInput("Acme", "+34612345678"))
    at = page(MODULE, ADMIN)
    at.session_state["suppliers_selected"] = view.id
    at.run()
    assert "Edit Acme" in texts(at)
    edit = at.tabs[0]
    name_box = next(t for t in edit.text_input if t.label == "Name")
    name_box.set_value("Acme Ibérica S.A.")
    consent = next(c for c in edit.checkbox if c.label.startswith("Agreed"))
    consent.uncheck()
    next(b for b in edit.button if b.label == "Save changes").click().run()
    assert not at.exception
    saved = list_suppliers(engine, "default").rows[0]
    assert saved.name == "Acme Ibérica S.A." and not saved.opted_in


def test_import_lists_bad_rows_then_imports_the_rest(dashboard_env: str, engine: Engine) -> None:
    data = (
        "nombre;telefono;idioma\n"
        "Harinas Martín S.L.;612 34 56 78;es\n"
        "Sin número;;es\n"
        "=HYPERLINK(\"http://x\");612 555 113;es\n"
        "Lácteos Ruiz;612 555 111;es\n"
    ).encode("utf-8-sig")
    at = page(MODULE, ADMIN).run()
    at.get("file_uploader")[0].set_value(("proveedores.csv", data, "text/csv")).run()
    assert not at.exception
    assert "separated by semicolons" in texts(at)
    refused = at.dataframe[-1].value
    assert list(refused["Row"]) == [3, 4]  # the header is row 1
    assert "formula" in refused["Reasons"].iloc[1]
    at.button(key="suppliers_apply").click().run()
    assert "2 added, 0 updated, 2 refused rows left out" in texts(at)
    assert list_suppliers(engine, "default").total == 2


def test_an_unreadable_upload_is_refused_plainly(dashboard_env: str) -> None:
    at = page(MODULE, ADMIN).run()
    at.get("file_uploader")[0].set_value(("pedidos.csv", b"PK\x03\x04\x00\x00binary", "text/csv"))
    at.run()
    assert "This file cannot be read" in texts(at)


def test_managers_are_refused(dashboard_env: str) -> None:
    at = page(MODULE, person("manager")).run()
    assert "may not manage suppliers" in texts(at)
    assert not at.tabs
