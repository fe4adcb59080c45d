"""My alerts: each user chooses which alerts reach them, by e-mail and in the chat channel.

Every role has this page: a user changes only their own choices (`core.alerts.
preferences`). Admins also see whether e-mail and chat are configured (never the SMTP
password nor a webhook URL) and the newest alerts of their tenant, recipients and errors
shown as table cells (text, never Markdown).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.alerts.config import (
    AlertConfigError,
    AlertSettings,
    describe_alert_settings,
    get_alert_settings,
)
from core.alerts.kinds import AlertKind, label
from core.alerts.outbox import list_alerts
from core.alerts.preferences import Choice, set_choices, user_choices
from core.config_summary import shown_value
from core.i18n import _
from core.models.users import Role
from core.users import UserInfo
from dashboard import runtime
from dashboard.widgets import local_time, md_escape


def _settings() -> AlertSettings | None:
    try:
        return get_alert_settings()
    except AlertConfigError as exc:
        st.error(md_escape(_("Alert settings are incomplete: {problem}").format(problem=exc)))
        return None


def render(user: UserInfo) -> None:
    """Draw the user's alert choices (and, for admins, the channels and recent alerts)."""
    st.title(_("My alerts"))
    settings = _settings()
    engine = runtime.engine()
    if user.email:
        st.caption(md_escape(_("E-mails go to {email}.").format(email=user.email)))
    else:
        st.info(_("You have no e-mail address on file: ask an admin to link one "
                  "(wanotify users email NAME ADDRESS)."))  # fmt: skip
    if settings is not None and not settings.email_enabled:
        st.caption(_("E-mail is not configured on this installation (ALERTS_SMTP_HOST)."))
    if settings is not None and settings.chat_target(user.tenant_id) is None:
        st.caption(_("No chat channel is configured for your tenant (ALERTS_CHAT_WEBHOOK_URL)."))
    choices = user_choices(engine, user.id, user.role.value)
    with st.form("alert_choices"):
        head = st.columns([4, 1, 1])
        head[0].markdown("**" + _("Tell me when") + "**")
        head[1].markdown("**" + _("E-mail") + "**")
        head[2].markdown("**" + _("Chat") + "**")
        picked: dict[AlertKind, tuple[bool, bool]] = {}
        for kind, choice in choices.items():
            row = st.columns([4, 1, 1])
            row[0].write(label(kind))
            email = row[1].checkbox(
                _("E-mail"), value=choice.email, key=f"alert_email_{kind}",
                label_visibility="collapsed",
            )  # fmt: skip
            chat = row[2].checkbox(
                _("Chat"), value=choice.chat, key=f"alert_chat_{kind}",
                label_visibility="collapsed",
            )  # fmt: skip
            picked[kind] = (email, chat)
        saved = st.form_submit_button(_("Save my alert choices"), type="primary")
    if saved:
        set_choices(
            engine,
            user.id,
            {kind: Choice(*picked[kind]) for kind in choices},
        )
        st.toast(_("Saved"))
    st.caption(_("Several alerts of one kind within {minutes} minutes come as one digest.").format(
        minutes=settings.window_minutes if settings is not None else 15))  # fmt: skip
    if user.role == Role.ADMIN:
        _recent(user)
        if settings is not None:
            _configuration(settings)


def _configuration(settings: AlertSettings) -> None:
    with st.expander(_("Alert settings (from the environment)")):
        table = pd.DataFrame(
            [
                {"variable": variable, "value": shown_value(value)}
                for variable, value in describe_alert_settings(settings)
            ]
        )
        st.dataframe(
            table,
            hide_index=True,
            column_config={
                "variable": st.column_config.TextColumn(_("Variable")),
                "value": st.column_config.TextColumn(_("Value")),
            },
        )


def _recent(user: UserInfo) -> None:
    rows = list_alerts(runtime.engine(), limit=20, tenant_id=user.tenant_id)
    st.subheader(_("Recent alerts"))
    if not rows:
        st.caption(_("No alerts yet."))
        return
    table = pd.DataFrame(
        [
            {
                "created": local_time(row.created_at, labelled=False),
                "kind": label(row.kind),
                "channel": _("E-mail") if row.channel == "email" else _("Chat"),
                "recipient": row.recipient,
                "status": _("sent") if row.status == "sent" else _("waiting"),
                "attempts": row.attempts,
                "error": row.last_error if row.status != "sent" else "",
            }
            for row in rows
        ]
    )
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "created": st.column_config.TextColumn(_("Created")),
            "kind": st.column_config.TextColumn(_("Alert")),
            "channel": st.column_config.TextColumn(_("Channel")),
            "recipient": st.column_config.TextColumn(_("Recipient")),
            "status": st.column_config.TextColumn(_("Status")),
            "attempts": st.column_config.NumberColumn(_("Attempts")),
            "error": st.column_config.TextColumn(_("Last error")),
        },
    )
