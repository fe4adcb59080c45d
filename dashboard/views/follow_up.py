"""Awaiting answer: PO notices delivered and not confirmed, rejected first; reminders.

Buyers and managers (and admins) see their tenants' list (`core.followup.query`), filter
it, pick rows and send a reminder (`core.followup.reminders`: idempotent per PO and
interval, capped, never to an opted-out supplier). The supplier's words are dataframe
cells (text, never Markdown); outcomes quoting them go through `md_escape`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import clock
from core.auth import Action, PermissionDenied, require, scope_tenants, visible_tenants
from core.followup.query import (
    STATE_NAMES,
    AwaitingFilter,
    AwaitingNotice,
    FollowUpQueryError,
    State,
    age_words,
    awaiting,
    notice_templates,
    reminders_words,
    state_words,
)
from core.followup.reminders import Outcome, send_reminders
from core.followup.settings import get_settings
from core.i18n import _, ngettext
from core.paging import ResultPage
from core.users import UserInfo
from dashboard import runtime
from dashboard.widgets import local_time, md_escape, page_number, pager, status_name

PAGE_SIZE = 50
_KEY = "follow_up"
#: The age filter's choices: hours (0: the tenant's waiting time).
_AGES = (0, 24, 48, 72, 168)


def render(user: UserInfo) -> None:
    """Draw the awaiting-answer page for `user` (buyers, managers, admins)."""
    try:
        require(user, Action.FOLLOW_UP)
    except PermissionDenied as exc:
        st.error(md_escape(_(str(exc))))
        return
    engine = runtime.engine()
    cfg = get_settings(engine, user.tenant_id)
    st.title(_("Awaiting answer"))
    st.caption(
        _("PO notices delivered and not confirmed by the supplier after {hours} h, rejected "
          "ones first. Pick rows to send a reminder (at most {cap} per PO).").format(
            hours=cfg.after_hours, cap=cfg.max_reminders)
    )  # fmt: skip
    if cfg.auto:
        due = cfg.next_run(clock.now())
        st.caption(":material/schedule: " + _("Automatic reminders are on: next run {when}.")
                   .format(when=local_time(due) if due else "—"))  # fmt: skip
    search = _filters(user)
    if search is None:
        return
    try:
        page = awaiting(engine, search)
    except FollowUpQueryError as exc:
        st.warning(md_escape(_(str(exc))))
        return
    if page.total == 0:
        with st.container(border=True):
            st.markdown("### " + _("Nothing is waiting"))
            st.markdown(_("Every delivered PO notice that matches is confirmed or still within "
                          "its waiting time."))  # fmt: skip
        return
    chosen = _table(page)
    _remind(user, chosen)


def _filters(user: UserInfo) -> AwaitingFilter | None:
    visible = visible_tenants(user)
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([3, 2, 3, 2])
        supplier = c1.text_input(_("Supplier"), placeholder=_("Name or phone"),
                                 key=f"{_KEY}_supplier")  # fmt: skip
        templates = notice_templates(runtime.engine(), visible)
        template = c2.selectbox(
            _("Template"), ["", *templates], key=f"{_KEY}_template",
            format_func=lambda t: t or _("Any template"),
        )  # fmt: skip
        states = c3.multiselect(
            _("State"), [s.value for s in State], format_func=lambda s: _(STATE_NAMES[State(s)]),
            placeholder=_("Any state"), key=f"{_KEY}_states",
        )  # fmt: skip
        default = get_settings(runtime.engine(), user.tenant_id).after_hours
        age = c4.selectbox(_("Waiting at least"), _AGES,
                           format_func=lambda hours: _age_choice(hours, default),
                           key=f"{_KEY}_age")  # fmt: skip
        requested: list[str] = []
        if len(visible) > 1:
            requested = st.multiselect(_("Tenants"), visible, placeholder=_("All my tenants"),
                                       key=f"{_KEY}_tenants")  # fmt: skip
    signature = (supplier, template, tuple(states), age, tuple(requested))
    if st.session_state.get(f"{_KEY}_signature") != signature:
        st.session_state[f"{_KEY}_signature"] = signature
        st.session_state[f"{_KEY}_page"] = 1  # new filters start on the first page
    try:
        return AwaitingFilter(
            scope_tenants(user, requested), supplier=supplier, template=template or "",
            states=tuple(states), min_age_hours=int(age) or None, page=page_number(_KEY),
            page_size=PAGE_SIZE,
        )  # fmt: skip
    except (FollowUpQueryError, PermissionDenied) as exc:
        st.warning(md_escape(_(str(exc))))
        return None


def _age_choice(hours: int, default: int) -> str:
    if not hours:
        return _("Default ({hours} h)").format(hours=default)
    if hours % 24 == 0:
        days = hours // 24
        return ngettext("{n} day", "{n} days", days).format(n=days)
    return _("{hours} h").format(hours=hours)


def _table(page: ResultPage[AwaitingNotice]) -> list[AwaitingNotice]:
    rows = page.rows
    frame = pd.DataFrame(  # cells are shown as text: the supplier's words, never Markdown
        {
            "po": [n.po_number for n in rows],
            "supplier": [n.supplier_name for n in rows],
            "state": [state_words(n.state) for n in rows],
            "status": [status_name(n.status).capitalize() for n in rows],
            "age": [age_words(n.age) for n in rows],
            "reminders": [reminders_words(n) for n in rows],
            "reply": [n.reply_text or "" for n in rows],
        }
    )
    event = st.dataframe(
        frame, hide_index=True, on_select="rerun", selection_mode="multi-row",
        height="content", key=f"{_KEY}_table_{page.page}",
        column_config={
            "po": st.column_config.TextColumn(_("PO number"), width=120),
            "supplier": st.column_config.TextColumn(_("Supplier"), width=150),
            "state": st.column_config.TextColumn(_("State"), width=170),  # Respondió, sin …
            "status": st.column_config.TextColumn(_("Status"), width=90),
            "age": st.column_config.TextColumn(_("Age"), width=95),  # Antigüedad
            "reminders": st.column_config.TextColumn(_("Reminders"), width=120),  # Recordatorios
            "reply": st.column_config.TextColumn(_("Reply"), width=110),
        },
    )  # fmt: skip
    pager(page, _KEY)
    picked = getattr(getattr(event, "selection", None), "rows", None) or []
    chosen = [rows[i] for i in picked if 0 <= i < len(rows)]
    for notice in chosen:  # the whole reply of each picked row, as text (never Markdown)
        if notice.reply_text:
            st.text(f"{notice.po_number} · {notice.supplier_name}: {notice.reply_text}")
    return chosen


def _remind(user: UserInfo, picked: list[AwaitingNotice]) -> None:
    rejected = [n for n in picked if n.state is State.REJECTED]
    chosen = [n for n in picked if n.state is not State.REJECTED]
    if rejected:  # answered: the core refuses them too (Outcome.REJECTED_PO)
        st.caption(":material/block: " + md_escape(
            ngettext("{n} picked PO was rejected by its supplier: it has been answered and "
                     "gets no reminder. Call the supplier or send a new PO notice.",
                     "{n} picked POs were rejected by their suppliers: they have been answered "
                     "and get no reminder. Call the suppliers or send new PO notices.",
                     len(rejected)).format(n=len(rejected))))  # fmt: skip
    label = (
        ngettext("Send a reminder to {n} supplier", "Send reminders to {n} suppliers",
                 len(chosen)).format(n=len(chosen))
        if chosen else _("Pick rows to send reminders")
    )  # fmt: skip
    clicked = st.button(label, type="primary", disabled=not chosen, key=f"{_KEY}_remind",
                        icon=":material/notifications:")  # fmt: skip
    if not clicked:
        return
    try:
        results = send_reminders(runtime.engine(), user, [n.message_id for n in chosen])
    except PermissionDenied as exc:
        st.error(md_escape(_(str(exc))))
        return
    queued = sum(r.outcome is Outcome.QUEUED for r in results)
    for result in results:
        line = md_escape(f"{result.po_number or result.notice_id}: {result.words}")
        if result.outcome is Outcome.QUEUED:
            st.success(line, icon=":material/check:")
        else:
            st.warning(line, icon=":material/info:")
    st.toast(ngettext("{n} reminder queued", "{n} reminders queued", queued).format(n=queued))
