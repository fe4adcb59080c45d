"""The Settings page's Consent tab: the tenant's rule for suppliers without recorded
consent, and the stop words in force. Logic in `core.consent`."""

from __future__ import annotations

import streamlit as st

from core.auth import PermissionDenied, write_tenant
from core.consent import allows_unrecorded, set_allows_unrecorded
from core.consent.stopwords import parse_stop_words
from core.i18n import _
from core.settings import get_settings
from core.users import UserInfo
from dashboard import runtime
from dashboard.widgets import md_escape


def render_consent_tab(user: UserInfo) -> None:
    """Draw the tenant's consent rule (admins change it) and the stop words in force."""
    engine = runtime.engine()
    tenant = write_tenant(user)
    with engine.connect() as conn:
        allowed = allows_unrecorded(conn, tenant)
    st.caption(
        _(
            "WhatsApp's Business Policy allows templates only to people who opted in. "
            "Suppliers who opted out (an admin's untick, or a reply such as STOP or BAJA) "
            "are never sent a template, whatever is chosen here."
        )
    )
    choice = st.radio(
        _("Suppliers without recorded consent"),
        [False, True],
        index=1 if allowed else 0,
        format_func=lambda allow: (
            _("Allow sends to them") if allow else _("Refuse sends to them (recommended)")
        ),
        key="settings_consent_allow",
    )
    if bool(choice) != allowed:
        try:
            set_allows_unrecorded(engine, user, bool(choice))
        except PermissionDenied as exc:
            st.error(md_escape(exc))
            return
        st.toast(_("Saved"))
    st.markdown(_("**Stop words** (a reply that is only one of these opts the supplier out):"))
    words = parse_stop_words(get_settings().consent_stop_words)
    for language, listed in sorted(words.items()):
        st.text(f"{language}: {', '.join(listed)}")
    st.caption(_("Change them with the CONSENT_STOP_WORDS setting, e.g. es=baja,parar;en=stop"))
