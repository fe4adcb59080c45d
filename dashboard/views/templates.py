"""Templates: what WhatsApp has approved, how each one looks, and a sync from Meta (admins)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.auth import Action, PermissionDenied, can
from core.errors import GraphError
from core.template_admin import TemplateSummary, sync_templates_as, template_summaries
from core.users import UserInfo
from dashboard import runtime
from dashboard.widgets import md_escape, whatsapp_bubble

_STATUS = {
    "APPROVED": "Approved",
    "PENDING": "Pending review",
    "REJECTED": "Rejected",
    "PAUSED": "Paused by Meta",
    "DISABLED": "Disabled by Meta",
    "IN_APPEAL": "In appeal",
}


def render(user: UserInfo) -> None:
    """Draw the templates page for `user` (admins)."""
    if not can(user, Action.MANAGE_TEMPLATES):
        st.error(f"The {user.role.value} role may not manage templates")
        return
    engine = runtime.engine()
    head, action = st.columns([4, 1])
    head.title("Templates")
    head.caption("Message templates approved by WhatsApp for this account. Only approved "
                 "templates can start a conversation with a supplier.")  # fmt: skip
    with action:
        st.write("")
        if st.button("Sync from WhatsApp", type="primary", icon=":material/sync:",
                     key="templates_sync", use_container_width=True):  # fmt: skip
            _sync(user)
    show_inactive = st.toggle("Show templates removed from the account", key="templates_inactive")
    templates = template_summaries(engine, user.tenant_id, include_inactive=show_inactive)
    if not templates:
        with st.container(border=True):
            st.markdown("### No templates yet")
            st.markdown(
                "Templates are created and approved in WhatsApp Manager, then copied here. "
                "Press **Sync from WhatsApp** to fetch them"
                + (" (in sandbox mode, the sandbox's sample templates)."
                   if runtime.settings().sandbox_mode else ".")
            )  # fmt: skip
        return
    _table(templates)
    _preview(templates)


def _sync(user: UserInfo) -> None:
    # Errors are caught inside the spinner: GraphError is a frozen dataclass, and a
    # generator-based context manager cannot re-raise it (it sets __traceback__).
    report, problem = None, None
    with st.spinner("Fetching templates from WhatsApp…"):
        try:
            report = sync_templates_as(runtime.engine(), user)
        except PermissionDenied as exc:
            problem = md_escape(exc)
        except GraphError as exc:  # Meta's own words: text, never Markdown
            problem = f"The sync failed, nothing was changed: {md_escape(exc.reason)}"
    if report is None:
        st.error(problem or "The sync failed, nothing was changed")
        return
    st.success(
        f"Synced: {report.added} new, {report.updated} changed, {report.unchanged} unchanged, "
        f"{report.deactivated} no longer on the account."
    )
    if report.skipped:
        reasons = "\n".join(f"- {md_escape(reason)}" for reason in report.skipped[:20])
        st.warning(f"Some templates could not be read and were skipped:\n\n{reasons}")


def _table(templates: list[TemplateSummary]) -> None:
    frame = pd.DataFrame(
        {
            "Template": [t.name for t in templates],
            "Language": [t.language for t in templates],
            "Category": [t.category.title() for t in templates],
            "Status": [_status(t) for t in templates],
            "Parameters": [t.parameter_count for t in templates],
            "Format": [t.parameter_format.title() for t in templates],
            "Quality": [t.quality or "—" for t in templates],
            "Synced": [t.synced_at for t in templates],
        }
    )
    sendable = sum(t.sendable for t in templates)
    st.caption(f"{len(templates)} templates · {sendable} can be sent now")
    st.dataframe(
        frame,
        hide_index=True,
        column_config={
            "Parameters": st.column_config.NumberColumn("Parameters", format="%d"),
            "Synced": st.column_config.DatetimeColumn("Synced", format="distance"),
        },
    )


def _status(t: TemplateSummary) -> str:
    if not t.active:
        return "Removed from the account"
    if t.problem and t.status == "APPROVED":
        return "On hold"
    return _STATUS.get(t.status.upper(), t.status.title())


def _preview(templates: list[TemplateSummary]) -> None:
    st.subheader("Preview")
    labels = {f"{t.name} · {t.language}": t for t in templates}
    chosen = st.selectbox("Template", list(labels), key="templates_preview")
    template = labels.get(chosen) if chosen else None
    if template is None:
        return
    bubble, facts = st.columns([3, 2], gap="large")
    with bubble:
        if template.preview is None:
            st.error(md_escape(template.problem or "This template cannot be shown"))
        else:
            whatsapp_bubble(template.preview)
            st.caption("Placeholders such as {{supplier_name}} are filled in when sending.")
    with facts:
        # Everything below was synced from Meta: shown as text.
        st.markdown(f"**Status:** {md_escape(_status(template))}")
        st.markdown(f"**Category:** {md_escape(template.category.title())}")
        st.markdown(f"**Language:** {md_escape(template.language)}")
        names = ", ".join(md_escape(n) for n in template.parameter_names) or "none"
        st.markdown(f"**Parameters ({template.parameter_count}):** {names}")
        if template.problem:
            st.warning(md_escape(template.problem))
        if template.rejected_reason:
            st.error(f"Rejected by Meta: {md_escape(template.rejected_reason)}")
