"""The Settings page's Follow-up tab: when an unconfirmed PO notice is listed, how many
reminders a PO may get, and the automatic reminders: their switch, schedule, last and
next run. Logic in `core.followup.settings`; the sender process runs the schedule."""

from __future__ import annotations

import streamlit as st

from core import clock
from core.auth import PermissionDenied, write_tenant
from core.followup.settings import (
    AFTER_HOURS_RANGE,
    AUTO_EVERY_RANGE,
    MAX_REMINDERS_RANGE,
    FollowUpSettingsError,
    get_settings,
    save_settings,
    set_auto,
)
from core.i18n import _
from core.users import UserInfo
from dashboard import runtime
from dashboard.widgets import local_time, md_escape


def render_followup_tab(user: UserInfo) -> None:
    """Draw the tenant's follow-up settings and the automatic reminders' state."""
    engine = runtime.engine()
    cfg = get_settings(engine, write_tenant(user))
    st.caption(_("Delivered PO notices the supplier has not confirmed are listed on "
                 "**Awaiting answer** after the waiting time; reminders use the approved "
                 "template po_reminder."))  # fmt: skip
    on = st.toggle(_("Automatic reminders"), value=cfg.auto, key="settings_followup_auto",
                   help=_("The sender sends due reminders on this schedule; switch off to "
                          "stop them at once."))  # fmt: skip
    if on != cfg.auto:
        try:
            cfg = set_auto(engine, user, on)
        except PermissionDenied as exc:
            st.error(md_escape(_(str(exc))))
            return
        st.toast(_("Automatic reminders on") if on else _("Automatic reminders off"))
    now = clock.now()
    nxt = cfg.next_run(now)
    last = local_time(cfg.last_run) if cfg.last_run else _("never")
    if cfg.auto:
        st.markdown(
            _("Every **{hours} h** · last run: {last} · next run: {next}").format(
                hours=cfg.auto_every_hours, last=last, next=local_time(nxt) if nxt else "—")
        )  # fmt: skip
    else:
        st.markdown(_("Automatic reminders are **off** · last run: {last}").format(last=last))
    with st.form("settings_followup"):
        c1, c2, c3 = st.columns(3)
        after = c1.number_input(_("Hours before listing"), *AFTER_HOURS_RANGE,
                                value=cfg.after_hours, step=1)  # fmt: skip
        cap = c2.number_input(_("Reminders per PO"), *MAX_REMINDERS_RANGE,
                              value=cfg.max_reminders, step=1)  # fmt: skip
        every = c3.number_input(_("Hours between automatic runs"), *AUTO_EVERY_RANGE,
                                value=cfg.auto_every_hours, step=1)  # fmt: skip
        saved = st.form_submit_button(_("Save"), type="primary")
    if saved:
        try:
            save_settings(engine, user, after_hours=int(after), max_reminders=int(cap),
                          auto=on, auto_every_hours=int(every))  # fmt: skip
        except (FollowUpSettingsError, PermissionDenied) as exc:
            st.error(md_escape(_(str(exc))))
            return
        st.toast(_("Saved"))
        st.rerun()
