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
from core.formatting import format_number
from core.i18n import N_, _, ngettext
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
from dashboard.widgets import ago, local_time, md_escape, page_number, pager

PAGE_SIZE = 25
_FIELD_LABELS = {
    "supplier_name": N_("Name"),
    "phone": N_("Phone"),
    "language": N_("Language"),
    "supplier_ref": N_("ERP reference"),
    "opted_in": N_("Consent (yes/no)"),
}
_NONE = "(none)"  # the column picker's "no column" option, shown translated
_SELECTED = "suppliers_selected"


def render(user: UserInfo) -> None:
    """Draw the suppliers page for `user` (admins)."""
    if not can(user, Action.MANAGE_SUPPLIERS):
        st.error(_("The {role} role may not {action}").format(
            role=_(user.role.value), action=_("manage suppliers")))  # fmt: skip
        return
    st.title(_("Suppliers"))
    st.caption(_("Who receives PO notices on WhatsApp, in which language, and whether they "
                 "agreed to it."))  # fmt: skip
    directory, add, upload = st.tabs(
        [_("Directory"), _("Add a supplier"), _("Import from CSV")]
    )
    with directory:
        _directory(user)
    with add:
        _add_form(user)
    with upload:
        _import(user)


def _directory(user: UserInfo) -> None:
    engine = runtime.engine()
    left, right = st.columns([3, 1])
    query = left.text_input(_("Search"), placeholder=_("Name, phone or ERP reference"),
                            key="suppliers_query")  # fmt: skip
    inactive = right.toggle(_("Show inactive"), key="suppliers_inactive")
    page_no = page_number("suppliers")
    page = list_suppliers(engine, user.tenant_id, query=query, include_inactive=inactive,
                          page=page_no, page_size=PAGE_SIZE)  # fmt: skip
    if page.total == 0:
        with st.container(border=True):
            if query:
                st.markdown(_("No supplier matches this search."))
            else:
                st.markdown("### " + _("No suppliers yet"))
                st.markdown(_("Add them one by one in **{add}**, import a CSV exported from the "
                              "ERP, or let the first PO notices add them.").format(
                    add=_("Add a supplier")))  # fmt: skip
        return
    frame = pd.DataFrame(
        {
            "Name": [s.name for s in page.rows],
            "Phone": [s.phone_display for s in page.rows],
            "Language": [s.language for s in page.rows],
            "ERP reference": [s.external_ref or "" for s in page.rows],
            "Consent": [_consent_word(s) for s in page.rows],
            "Active": [s.is_active for s in page.rows],
            "Last message from them": [ago(s.last_inbound_at) for s in page.rows],
        }
    )
    demo = _(" · includes demo suppliers (DEMO-…)") if any(s.is_demo for s in page.rows) else ""
    st.caption(ngettext("{n} supplier{demo}. Click a row to edit it.",
                        "{n} suppliers{demo}. Click a row to edit it.", page.total).format(
        n=format_number(page.total), demo=demo))  # fmt: skip
    event = st.dataframe(
        frame, hide_index=True, on_select="rerun", selection_mode="single-row",
        height="content", key=f"suppliers_table_{page.page}",
        column_config={  # every column fits 1,400 px
            "Name": st.column_config.TextColumn(_("Name"), width=200),
            "Phone": st.column_config.TextColumn(_("Phone"), width=140),
            "Language": st.column_config.TextColumn(_("Language"), width=80),
            "ERP reference": st.column_config.TextColumn(_("ERP reference"), width=130),
            "Consent": st.column_config.TextColumn(_("Consent"), width=110),  # "Consentimiento"
            "Active": st.column_config.CheckboxColumn(_("Active"), width=70),
            "Last message from them": st.column_config.TextColumn(
                _("Last message from them"), width=170
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
    st.subheader(_("Edit {supplier}").format(supplier=md_escape(label)), anchor=False)
    with st.form(f"supplier_edit_{supplier.id}"):
        c1, c2 = st.columns(2)
        name = c1.text_input(_("Name"), value=supplier.name, max_chars=200)
        phone = c2.text_input(_("WhatsApp number"), value=supplier.phone_display)
        c3, c4 = st.columns(2)
        languages = list(LANGUAGE_CODES)
        language = c3.selectbox(_("Language"), languages,
                                index=_index(languages, supplier.language))  # fmt: skip
        ref = c4.text_input(_("ERP reference"), value=supplier.external_ref or "", max_chars=64)
        if supplier.consent == "opted_out":
            st.error(md_escape(_consent_detail(supplier)), icon=":material/block:")
        consent = st.checkbox(
            _("Agreed to receive PO notices on WhatsApp"), value=supplier.opted_in
        )
        active = st.checkbox(_("Active (offered when sending)"), value=supplier.is_active)
        if supplier.consent == "consenting":
            st.caption(md_escape(_consent_detail(supplier)))
        saved = st.form_submit_button(_("Save changes"), type="primary")
    if saved:
        try:
            update_supplier(
                runtime.engine(), user, supplier.id,
                SupplierInput(name, phone, language, ref or None, consent), active=active,
            )  # fmt: skip
        except (SupplierError, PermissionDenied) as exc:
            st.error(md_escape(_(str(exc))))
            return
        st.toast(_("{name} saved").format(name=md_escape(name.strip())))
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
        name = c1.text_input(
            _("Name"), max_chars=200, placeholder=_("e.g. {example}").format(
                example="Harinas Martín S.L.")
        )  # fmt: skip
        phone = c2.text_input(_("WhatsApp number"), placeholder="+34 612 34 56 78")
        c3, c4 = st.columns(2)
        language = c3.selectbox(_("Language"), list(LANGUAGE_CODES))
        ref = c4.text_input(_("ERP reference (optional)"), max_chars=64)
        consent = st.checkbox(_("Agreed to receive PO notices on WhatsApp"), value=False)
        added = st.form_submit_button(_("Add supplier"), type="primary")
    if added:
        try:
            data = SupplierInput(name, phone, language, ref or None, consent)
            view = add_supplier(runtime.engine(), user, data)
        except (SupplierError, PermissionDenied) as exc:
            st.error(md_escape(_(str(exc))))
            return
        st.success(_("{name} ({phone}) added.").format(
            name=md_escape(view.name), phone=md_escape(view.phone_display)))  # fmt: skip


def _import(user: UserInfo) -> None:
    st.markdown(_("Upload a CSV with one supplier per row: at least a **name** and a **phone** "
                  "column; optionally language, ERP reference and consent. Numbers already "
                  "in the directory are updated, not duplicated."))  # fmt: skip
    upload = st.file_uploader(_("CSV file"), type=["csv", "txt"], key="suppliers_upload")
    if upload is None:
        return
    try:
        table, guessed = read_import(upload.getvalue())
    except CsvError as exc:
        st.error(_("This file cannot be read: {error}").format(error=md_escape(_(str(exc)))))
        return
    separator = {";": _("semicolons"), "\t": _("tabs")}.get(table.delimiter, _("commas"))
    st.caption(_("{n} rows · {encoding} · separated by {separator}").format(
        n=format_number(len(table.rows)), encoding=md_escape(table.encoding),
        separator=separator))  # fmt: skip
    options = [_NONE, *table.headers]
    cols = st.columns(len(IMPORT_FIELDS))
    mapping: dict[str, str | None] = {}
    for col, name in zip(cols, IMPORT_FIELDS, strict=True):
        label = _(_FIELD_LABELS[name]) + (" *" if name in REQUIRED_FIELDS else "")
        guess = guessed.get(name)
        chosen = col.selectbox(label, options, index=_index(options, guess or _NONE),
                               format_func=lambda o: _("(none)") if o == _NONE else o,
                               key=f"suppliers_map_{name}")  # fmt: skip
        mapping[name] = None if chosen == _NONE else chosen
    plan = plan_import(runtime.engine(), user.tenant_id, table, mapping)
    _report(plan)
    if plan.problems or not plan.good:
        return
    confirmed = _namesakes(plan)
    label = ngettext("Import {n} supplier", "Import {n} suppliers", len(plan.good)).format(
        n=format_number(len(plan.good)))  # fmt: skip
    if st.button(label, type="primary", key="suppliers_apply", disabled=not confirmed):
        try:
            result = apply_import(runtime.engine(), user, plan, allow_namesakes=confirmed)
        except (SupplierError, PermissionDenied) as exc:
            st.error(md_escape(_(str(exc))))
            return
        st.success(_("Imported: {added} added, {updated} updated, {skipped} refused rows left "
                     "out.").format(added=result.added, updated=result.updated,
                                    skipped=result.skipped))  # fmt: skip


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
    c1.metric(_("New suppliers"), format_number(new), border=True)
    c2.metric(_("Updates"), format_number(known), border=True)
    c3.metric(_("Refused rows"), format_number(len(plan.bad)), border=True)
    if plan.bad:
        st.markdown("**" + _("Rows that will not be imported") + "**")
        st.dataframe(
            pd.DataFrame(
                {
                    "Row": [r.row_number for r in plan.bad],
                    "Reasons": ["; ".join(r.problems) for r in plan.bad],
                }
            ),
            hide_index=True,
            column_config={
                "Row": st.column_config.NumberColumn(_("Row")),
                "Reasons": st.column_config.TextColumn(_("Reasons"), width="large"),
            },
        )


def _index(options: list[str], value: str) -> int:
    return options.index(value) if value in options else 0
