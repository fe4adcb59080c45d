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
from core.i18n import _
from core.message_log import (
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
from dashboard.widgets import md_escape, viewer_today, viewer_zone

PAGE_SIZE = 50
_STATUS_LABELS = {
    MessageStatus.PENDING: "Pending",
    MessageStatus.SENDING: "Sending",
    MessageStatus.ACCEPTED: "Accepted",
    MessageStatus.SENT: "Sent",
    MessageStatus.DELIVERED: "Delivered",
    MessageStatus.READ: "Read",
    MessageStatus.FAILED: "Failed",
    MessageStatus.NEEDS_ATTENTION: "Needs attention",
    MessageStatus.CANCELLED: "Cancelled",
}
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
        st.error(str(exc))
        return
    st.title("Messages")
    st.caption("Every notice sent to suppliers, what happened to it, and what they answered")
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
        phone = c1.text_input("Phone", placeholder="e.g. 612 345 678", key="messages_phone")
        po = c2.text_input("PO number", placeholder="e.g. PO-2026-0042", key="messages_po")
        statuses = c3.multiselect(
            "Status",
            [s.value for s in MessageStatus],
            format_func=lambda s: _STATUS_LABELS.get(MessageStatus(s), s),
            placeholder="Any status",
            key="messages_status",
        )
        dates = c4.date_input(
            "Created",
            value=(today - timedelta(days=29), today),
            max_value=today + timedelta(days=1),
            format="DD/MM/YYYY",
            key="messages_dates",
        )
        requested: list[str] = []
        if len(visible) > 1:
            requested = st.multiselect(
                "Tenants", visible, placeholder="All my tenants", key="messages_tenants"
            )
    if not isinstance(dates, tuple) or len(dates) != 2:
        st.info("Pick the last day of the range too.")
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
        st.warning(md_escape(exc))
        return None


def _empty_state(search: MessageSearch) -> None:
    filtered = search.phone or search.po_number or search.statuses
    with st.container(border=True):
        st.markdown("### No messages found")
        if filtered:
            st.markdown("Nothing matches these filters: clear the phone, PO or status fields, "
                        "or widen the dates.")  # fmt: skip
        else:
            st.markdown(
                "No notice was sent in this period. Buyers send them from **Send PO notice** "
                "or **Bulk send (CSV)**, and ERP events arrive on their own."
            )


def _unlinked(replies: list[UnlinkedReply], tz: str) -> None:
    """Supplier messages tied to no notice (no context, no PO found), newest first."""
    if not replies:
        return
    with st.expander(
        f"Replies not linked to a notice ({len(replies)})", icon=":material/link_off:"
    ):
        st.caption("Suppliers wrote these without quoting a notice or naming a PO we sent them.")
        frame = pd.DataFrame(  # cells are shown as text: the supplier's words, never Markdown
            {
                "Received": [pd.Timestamp(r.at).tz_convert(tz) for r in replies],
                "Supplier": [r.supplier or "unknown" for r in replies],
                "From": [f"+{r.from_wa_id}" for r in replies],
                "Type": [r.message_type for r in replies],
                "Text": [r.text or r.payload or "" for r in replies],
            }
        )
        st.dataframe(
            frame,
            hide_index=True,
            key="messages_unlinked",
            column_config={
                "Received": st.column_config.DatetimeColumn("Received", format="DD/MM/YYYY HH:mm"),
                "Text": st.column_config.TextColumn("Text", width="large"),
            },
        )


def _results(page: MessagePage, tz: str) -> str | None:
    """The result table with paging; returns the id of the row picked in it, if any."""
    frame = pd.DataFrame(
        {
            "Created": [pd.Timestamp(r.created_at).tz_convert(tz) for r in page.rows],
            "Supplier": [r.supplier or "—" for r in page.rows],
            "Phone": [r.recipient_phone for r in page.rows],
            "PO": [r.po_number or "" for r in page.rows],
            "Template": [r.template_name or "" for r in page.rows],
            "Status": [_STATUS_LABELS.get(MessageStatus(r.status), r.status) for r in page.rows],
            "Answered": [r.replied_at is not None for r in page.rows],
            "Problem": [r.error or "" for r in page.rows],
        }
    )
    first = (page.page - 1) * page.page_size + 1
    last = first + len(page.rows) - 1
    demo = " · includes demo data" if any(r.is_demo for r in page.rows) else ""
    st.caption(f"{first:,}–{last:,} of {page.total:,} messages, newest first{demo}. "
               "Click a row to see its timeline.")  # fmt: skip
    event = st.dataframe(
        frame,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=f"messages_table_{page.page}",
        column_config={
            "Created": st.column_config.DatetimeColumn("Created", format="DD/MM/YYYY HH:mm"),
            "Answered": st.column_config.CheckboxColumn("Answered"),
            "Problem": st.column_config.TextColumn("Problem", width="large"),
        },
    )
    if page.pages > 1:
        prev_col, info_col, next_col = st.columns([1, 2, 1])
        if prev_col.button("← Newer", disabled=page.page <= 1, key="messages_prev"):
            st.session_state["messages_page"] = page.page - 1
            st.rerun()
        info_col.caption(f"Page {page.page} of {page.pages}")
        if next_col.button("Older →", disabled=page.page >= page.pages, key="messages_next"):
            st.session_state["messages_page"] = page.page + 1
            st.rerun()
    rows = getattr(getattr(event, "selection", None), "rows", None) or []
    if rows and 0 <= rows[0] < len(page.rows):
        return page.rows[rows[0]].id
    return None


def _detail(user: UserInfo, detail: MessageDetail, tz: str) -> None:
    row = detail.row
    st.divider()
    head, actions = st.columns([3, 1])
    with head:
        title = row.po_number or row.template_name or "Message"
        st.subheader(f"{md_escape(title)} → {md_escape(row.supplier or row.recipient_phone)}",
                     anchor=False)  # fmt: skip
        st.caption(
            md_escape(
                f"{_STATUS_LABELS.get(MessageStatus(row.status), row.status)} · "
                f"{row.template_name or 'free text'} ({detail.template_language or '—'}) · "
                f"{row.recipient_phone} · {detail.attempt_count} attempt(s)"
            )
            + (" · **demo data**" if row.is_demo else "")
        )
        if row.error:
            st.error(md_escape(row.error), icon=":material/error:")
    with actions:
        _resend(user, detail)
    timeline, body = st.columns([3, 2], gap="large")
    with timeline:
        st.markdown("**Timeline**")
        for event in detail.events:
            when = pd.Timestamp(event.at).tz_convert(tz).strftime("%d/%m/%Y %H:%M:%S")
            icon = _ICONS.get(event.kind, ":material/radio_button_checked:")
            st.markdown(f"{icon} **{md_escape(event.title)}** · {when}")
            if event.detail:  # a supplier's reply, Meta's error details: text, never Markdown
                st.text(event.detail)
    with body:
        st.markdown("**What the supplier received**")
        st.text(detail.body_text or "(no text stored)")
        if detail.resend_of:
            st.caption(f"A resend of message {detail.resend_of[:8]}…")
        if detail.resent_as:
            st.caption("Resent as " + ", ".join(f"{m[:8]}…" for m in detail.resent_as))


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
            _(
                "{n} message(s) need attention: the sender stopped while they were being "
                "sent, so they may or may not have reached WhatsApp. Check WhatsApp, then "
                "resend each one (pick it in the table) or all of them."
            ).format(n=len(items)),
            icon=":material/warning:",
        )
        frame = pd.DataFrame(  # outside text (reasons, numbers) shown as cells, never Markdown
            {
                _("Since"): [pd.Timestamp(i.since).tz_convert(viewer_zone()) for i in items],
                _("Phone"): [i.recipient_phone for i in items],
                _("PO"): [i.po_number or "" for i in items],
                _("Reason"): [i.reason for i in items],
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
                st.error(md_escape(exc))
                return
            for _original, reason in report.refused:
                st.error(md_escape(reason))
            st.toast(
                _("Queued again: {n} message(s).").format(n=len(report.resent)),
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
    if row.tenant_id != user.tenant_id:
        st.caption("Resend from an account of that tenant.")
        return
    if st.session_state.get(_CONFIRM) != row.id:
        if st.button("Resend…", key=f"resend_{row.id}", icon=":material/replay:"):
            st.session_state[_CONFIRM] = row.id
            st.rerun()
        return
    st.warning("Send this message again to the supplier? A new message is queued.")
    yes, no = st.columns(2)
    if yes.button("Yes, resend", type="primary", key=f"resend_yes_{row.id}"):
        st.session_state.pop(_CONFIRM, None)
        try:
            new_id = resend_message(runtime.engine(), user, row.id)
        except (PermissionDenied, OutboxError) as exc:
            st.error(md_escape(exc))
            return
        st.session_state[_SELECTED] = new_id
        st.toast("Queued again: the sender picks it up in a moment.", icon=":material/replay:")
        st.rerun()
    if no.button("Cancel", key=f"resend_no_{row.id}"):
        st.session_state.pop(_CONFIRM, None)
        st.rerun()
