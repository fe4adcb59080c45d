"""Templates: what WhatsApp has approved, how each one looks, and a sync from Meta (admins)."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from core.auth import Action, PermissionDenied, can
from core.errors import GraphError
from core.i18n import N_, _, ngettext
from core.meta_words import category_words, quality_words, rejection_words
from core.numbers.errors import NumberError
from core.template_admin import TemplateSummary, sync_templates_as, template_summaries
from core.users import UserInfo
from dashboard import runtime
from dashboard.views.template_form import render_form
from dashboard.widgets import ago, md_escape, paged, pager, whatsapp_bubble

_STATUS = {
    "APPROVED": N_("Approved"),
    "PENDING": N_("Pending review"),
    "REJECTED": N_("Rejected"),
    "PAUSED": N_("Paused by Meta"),
    "DISABLED": N_("Disabled by Meta"),
    "IN_APPEAL": N_("In appeal"),
}

#: How a template's parameters are written ({{1}} or {{name}}).
_FORMATS = {"positional": N_("Positional"), "named": N_("Named")}


def _format(parameter_format: str) -> str:
    known = _FORMATS.get(parameter_format.lower())
    return _(known) if known else parameter_format.title()


def render(user: UserInfo) -> None:
    """Draw the templates page for `user` (admins)."""
    if not can(user, Action.MANAGE_TEMPLATES):
        st.error(_("The {role} role may not {action}").format(
            role=_(user.role.value), action=_("manage templates")))  # fmt: skip
        return
    engine = runtime.engine()
    head, action = st.columns([3, 1])  # room for the button's words in Spanish
    head.title(_("Templates"))
    head.caption(_("Message templates approved by WhatsApp for this account. Only approved "
                   "templates can start a conversation with a supplier."))  # fmt: skip
    with action:
        st.write("")
        if st.button(_("Sync from WhatsApp"), type="primary", icon=":material/sync:",
                     key="templates_sync", use_container_width=True):  # fmt: skip
            _sync(user)
    listed, create = st.tabs([_("Templates"), _("New template")])
    with create:
        render_form(user)
    with listed:
        _listing(user, engine)


def _listing(user: UserInfo, engine: Engine) -> None:
    show_inactive = st.toggle(
        _("Show templates removed from the account"), key="templates_inactive"
    )
    templates = template_summaries(engine, user.tenant_id, include_inactive=show_inactive)
    if not templates:
        with st.container(border=True):
            st.markdown("### " + _("No templates yet"))
            st.markdown(
                _("Templates are created and approved in WhatsApp Manager, then copied here. "
                  "Press **Sync from WhatsApp** to fetch them (in sandbox mode, the sandbox's "
                  "sample templates).")
                if runtime.settings().sandbox_mode
                else _("Templates are created and approved in WhatsApp Manager, then copied "
                       "here. Press **Sync from WhatsApp** to fetch them.")
            )  # fmt: skip
            st.markdown(_("Or write one under **New template** and submit it for review."))
        return
    _table(templates)
    _preview(templates)


def _sync(user: UserInfo) -> None:
    # Errors are caught inside the spinner: GraphError is a frozen dataclass, and a
    # generator-based context manager cannot re-raise it (it sets __traceback__).
    report, problem = None, None
    with st.spinner(_("Fetching templates from WhatsApp…")):
        try:
            report = sync_templates_as(runtime.engine(), user)
        except PermissionDenied as exc:
            problem = md_escape(_(str(exc)))
        except GraphError as exc:  # Meta's own words: text, never Markdown
            problem = _("The sync failed, nothing was changed: {reason}").format(
                reason=md_escape(exc.reason)
            )
        except NumberError as exc:  # no number, hence no WABA to read templates from
            problem = _("The sync failed, nothing was changed: {reason}").format(
                reason=md_escape(exc)
            )
    if report is None:
        st.error(problem or _("The sync failed, nothing was changed"))
        return
    st.success(
        _(
            "Synced: {added} new, {updated} changed, {unchanged} unchanged, {gone} no longer "
            "on the account."
        ).format(
            added=report.added,
            updated=report.updated,
            unchanged=report.unchanged,
            gone=report.deactivated,
        )
    )
    if report.skipped:
        reasons = "\n".join(f"- {md_escape(reason)}" for reason in report.skipped[:20])
        st.warning(_("Some templates could not be read and were skipped:") + "\n\n" + reasons)


def _table(templates: list[TemplateSummary]) -> None:
    shown = paged(templates, "templates")
    rows = shown.rows
    frame = pd.DataFrame(
        {
            "template": [t.name for t in rows],
            "language": [t.language for t in rows],
            "category": [category_words(t.category) for t in rows],
            "status": [_status(t) for t in rows],
            "parameters": [t.parameter_count for t in rows],
            "format": [_format(t.parameter_format) for t in rows],
            "quality": [quality_words(t.quality) for t in rows],
            "synced": [ago(t.synced_at) for t in rows],
        }
    )
    sendable = sum(t.sendable for t in templates)
    st.caption(ngettext("{n} template", "{n} templates", len(templates)).format(n=len(templates))
               + " · " + _("{n} can be sent now").format(n=sendable))  # fmt: skip
    st.dataframe(
        frame,
        hide_index=True,
        height="content",
        key="templates_table",
        column_config={  # every column fits 1,400 px; names and Meta's words are text
            "template": st.column_config.TextColumn(_("Template"), width=170),
            "language": st.column_config.TextColumn(_("Language"), width=80),
            "category": st.column_config.TextColumn(_("Category"), width=90),
            "status": st.column_config.TextColumn(_("Status"), width=150),
            "parameters": st.column_config.NumberColumn(_("Parameters"), format="%d", width=90),
            "format": st.column_config.TextColumn(_("Format"), width=90),
            "quality": st.column_config.TextColumn(_("Quality"), width=120),
            "synced": st.column_config.TextColumn(_("Synced"), width=110),
        },
    )
    pager(shown, "templates")


def _status(t: TemplateSummary) -> str:
    if not t.active:
        return _("Removed from the account")
    if t.problem and t.status == "APPROVED":
        return _("On hold")
    known = _STATUS.get(t.status.upper())
    return _(known) if known else t.status.title()


def _preview(templates: list[TemplateSummary]) -> None:
    st.subheader(_("Preview"))
    labels = {f"{t.name} · {t.language}": t for t in templates}
    chosen = st.selectbox(_("Template"), list(labels), key="templates_preview")
    template = labels.get(chosen) if chosen else None
    if template is None:
        return
    bubble, facts = st.columns([3, 2], gap="large")
    with bubble:
        if template.preview is None:
            st.error(md_escape(template.problem or _("This template cannot be shown")))
        else:
            whatsapp_bubble(template.preview)
            st.caption(_("Placeholders such as {{supplier_name}} are filled in when sending."))
    with facts:
        # Everything below was synced from Meta: shown as text.
        facts_shown = (
            (_("Status"), md_escape(_status(template))),
            (_("Category"), md_escape(category_words(template.category))),
            (_("Language"), md_escape(template.language)),
        )
        for label, value in facts_shown:
            st.markdown(f"**{label}:** {value}")
        names = ", ".join(md_escape(n) for n in template.parameter_names) or _("none")
        st.markdown(_("**Parameters ({n}):** {names}").format(
            n=template.parameter_count, names=names))  # fmt: skip
        if template.problem:
            st.warning(md_escape(template.problem))
        if template.rejected_reason:
            st.error(_("Rejected by Meta: {reason}").format(
                reason=md_escape(rejection_words(template.rejected_reason))))  # fmt: skip
