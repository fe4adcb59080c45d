"""Send a PO notice: pick the supplier and template, check the preview, send once, follow it.

Widgets only: suppliers, templates, the draft (preview and problems), the send and the
live status all come from `core.compose`.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from core.auth import PermissionDenied, write_tenant
from core.compose import (
    ConsentInfo,
    Draft,
    NoticeForm,
    SupplierChoice,
    TemplateChoice,
    draft_notice,
    message_state,
    po_notice_templates,
    search_suppliers,
    send_notice,
    supplier_consent,
)
from core.i18n import N_, _, ngettext
from core.models.types import utcnow
from core.notify import DEFAULT_LANGUAGE, NoticeRejected
from core.users import UserInfo
from dashboard import runtime
from dashboard.number_select import sending_number
from dashboard.widgets import local_time, md_escape, status_timeline, whatsapp_bubble

NEW_SUPPLIER = 0  # the select box's "type a new supplier" option
CURRENCIES = ["EUR", "USD", "GBP", "MXN", "COP", "BRL", "CLP", "ARS", "PEN", "CHF"]
DECIMALS = {"auto": N_("Detect"), ".": N_("Dot (1234.50)"), ",": N_("Comma (1234,50)")}
_FORM_KEYS = ("send_name", "send_phone", "send_po", "send_amount", "send_document")
_CONSENT_KEY = "send_consent"  # the buyer's "the supplier agreed" checkbox


def render(user: UserInfo) -> None:
    """Draw the send page for `user` (buyers and admins)."""
    db = runtime.engine()
    st.title(_("Send a PO notice"))
    st.caption(
        _("Tell a supplier about an approved purchase order on WhatsApp. The preview is "
          "exactly what they will see; each PO is sent once per supplier and template.")
    )  # fmt: skip
    templates = po_notice_templates(db, write_tenant(user))
    if not templates:
        st.info(
            _("**No approved PO notice template yet.** An administrator syncs the templates "
              "approved in WhatsApp Manager on the *Templates* page; then they appear here."),
            icon=":material/description:",
        )
        return
    form_col, preview_col = st.columns([1.15, 1], gap="large")
    with form_col:
        form = _form(db, user, templates)
    draft = draft_notice(db, user, form)
    with preview_col:
        _preview(draft, form)
    with form_col:
        _send_button(db, user, draft)
    last = st.session_state.get("send_last")
    if isinstance(last, str):
        with preview_col:
            st.divider()
            state = message_state(db, write_tenant(user), last)
            if state is not None and state.final:  # nothing more will come: no polling
                _status_panel(db, write_tenant(user), last)
            else:
                _live_status(db, write_tenant(user), last)


def _apply_supplier(choices: dict[int, SupplierChoice]) -> None:
    """Fill the form from the picked supplier (on_change, before the rerun draws)."""
    picked = choices.get(st.session_state.get("send_supplier", NEW_SUPPLIER))
    if picked is None:
        return
    st.session_state["send_name"] = picked.name
    st.session_state["send_phone"] = picked.phone_e164
    st.session_state["send_language_wish"] = picked.language


def _form(db: Engine, user: UserInfo, templates: list[TemplateChoice]) -> NoticeForm:
    st.subheader(_("Supplier"))
    query = st.text_input(
        _("Find a supplier"), placeholder=_("Name or phone number"), key="send_query",
        max_chars=100,
    )  # fmt: skip
    matches = search_suppliers(db, write_tenant(user), query)
    choices = {match.id: match for match in matches}
    st.selectbox(
        _("Pick from your suppliers"),
        [NEW_SUPPLIER, *choices],
        format_func=lambda i: choices[i].label if i in choices else _("+ A new supplier"),
        key="send_supplier",
        on_change=_apply_supplier,
        args=(choices,),
        help=(
            _("{n} matches (showing the first 20)").format(n=len(matches))
            if len(matches) >= 20
            else ngettext("{n} match", "{n} matches", len(matches)).format(n=len(matches))
        ),
    )
    name_col, phone_col = st.columns(2)
    name = name_col.text_input(_("Supplier name"), key="send_name", max_chars=200)
    phone = phone_col.text_input(
        _("WhatsApp number"), key="send_phone", placeholder="+34 612 34 56 78", max_chars=40
    )
    consent_confirmed = _consent(supplier_consent(db, write_tenant(user), phone) if phone else None)

    st.subheader(_("Purchase order"))
    po_col, amount_col, currency_col = st.columns([1.3, 1, 0.7])
    po_number = po_col.text_input(_("PO number"), key="send_po", max_chars=64)
    amount = amount_col.text_input(
        _("Total amount"), key="send_amount", placeholder="1234.50", max_chars=40
    )
    currency = currency_col.selectbox(
        _("Currency"), CURRENCIES, key="send_currency", accept_new_options=True
    )
    decimal = st.radio(
        _("Decimal separator in the amount"),
        list(DECIMALS),
        format_func=lambda key: _(DECIMALS[key]),
        horizontal=True,
        key="send_decimal",
        help=_("Detect reads 1.234,50 and 1,234.50; an amount like 2.750 needs you to say"),
    )

    st.subheader(_("Template"))
    # Templates without a PDF header first: they need nothing beyond the PO's fields.
    ordered = sorted(templates, key=lambda t: (t.needs_document, t.name, t.language))
    names = list(dict.fromkeys(t.name for t in ordered))
    tpl_col, lang_col = st.columns([1.3, 1])
    name_choice = tpl_col.selectbox(_("Approved template"), names, key="send_template")
    languages = [t.language for t in templates if t.name == name_choice]
    wish = st.session_state.pop("send_language_wish", None)
    if wish in languages:
        st.session_state["send_language"] = wish
    elif st.session_state.get("send_language") not in languages:
        st.session_state.pop("send_language", None)
        if DEFAULT_LANGUAGE in languages:
            st.session_state["send_language"] = DEFAULT_LANGUAGE
    language = lang_col.selectbox(_("Language"), languages, key="send_language")
    chosen = next(t for t in templates if t.name == name_choice and t.language == language)
    sender = sending_number(write_tenant(user), "send_from")
    document = ""
    if chosen.needs_document:
        document = st.text_input(
            _("Link to the PO's PDF (https)"),
            key="send_document",
            placeholder="https://…/po.pdf",
        )
    return NoticeForm(
        supplier_name=name,
        phone=phone,
        po_number=po_number,
        amount=amount,
        currency=str(currency or ""),
        template_name=chosen.name,
        language=chosen.language,
        document_url=document,
        decimal="." if decimal == "." else "," if decimal == "," else "auto",
        consent_confirmed=consent_confirmed,
        phone_number_id=sender,
    )


def _consent(info: ConsentInfo | None) -> bool:
    """Show the number's WhatsApp consent; True when the buyer confirms it for this send.

    An opted-out supplier is shown as not sendable with the reason (no checkbox: only an
    admin records new consent); one without recorded consent gets the checkbox.
    """
    if info is None:
        return False
    if info.state == "opted_out":
        st.error(md_escape(info.refusal or _("Opted out")), icon=":material/block:")
        if info.detail:
            st.caption(md_escape(info.detail))
        return False
    if info.state == "consenting":
        if info.detail:
            st.caption(md_escape(info.detail))
        return False
    confirmed = st.checkbox(
        _("The supplier agreed to receive WhatsApp messages from us"),
        key=_CONSENT_KEY,
        help=_(
            "WhatsApp requires the supplier's opt-in. Ticking this records consent with "
            "your name and the time."
        ),
    )
    if not confirmed and info.refusal:
        st.caption(md_escape(info.refusal))
    return bool(confirmed)


def _touched() -> bool:
    return any(str(st.session_state.get(key) or "").strip() for key in _FORM_KEYS)


def _preview(draft: Draft, form: NoticeForm) -> None:
    st.subheader(_("What the supplier will see"))
    if draft.preview is not None:
        whatsapp_bubble(draft.preview, time_label=local_time(utcnow(), "%H:%M", labelled=False))
        name, language = md_escape(form.template_name), md_escape(form.language)
        st.caption(_("Template **{name}** in **{language}**").format(name=name, language=language))
    else:
        st.info(_("Enter the PO details to see the message."), icon=":material/chat:")
    if not _touched():
        st.caption(_("Fill in the supplier and the PO: problems are listed here before you "
                     "send."))  # fmt: skip
    elif draft.problems:
        st.warning(
            "**" + _("Fix before sending:") + "**\n"
            + "\n".join(f"- {md_escape(problem)}" for problem in draft.problems),
            icon=":material/error:",
        )
    elif _sent(draft):
        st.info(
            _("Sent to {recipient}: its status is below. Change the PO or the supplier to send "
              "another notice.").format(recipient=md_escape(draft.recipient)),
            icon=":material/done_all:",
        )
    else:
        st.success(_("Ready to send to {recipient}").format(recipient=md_escape(draft.recipient)),
                   icon=":material/check_circle:")  # fmt: skip


def _sent(draft: Draft) -> bool:
    """True once this very notice (same idempotency key) was sent from this session."""
    note = st.session_state.get("send_note")
    return (
        isinstance(note, tuple)
        and note[0] in ("ok", "again")
        and draft.idempotency_key is not None
        and note[2] == draft.idempotency_key
    )


def _send_button(db: Engine, user: UserInfo, draft: Draft) -> None:
    # A callback: it runs before the next script run, so the preview above already knows
    # the notice went out (and sends exactly the draft that was on screen when clicked).
    st.button(
        _("Send to supplier"),
        type="primary",
        icon=":material/send:",
        disabled=not draft.ok,
        key="send_go",
        width="stretch",
        on_click=_send,
        args=(db, user, draft),
    )
    note = st.session_state.get("send_note")
    if isinstance(note, tuple) and note[2] in (None, draft.idempotency_key):
        kind, text, _key = note  # quotes the PO number and the supplier: text, never Markdown
        (st.success if kind == "ok" else st.info if kind == "again" else st.error)(md_escape(text))


def _send(db: Engine, user: UserInfo, draft: Draft) -> None:
    try:
        outcome = send_notice(db, user, draft)
    except (PermissionDenied, NoticeRejected) as exc:
        st.session_state["send_note"] = ("error", _(str(exc)), None)
        return
    st.session_state["send_last"] = outcome.message_id
    po = draft.notice.po_number.strip() if draft.notice else ""
    if outcome.created:
        st.session_state["send_note"] = (
            "ok",
            _("PO {po} queued for {recipient}.").format(po=po, recipient=draft.recipient),
            draft.idempotency_key,
        )
    else:
        st.session_state["send_note"] = (
            "again",
            _("PO {po} was already sent to {recipient} with this template: nothing was sent "
              "twice. Its status is below.").format(po=po, recipient=draft.recipient),
            draft.idempotency_key,
        )


def _status_panel(db: Engine, tenant: str, message_id: str) -> None:
    """The last sent message's status and the time of each stage."""
    state = message_state(db, tenant, message_id)
    if state is None:
        return
    head, action = st.columns([3, 1], vertical_alignment="bottom")
    head.subheader(_("PO {po} to {recipient}").format(
        po=md_escape(state.po_number or ""), recipient=md_escape(state.recipient)),
        anchor=False)  # fmt: skip
    if action.button(_("New notice"), key="send_new", width="stretch"):
        for key in (*_FORM_KEYS, "send_last", "send_note", "send_query", "send_supplier",
                    _CONSENT_KEY):
            st.session_state.pop(key, None)
        st.rerun(scope="app")
    status_timeline(state)


#: The status panel, redrawn every second while webhooks may still change the status.
_live_status = st.fragment(run_every="1s")(_status_panel)
