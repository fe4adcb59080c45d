"""Messages: find a message by phone, PO number, status or date; see its timeline; resend.

Results are paged in SQL (`core.message_log`), never shipped whole to the browser. A
resend is deliberate: pick the message, confirm, and the role is checked again inside
the action.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from core.attention import open_items, resend_all_for
from core.auth import Action, PermissionDenied, can, require, scope_tenants, visible_tenants
from core.formatting import format_moment
from core.i18n import _, ngettext
from core.message_log import (
    RESEND_FUTILE,
    MessageDetail,
    MessagePage,
    MessageSearch,
    SearchError,
    UnlinkedReply,
    message_detail,
    resend_message,
    search_messages,
    unlinked_replies,
)
from core.models.messages import MessageStatus
from core.outbox import OutboxError
from core.users import UserInfo
from dashboard import runtime
from dashboard.widgets import (
    local_time,
    md_escape,
    paged,
    pager,
    status_name,
    viewer_today,
    viewer_zone,
)

PAGE_SIZE = 50
def _status_label(status: str) -> str:
    """A message status as the list names it ("Needs attention"), in the reader's language."""
    name = status_name(status)
    return name[:1].upper() + name[1:]
_ICONS = {
    "queued": ":material/schedule:",
    "accepted": ":material/cloud_done:",
    "sent": ":material/done:",
    "delivered": ":material/done_all:",
    "read": ":material/visibility:",
    "failed": ":material/error:",
    "reply": ":material/chat:",
    "acknowledgement": ":material/task_alt:",
    "attention": ":material/warning:",
}
_SELECTED = "messages_selected"
_CONFIRM = "messages_confirm_resend"


def render(user: UserInfo) -> None:
    """Draw the messages page for `user` (managers and admins)."""
    try:
        require(user, Action.VIEW_MESSAGES)
    except PermissionDenied as exc:
        st.error(md_escape(_(str(exc))))
        return
    st.title(_("Messages"))
    st.caption(_("Every notice sent to suppliers, what happened to it, and what they answered"))
    engine = runtime.engine()
    _attention(user, engine)
    search = _search_form(user)
    if search is None:
        return
    _unlinked(unlinked_replies(engine, search.tenant_ids), search.tz)
    try:
        page = search_messages(engine, search)
    except SearchError as exc:
        st.warning(md_escape(exc))
        return
    if page.total == 0:
        _empty_state(search)
        return
    chosen = _results(page, search.tz)
    linked = st.query_params.get("message")
    if isinstance(linked, str) and linked and linked != st.session_state.get(_SELECTED):
        chosen = chosen or linked[:36]  # a link to one message (Resent as …, shared)
    if chosen is not None:
        st.session_state[_SELECTED] = chosen
    selected = st.session_state.get(_SELECTED)
    if isinstance(selected, str):
        detail = message_detail(engine, search.tenant_ids, selected)
        if detail is not None:
            _detail(user, detail, search.tz)


def _search_form(user: UserInfo) -> MessageSearch | None:
    today = viewer_today()
    visible = visible_tenants(user)
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([2, 2, 3, 3])
        phone = c1.text_input(
            _("Phone"), placeholder=_("e.g. {example}").format(example="612 345 678"),
            key="messages_phone",
        )  # fmt: skip
        po = c2.text_input(
            _("PO number"), placeholder=_("e.g. {example}").format(example="PO-2026-0042"),
            key="messages_po",
        )  # fmt: skip
        statuses = c3.multiselect(
            _("Status"),
            [s.value for s in MessageStatus],
            format_func=_status_label,
            placeholder=_("Any status"),
            key="messages_status",
        )
        dates = c4.date_input(
            _("Created"),
            value=(today - timedelta(days=29), today),
            max_value=today + timedelta(days=1),
            format="DD/MM/YYYY",
            key="messages_dates",
        )
        requested: list[str] = []
        if len(visible) > 1:
            requested = st.multiselect(
                _("Tenants"), visible, placeholder=_("All my tenants"), key="messages_tenants"
            )
    if not isinstance(dates, tuple) or len(dates) != 2:
        st.info(_("Pick the last day of the range too."))
        return None
    signature = (phone, po, tuple(statuses), dates, tuple(requested))
    if st.session_state.get("messages_signature") != signature:
        st.session_state["messages_signature"] = signature
        st.session_state["messages_page"] = 1  # new filters start on the first page
    try:
        tenants = scope_tenants(user, requested)
        page = int(st.session_state.get("messages_page", 1))
        return MessageSearch(
            tenant_ids=tenants,
            phone=phone,
            po_number=po,
            statuses=tuple(statuses),
            start=dates[0],
            end=dates[1],
            tz=viewer_zone(),
            page=max(1, page),
            page_size=PAGE_SIZE,
        )
    except (SearchError, PermissionDenied) as exc:
        st.warning(md_escape(_(str(exc))))
        return None


def _empty_state(search: MessageSearch) -> None:
    filtered = search.phone or search.po_number or search.statuses
    with st.container(border=True):
        st.markdown("### " + _("No messages found"))
        if filtered:
            st.markdown(_("Nothing matches these filters: clear the phone, PO or status fields, "
                          "or widen the dates."))  # fmt: skip
        else:
            st.markdown(
                _("No notice was sent in this period. Buyers send them from **{send}** or "
                  "**{bulk}**, and ERP events arrive on their own.").format(
                    send=_("Send PO notice"), bulk=_("Bulk send (CSV)"))
            )  # fmt: skip


def _unlinked(replies: list[UnlinkedReply], tz: str) -> None:
    """Supplier messages tied to no notice (no context, no PO found), newest first."""
    if not replies:
        return
    with st.expander(
        _("Replies not linked to a notice ({n})").format(n=len(replies)),
        icon=":material/link_off:",
    ):
        st.caption(_("Suppliers wrote these without quoting a notice or naming a PO we sent "
                     "them."))  # fmt: skip
        shown = paged(replies, "messages_unlinked")
        frame = pd.DataFrame(  # cells are shown as text: the supplier's words, never Markdown
            {
                "Received": [local_time(r.at, labelled=False) for r in shown.rows],
                "Supplier": [r.supplier or _("unknown") for r in shown.rows],
                "From": [f"+{r.from_wa_id}" for r in shown.rows],
                "Type": [r.message_type for r in shown.rows],
                "Text": [r.text or r.payload or "" for r in shown.rows],
            }
        )
        st.dataframe(
            frame,
            hide_index=True,
            height="content",
            key="messages_unlinked",
            column_config={
                "Received": st.column_config.TextColumn(_("Received"), width=140),
                "Supplier": st.column_config.TextColumn(_("Supplier"), width=170),
                "From": st.column_config.TextColumn(_("From"), width=130),
                "Type": st.column_config.TextColumn(_("Type"), width=80),
                "Text": st.column_config.TextColumn(_("Text"), width=380),
            },
        )
        pager(shown, "messages_unlinked")


def _results(page: MessagePage, tz: str) -> str | None:
    """The result table with paging; returns the id of the row picked in it, if any."""
    # Every column fits 1,400 px (the template is in the detail); the cells are text
    # (a supplier's name or Meta's words are never read as Markdown or links).
    frame = pd.DataFrame(
        {
            "created": [local_time(r.created_at, labelled=False) for r in page.rows],
            "supplier": [r.supplier or "—" for r in page.rows],
            "phone": [r.recipient_phone for r in page.rows],
            "po": [r.po_number or "" for r in page.rows],
            "status": [_status_label(r.status) for r in page.rows],
            "answered": [r.replied_at is not None for r in page.rows],
            "problem": [r.error or "" for r in page.rows],
        }
    )
    demo = _(" · includes demo data") if any(r.is_demo for r in page.rows) else ""
    st.caption(_("Newest first{demo}. Click a row to see its timeline.").format(demo=demo))
    event = st.dataframe(
        frame,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        height="content",
        key=f"messages_table_{page.page}",
        column_config={
            "created": st.column_config.TextColumn(_("Created"), width=130),
            "supplier": st.column_config.TextColumn(_("Supplier"), width=170),
            "phone": st.column_config.TextColumn(_("Phone"), width=125),
            "po": st.column_config.TextColumn(_("PO"), width=110),
            "status": st.column_config.TextColumn(_("Status"), width=100),
            "answered": st.column_config.CheckboxColumn(_("Answered"), width=95),  # Respondidos
            "problem": st.column_config.TextColumn(_("Problem"), width=170),
        },
    )
    pager(page, "messages")
    rows = getattr(getattr(event, "selection", None), "rows", None) or []
    if rows and 0 <= rows[0] < len(page.rows):
        return page.rows[rows[0]].id
    return None


def _detail(user: UserInfo, detail: MessageDetail, tz: str) -> None:
    row = detail.row
    st.divider()
    head, actions = st.columns([3, 1])
    with head:
        title = row.po_number or row.template_name or _("Message")
        st.subheader(f"{md_escape(title)} → {md_escape(row.supplier or row.recipient_phone)}",
                     anchor=False)  # fmt: skip
        template = row.template_name or _("free text")
        st.caption(
            md_escape(
                f"{_status_label(row.status)} · "
                f"{template} ({detail.template_language or '—'}) · "
                f"{row.recipient_phone} · {_attempts(detail)}"
            )
            + (" · **" + _("demo data") + "**" if row.is_demo else "")
        )
        if row.error:
            st.error(md_escape(row.error), icon=":material/error:")
    with actions:
        _resend(user, detail)
    timeline, body = st.columns([3, 2], gap="large")
    with timeline:
        st.markdown("**" + _("Timeline") + "**")
        for event in detail.events:
            when = format_moment(pd.Timestamp(event.at).to_pydatetime(), tz, "seconds")
            icon = _ICONS.get(event.kind, ":material/radio_button_checked:")
            st.markdown(f"{icon} **{md_escape(event.title)}** · {when}")
            if event.detail:  # a supplier's reply, Meta's error details: text, never Markdown
                st.text(event.detail)
    with body:
        st.markdown(f"**{_body_heading(detail)}**")
        st.text(detail.body_text or _("(no text stored)"))
        if detail.resend_of:
            _message_link(_("A resend of message {id}"), detail.resend_of)
        for copy in detail.resent_as:
            _message_link(_("Resent as message {id}"), copy)


def _attempts(detail: MessageDetail) -> str:
    """How many times it was handed to WhatsApp, in words ("never sent" for none)."""
    if detail.attempts == 0:
        return _("not sent yet")
    return ngettext("{n} attempt", "{n} attempts", detail.attempts).format(n=detail.attempts)


def _body_heading(detail: MessageDetail) -> str:
    """What the text below is: what the supplier received only once it reached them."""
    row = detail.row
    if row.delivered_at is not None or row.read_at is not None:
        return _("What the supplier received")
    if row.status == MessageStatus.FAILED:
        return _("The message (not delivered)")
    if detail.reached_meta:
        return _("The message (sent, not yet delivered)")
    return _("The message (not sent)")


def _message_link(text: str, message_id: str) -> None:
    """A link to another message of this list: opens it here, and the address names it
    (`?message=ID`) so it can be shared or reopened."""
    if st.button(text.format(id=f"{message_id[:8]}…"), key=f"messages_open_{message_id}",
                 type="tertiary", icon=":material/link:"):  # fmt: skip
        st.session_state[_SELECTED] = message_id
        st.query_params["message"] = message_id
        st.rerun()


_CONFIRM_ALL = "messages_confirm_resend_all"


def _attention(user: UserInfo, engine: Engine) -> None:
    """Messages whose send may or may not have reached WhatsApp (a crash hid the answer):
    listed for a person, who checks WhatsApp and resends each one (pick it below) or all
    of them at once, confirmed."""
    items = open_items(engine, scope_tenants(user))
    if not items:
        return
    with st.container(border=True):
        st.warning(
            ngettext(
                "{n} message needs attention: the sender stopped while it was being sent, "
                "so it may or may not have reached WhatsApp. Check WhatsApp, then resend it "
                "(pick it in the table).",
                "{n} messages need attention: the sender stopped while they were being "
                "sent, so they may or may not have reached WhatsApp. Check WhatsApp, then "
                "resend each one (pick it in the table) or all of them.",
                len(items),
            ).format(n=len(items)),
            icon=":material/warning:",
        )
        frame = pd.DataFrame(  # outside text (reasons, numbers) shown as cells, never Markdown
            {
                _("Since"): [local_time(i.since, labelled=False) for i in items],
                _("Phone"): [i.recipient_phone for i in items],
                _("PO"): [i.po_number or "" for i in items],
                # a stored reason of ours reads in the reader's language (Meta's as sent)
                _("Reason"): [_(i.reason) for i in items],
            }
        )
        st.dataframe(frame, hide_index=True, key="messages_attention")
        own = [i for i in items if i.tenant_id == user.tenant_id]
        if not own or not can(user, Action.RESEND):
            return
        if not st.session_state.get(_CONFIRM_ALL):
            label = _("Resend all {n} needing attention…").format(n=len(own))
            if st.button(label, key="resend_all_attention", icon=":material/replay:"):
                st.session_state[_CONFIRM_ALL] = True
                st.rerun()
            return
        st.warning(
            _(
                "Send these {n} messages again? A supplier who did get one gets it twice."
            ).format(n=len(own))
        )
        yes, no = st.columns(2)
        if yes.button(_("Yes, resend all"), type="primary", key="resend_all_yes"):
            st.session_state.pop(_CONFIRM_ALL, None)
            try:
                report = resend_all_for(engine, user)
            except PermissionDenied as exc:
                st.error(md_escape(_(str(exc))))
                return
            for _original, reason in report.refused:
                st.error(md_escape(reason))
            st.toast(
                ngettext(
                    "Queued again: {n} message.", "Queued again: {n} messages.", len(report.resent)
                ).format(n=len(report.resent)),
                icon=":material/replay:",
            )
            if not report.refused:
                st.rerun()
        if no.button(_("Cancel"), key="resend_all_no"):
            st.session_state.pop(_CONFIRM_ALL, None)
            st.rerun()


def _resend(user: UserInfo, detail: MessageDetail) -> None:
    row = detail.row
    if not row.resendable or not can(user, Action.RESEND):
        return
    if detail.resend_futile:
        st.caption(md_escape(_(RESEND_FUTILE).format(reason=row.error or "")),
                   help=_("Not offered for a resend"))  # fmt: skip
        return
    if row.tenant_id != user.tenant_id:
        st.caption(_("Resend from an account of that tenant."))
        return
    if st.session_state.get(_CONFIRM) != row.id:
        if st.button(_("Resend…"), key=f"resend_{row.id}", icon=":material/replay:"):
            st.session_state[_CONFIRM] = row.id
            st.rerun()
        return
    st.warning(_("Send this message again to the supplier? A new message is queued."))
    yes, no = st.columns(2)
    if yes.button(_("Yes, resend"), type="primary", key=f"resend_yes_{row.id}"):
        st.session_state.pop(_CONFIRM, None)
        try:
            new_id = resend_message(runtime.engine(), user, row.id)
        except (PermissionDenied, OutboxError) as exc:
            st.error(md_escape(_(str(exc))))
            return
        st.session_state[_SELECTED] = new_id
        st.toast(_("Queued again: the sender picks it up in a moment."), icon=":material/replay:")
        st.rerun()
    if no.button(_("Cancel"), key=f"resend_no_{row.id}"):
        st.session_state.pop(_CONFIRM, None)
        st.rerun()
