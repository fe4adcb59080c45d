"""The Settings page's Numbers tab: the tenant's WhatsApp numbers, their health as Meta
last reported it, and an admin's add / test / set default / remove. Logic in
`core.numbers`; the access token field is a password field, cleared on submit and never
shown again."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.auth import Action, PermissionDenied, require, write_tenant
from core.i18n import _, ngettext
from core.meta_words import number_status_words, quality_words, throughput_words
from core.numbers.admin import NumberInfo, add_number, list_numbers, remove_number, set_default
from core.numbers.errors import NumberError
from core.numbers.health import check_number
from core.users import UserInfo
from dashboard import runtime
from dashboard.widgets import local_time, md_escape


def render_numbers_tab(user: UserInfo) -> None:
    """Draw the tenant's numbers with their health, and the admin's actions on them."""
    try:
        require(user, Action.MANAGE_SETTINGS)
    except PermissionDenied as exc:
        st.error(md_escape(exc))
        return
    tenant = write_tenant(user)
    st.caption(_("The WhatsApp business numbers this tenant's messages go out from. Each "
                 "number has its own access token, throughput cap and standing with Meta; "
                 "messages use the default number unless another is chosen."))  # fmt: skip
    try:
        numbers = list_numbers(runtime.engine(), runtime.settings(), tenant)
    except NumberError as exc:
        st.error(md_escape(exc))
        return
    if numbers:
        with st.container(key="numbers_grid"):
            _table(numbers)
        _actions(user, tenant, numbers)
    else:
        st.info(_("This tenant has no number yet: its messages cannot be sent until one is "
                  "added."))  # fmt: skip
    _add_form(tenant)


def _table(numbers: list[NumberInfo]) -> None:
    st.dataframe(
        pd.DataFrame(
            {
                "id": [n.phone_number_id for n in numbers],
                "number": [" · ".join(filter(None, (n.display_number, n.display_name)))
                           for n in numbers],
                "waba": [n.waba_id or "" for n in numbers],
                "cap": [n.max_mps for n in numbers],
                "default": [n.is_default for n in numbers],
                "quality": [quality_words(n.quality_rating) if n.quality_rating else ""
                            for n in numbers],
                "tier": [n.messaging_tier or "" for n in numbers],
                "checked": [_checked(n) for n in numbers],
            }
        ),
        hide_index=True,
        height="content",
        key="numbers_table",
        column_config={
            "id": st.column_config.TextColumn(_("Phone number ID"), width=135),
            "number": st.column_config.TextColumn(_("Number"), width=190),
            "waba": st.column_config.TextColumn(_("WABA"), width=125),
            "cap": st.column_config.NumberColumn(_("Cap/s"), width=55),
            "default": st.column_config.CheckboxColumn(_("Default"), width=70),
            "quality": st.column_config.TextColumn(_("Quality"), width=80),
            "tier": st.column_config.TextColumn(_("Messaging limit"), width=110),
            "checked": st.column_config.TextColumn(_("Last check"), width=120),
        },
    )  # fmt: skip


def _checked(number: NumberInfo) -> str:
    """When Meta was last asked, in a few words (the details line says the rest)."""
    if number.from_environment:
        return _("environment")
    if number.last_checked_at is None:
        return _("never checked")
    when = local_time(number.last_checked_at, "%d/%m %H:%M", labelled=False)
    return _("{when}: failed").format(when=when) if number.last_error else when


def _details(number: NumberInfo) -> str:
    """The chosen number's standing as Meta last reported it, as plain text."""
    if number.last_checked_at is None:
        return _("Not checked yet: test the connection to see its standing.")
    parts = [
        _("Status: {status}").format(status=number_status_words(number.status)),
        _("Name status: {status}").format(status=number.name_status or "—"),
        _("Throughput: {level}").format(level=throughput_words(number.throughput_level)),
        _("Checked {when}").format(when=local_time(number.last_checked_at)),
    ]
    if number.last_error:
        parts.append(_("Last check failed: {reason}").format(reason=number.last_error))
    return " · ".join(parts)


def _actions(user: UserInfo, tenant: str, numbers: list[NumberInfo]) -> None:
    stored = [n for n in numbers if not n.from_environment]
    if not stored:
        return
    st.markdown("**" + _("A number") + "**")
    ids = [n.phone_number_id for n in stored]
    # ids only: a label from Meta's report would change under the widget after a test
    chosen = st.selectbox(_("Number"), ids, key="numbers_chosen")
    if chosen is None:
        return
    st.text(_details(next(n for n in stored if n.phone_number_id == chosen)))
    test, default, remove = st.columns(3)
    engine, settings = runtime.engine(), runtime.settings()
    try:
        if test.button(_("Test connection"), key="numbers_test"):
            outcome = check_number(engine, settings, chosen, tenant_id=tenant)
            if outcome.ok:
                st.toast(_("Meta answered: the number is reachable"))
            else:
                st.session_state["numbers_error"] = _("Meta refused: {reason}").format(
                    reason=outcome.error
                )
            st.rerun()
        if default.button(_("Make default"), key="numbers_default"):
            set_default(engine, tenant, chosen)
            st.rerun()
        sure = remove.checkbox(_("Yes, stop sending from it"), key="numbers_remove_sure")
        if remove.button(_("Remove"), key="numbers_remove", disabled=not sure):
            remove_number(engine, tenant, chosen)
            st.session_state.pop("numbers_remove_sure", None)
            st.rerun()
    except NumberError as exc:
        st.error(md_escape(exc))
    problem = st.session_state.pop("numbers_error", None)
    if problem:
        st.error(md_escape(problem))


def _add_form(tenant: str) -> None:
    settings = runtime.settings()
    with st.form("numbers_add", clear_on_submit=True):
        st.markdown("**" + _("Add a number") + "**")
        c1, c2 = st.columns(2)
        phone_number_id = c1.text_input(
            _("Phone number ID"), help=_("In Meta's WhatsApp Manager > Phone numbers: the "
                                         "number's ID (digits), not the phone number itself"),
        )  # fmt: skip
        waba = c2.text_input(_("WhatsApp Business Account ID"))
        c3, c4, c5 = st.columns([2, 2, 1])
        display_number = c3.text_input(_("Display number (optional)"))
        display_name = c4.text_input(_("Display name (optional)"))
        cap = c5.number_input(_("Cap/s"), min_value=1, max_value=10_000, value=80, step=1)
        token = st.text_input(
            _("Access token"), type="password",
            help=_("A system user's permanent token with whatsapp_business_messaging. "
                   "Stored encrypted; never shown again.")
            + ("" if not settings.sandbox_mode else " " + _("Empty: the sandbox's token.")),
        )  # fmt: skip
        make_default = st.checkbox(_("Make it the default"), value=False)
        submitted = st.form_submit_button(_("Add number"), type="primary")
    if not submitted:
        return
    try:
        info = add_number(
            runtime.engine(), settings, tenant_id=tenant, phone_number_id=phone_number_id,
            access_token=token or None, waba_id=waba or None,
            display_number=display_number or None, display_name=display_name or None,
            max_mps=int(cap), make_default=True if make_default else None,
        )  # fmt: skip
    except NumberError as exc:
        st.error(md_escape(exc))
        return
    st.toast(_("Number {number} added").format(number=info.phone_number_id))
    if info.held_applied:  # events that named it before it was registered
        st.toast(ngettext(
            "{n} webhook event held while the number was unknown was applied.",
            "{n} webhook events held while the number was unknown were applied.",
            info.held_applied,
        ).format(n=info.held_applied))  # fmt: skip
    st.rerun()
