"""Suppliers: the directory of who receives PO notices, with add, edit, consent and CSV import.

Rules and checks live in `core.supplier_directory`; this page draws the table, the
forms and the import's row-by-row report.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.auth import Action, PermissionDenied, can
from core.consent import history
from core.consent.policy import source_label
from core.csv_import import CsvError
from core.i18n import _
from core.supplier_directory import (
    IMPORT_FIELDS,
    LANGUAGE_CODES,
    REQUIRED_FIELDS,
    ImportPlan,
    SupplierError,
    SupplierInput,
    SupplierView,
    add_supplier,
    apply_import,
    get_supplier,
    list_suppliers,
    plan_import,
    read_import,
    set_opt_in,
    update_supplier,
)
from core.supplier_labels import supplier_label
from core.users import UserInfo
from dashboard import runtime
from dashboard.widgets import local_time, md_escape, page_number, pager

PAGE_SIZE = 25
_FIELD_LABELS = {
    "supplier_name": "Name",
    "phone": "Phone",
    "language": "Language",
    "supplier_ref": "ERP reference",
    "opted_in": "Consent (yes/no)",
}
_SELECTED = "suppliers_selected"


def render(user: UserInfo) -> None:
    """Draw the suppliers page for `user` (admins)."""
    if not can(user, Action.MANAGE_SUPPLIERS):
        st.error(f"The {user.role.value} role may not manage suppliers")
        return
    st.title("Suppliers")
    st.caption("Who receives PO notices on WhatsApp, in which language, and whether they "
               "agreed to it.")  # fmt: skip
    directory, add, upload = st.tabs(["Directory", "Add a supplier", "Import from CSV"])
    with directory:
        _directory(user)
    with add:
        _add_form(user)
    with upload:
        _import(user)


def _directory(user: UserInfo) -> None:
    engine = runtime.engine()
    left, right = st.columns([3, 1])
    query = left.text_input("Search", placeholder="Name, phone or ERP reference",
                            key="suppliers_query")  # fmt: skip
    inactive = right.toggle("Show inactive", key="suppliers_inactive")
    page_no = page_number("suppliers")
    page = list_suppliers(engine, user.tenant_id, query=query, include_inactive=inactive,
                          page=page_no, page_size=PAGE_SIZE)  # fmt: skip
    if page.total == 0:
        with st.container(border=True):
            if query:
                st.markdown("No supplier matches this search.")
            else:
                st.markdown("### No suppliers yet")
                st.markdown("Add them one by one in **Add a supplier**, import a CSV exported "
                            "from the ERP, or let the first PO notices add them.")  # fmt: skip
        return
    frame = pd.DataFrame(
        {
            "Name": [s.name for s in page.rows],
            "Phone": [s.phone_display for s in page.rows],
            "Language": [s.language for s in page.rows],
            "ERP reference": [s.external_ref or "" for s in page.rows],
            "Consent": [_consent_word(s) for s in page.rows],
            "Active": [s.is_active for s in page.rows],
            "Last message from them": [s.last_inbound_at for s in page.rows],
        }
    )
    demo = " · includes demo suppliers (DEMO-…)" if any(s.is_demo for s in page.rows) else ""
    st.caption(f"{page.total:,} suppliers{demo}. Click a row to edit it.")
    event = st.dataframe(
        frame, hide_index=True, on_select="rerun", selection_mode="single-row",
        height="content", key=f"suppliers_table_{page.page}",
        column_config={  # every column fits 1,400 px
            "Name": st.column_config.TextColumn(_("Name"), width=215),
            "Phone": st.column_config.TextColumn(_("Phone"), width=140),
            "Language": st.column_config.TextColumn(_("Language"), width=80),
            "ERP reference": st.column_config.TextColumn(_("ERP reference"), width=130),
            "Consent": st.column_config.TextColumn(_("Consent"), width=95),
            "Active": st.column_config.CheckboxColumn(_("Active"), width=70),
            "Last message from them": st.column_config.DatetimeColumn(
                _("Last message from them"), format="distance", width=170
            ),
        },
    )  # fmt: skip
    pager(page, "suppliers")
    rows = getattr(getattr(event, "selection", None), "rows", None) or []
    if rows and 0 <= rows[0] < len(page.rows):
        st.session_state[_SELECTED] = page.rows[rows[0]].id
    selected = st.session_state.get(_SELECTED)
    if isinstance(selected, int):
        supplier = get_supplier(engine, user.tenant_id, selected)
        if supplier is not None:
            _edit_form(user, supplier)


def _edit_form(user: UserInfo, supplier: SupplierView) -> None:
    label = supplier_label(supplier.name, supplier.phone_e164, supplier.external_ref)
    st.subheader(f"Edit {md_escape(label)}", anchor=False)
    with st.form(f"supplier_edit_{supplier.id}"):
        c1, c2 = st.columns(2)
        name = c1.text_input("Name", value=supplier.name, max_chars=200)
        phone = c2.text_input("WhatsApp number", value=supplier.phone_display)
        c3, c4 = st.columns(2)
        languages = list(LANGUAGE_CODES)
        language = c3.selectbox("Language", languages,
                                index=_index(languages, supplier.language))  # fmt: skip
        ref = c4.text_input("ERP reference", value=supplier.external_ref or "", max_chars=64)
        if supplier.consent == "opted_out":
            st.error(md_escape(_consent_detail(supplier)), icon=":material/block:")
        consent = st.checkbox("Agreed to receive PO notices on WhatsApp", value=supplier.opted_in)
        active = st.checkbox("Active (offered when sending)", value=supplier.is_active)
        if supplier.consent == "consenting":
            st.caption(md_escape(_consent_detail(supplier)))
        saved = st.form_submit_button("Save changes", type="primary")
    if saved:
        try:
            update_supplier(
                runtime.engine(), user, supplier.id,
                SupplierInput(name, phone, language, ref or None, consent), active=active,
            )  # fmt: skip
        except (SupplierError, PermissionDenied) as exc:
            st.error(md_escape(exc))
            return
        st.toast(f"{md_escape(name.strip())} saved")
        st.rerun()
    _consent_history(user, supplier)


def _consent_word(supplier: SupplierView) -> str:
    """The supplier's consent in one word for the table."""
    if supplier.consent == "opted_out":
        return _("opted out")
    return _("yes") if supplier.consent == "consenting" else _("none")


def _consent_detail(supplier: SupplierView) -> str:
    """How and when consent, or the opt-out, was recorded (plain text)."""
    if supplier.consent == "opted_out":
        return _("Opted out {when} by {how}{who}: no template is sent to this supplier. "
                 "Tick the box and save only if the supplier asked to receive messages "
                 "again.").format(
            when=local_time(supplier.opted_out_at) if supplier.opted_out_at else "?",
            how=source_label(supplier.opt_out_source),
            who=f" ({supplier.opt_out_by})" if supplier.opt_out_by else "",
        )  # fmt: skip
    return _("Consent recorded {when} by {how}{who}").format(
        when=local_time(supplier.opted_in_at) if supplier.opted_in_at else "?",
        how=source_label(supplier.consent_source),
        who=f" ({supplier.consent_by})" if supplier.consent_by else "",
    )


def _consent_history(user: UserInfo, supplier: SupplierView) -> None:
    """Every consent change of the supplier (the proof: who, when, how, their words),
    and a button recording an opt-out the supplier asked for elsewhere."""
    events = history(runtime.engine(), user.tenant_id, supplier.id)
    with st.expander(_("Consent history ({n})").format(n=len(events)), expanded=False):
        if events:
            st.dataframe(
                pd.DataFrame(
                    {
                        _("When"): [e.at for e in events],
                        _("Change"): [
                            _("consent given") if e.action == "granted" else _("opted out")
                            for e in events
                        ],
                        _("How"): [source_label(e.source) for e in events],
                        _("By"): [e.by or "" for e in events],
                        _("Their words / note"): [e.evidence or "" for e in events],
                    }
                ),
                hide_index=True,
            )
        else:
            st.caption(_("No consent recorded for this supplier."))
        if supplier.consent != "opted_out" and st.button(
            _("Record an opt-out"), key=f"supplier_opt_out_{supplier.id}",
            help=_("The supplier asked not to receive WhatsApp messages (by phone, e-mail…)"),
        ):  # fmt: skip
            try:
                set_opt_in(runtime.engine(), user, supplier.id, False)
            except (SupplierError, PermissionDenied) as exc:
                st.error(md_escape(exc))
                return
            st.rerun()


def _add_form(user: UserInfo) -> None:
    with st.form("supplier_add", clear_on_submit=True):
        c1, c2 = st.columns(2)
        name = c1.text_input("Name", max_chars=200, placeholder="Harinas Martín S.L.")
        phone = c2.text_input("WhatsApp number", placeholder="+34 612 34 56 78")
        c3, c4 = st.columns(2)
        language = c3.selectbox("Language", list(LANGUAGE_CODES))
        ref = c4.text_input("ERP reference (optional)", max_chars=64)
        consent = st.checkbox("Agreed to receive PO notices on WhatsApp", value=False)
        added = st.form_submit_button("Add supplier", type="primary")
    if added:
        try:
            data = SupplierInput(name, phone, language, ref or None, consent)
            view = add_supplier(runtime.engine(), user, data)
        except (SupplierError, PermissionDenied) as exc:
            st.error(md_escape(exc))
            return
        st.success(f"{md_escape(view.name)} ({md_escape(view.phone_display)}) added.")


def _import(user: UserInfo) -> None:
    st.markdown("Upload a CSV with one supplier per row: at least a **name** and a **phone** "
                "column; optionally language, ERP reference and consent. Numbers already in "
                "the directory are updated, not duplicated.")  # fmt: skip
    upload = st.file_uploader("CSV file", type=["csv", "txt"], key="suppliers_upload")
    if upload is None:
        return
    try:
        table, guessed = read_import(upload.getvalue())
    except CsvError as exc:
        st.error(f"This file cannot be read: {md_escape(exc)}")
        return
    separator = {";": "semicolons", "\t": "tabs"}.get(table.delimiter, "commas")
    st.caption(f"{len(table.rows):,} rows · {md_escape(table.encoding)} · separated by {separator}")
    options = ["(none)", *table.headers]
    cols = st.columns(len(IMPORT_FIELDS))
    mapping: dict[str, str | None] = {}
    for col, name in zip(cols, IMPORT_FIELDS, strict=True):
        label = _FIELD_LABELS[name] + (" *" if name in REQUIRED_FIELDS else "")
        guess = guessed.get(name)
        chosen = col.selectbox(label, options, index=_index(options, guess or "(none)"),
                               key=f"suppliers_map_{name}")  # fmt: skip
        mapping[name] = None if chosen == "(none)" else chosen
    plan = plan_import(runtime.engine(), user.tenant_id, table, mapping)
    _report(plan)
    if plan.problems or not plan.good:
        return
    confirmed = _namesakes(plan)
    if st.button(f"Import {len(plan.good):,} suppliers", type="primary", key="suppliers_apply",
                 disabled=not confirmed):  # fmt: skip
        try:
            result = apply_import(runtime.engine(), user, plan, allow_namesakes=confirmed)
        except (SupplierError, PermissionDenied) as exc:
            st.error(md_escape(exc))
            return
        st.success(f"Imported: {result.added} added, {result.updated} updated, "
                   f"{result.skipped} refused rows left out.")  # fmt: skip


def _namesakes(plan: ImportPlan) -> bool:
    """List rows that would add a supplier named like another one (cells as text) and
    return whether the admin confirmed they are different suppliers (True if none)."""
    if not plan.namesakes:
        return True
    st.warning(
        _(
            "**{n} row(s) would add a new supplier with the name of another one** (a "
            "different number). Check they are not the same supplier at a new number."
        ).format(n=len(plan.namesakes)),
        icon=":material/group:",
    )
    st.dataframe(
        pd.DataFrame(
            {
                _("Row"): [n.row_number for n in plan.namesakes],
                _("New supplier"): [n.name for n in plan.namesakes],
                _("Phone"): [n.phone_e164 for n in plan.namesakes],
                _("Already named so"): ["; ".join(n.others) for n in plan.namesakes],
            }
        ),
        hide_index=True,
        key="suppliers_namesakes",
    )
    return st.checkbox(
        _("Add them as new suppliers: they are different suppliers"),
        key="suppliers_namesakes_ok",
    )


def _report(plan: ImportPlan) -> None:
    for problem in plan.problems:  # may quote the file's own headers
        st.warning(md_escape(problem))
    if plan.problems:
        return
    new = sum(1 for r in plan.good if not r.updates_existing)
    known = len(plan.good) - new
    c1, c2, c3 = st.columns(3)
    c1.metric("New suppliers", f"{new:,}", border=True)
    c2.metric("Updates", f"{known:,}", border=True)
    c3.metric("Refused rows", f"{len(plan.bad):,}", border=True)
    if plan.bad:
        st.markdown("**Rows that will not be imported**")
        st.dataframe(
            pd.DataFrame(
                {
                    "Row": [r.row_number for r in plan.bad],
                    "Reasons": ["; ".join(r.problems) for r in plan.bad],
                }
            ),
            hide_index=True,
            column_config={"Reasons": st.column_config.TextColumn("Reasons", width="large")},
        )


def _index(options: list[str], value: str) -> int:
    return options.index(value) if value in options else 0
