"""Single sign-on on the login page: "Sign in with <provider>" through Streamlit's `st.login`.

Offered only when `.streamlit/secrets.toml` has a complete `[auth]` section (checked by
core.sso.read_auth_config; a half-made one shows its one-line problem and offers
nothing). After the provider sends the browser back, `st.user` holds the ID token's
claims and core.sso.resolve_sso_user decides which wanotify user, if any, they are.
"""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from core.i18n import _
from core.sso import (
    SsoConfig,
    SsoConfigError,
    parse_group_rules,
    read_auth_config,
    resolve_sso_user,
)
from core.users import UserInfo
from dashboard import runtime
from dashboard.widgets import md_escape

log = logging.getLogger(__name__)
_logged_problems: set[str] = set()


def configured() -> SsoConfig | None:
    """The providers to offer, or None (no `[auth]`, or a broken one: shown, then logged once)."""
    try:
        section = _auth_section()
        return read_auth_config(section)
    except SsoConfigError as exc:
        problem = str(exc)
        st.error(md_escape(problem))
        if problem not in _logged_problems:
            _logged_problems.add(problem)
            log.error("%s", problem)
        return None


def offer(client: str | None) -> UserInfo | None:
    """Show the sign-in buttons; the wanotify user of a fresh provider sign-in, if any.

    A refused identity (unknown email, disabled account, another identity) shows why,
    as text; a stale one (old or already used) just offers the buttons again.
    """
    config = configured()
    if config is None:
        return None
    if _provider_signed_in():
        result = resolve_sso_user(
            runtime.engine(),
            _claims(),
            rules=parse_group_rules(runtime.settings().sso_group_rules),
            client=client,
        )
        if result.user is not None:
            return result.user
        if result.refusal and not result.stale:
            st.error(md_escape(result.refusal))
    for provider in config.providers:
        label = _("Sign in with {provider}").format(provider=provider.label)
        if st.button(md_escape(label), key=f"sso-{provider.name}", width="stretch"):
            st.login(provider.name)
    st.caption(_("or with a wanotify username and password"))
    return None


def sign_out() -> None:
    """End the provider sign-in too (Streamlit's identity cookie), when there is one."""
    if _auth_section() and _provider_signed_in():
        st.logout()


def _auth_section() -> Any:
    """The `[auth]` section of the app's secrets, or None without one (or a secrets file)."""
    if not st.secrets.load_if_toml_exists():
        return None
    return st.secrets.get("auth")


def _provider_signed_in() -> bool:
    return bool(st.user.get("is_logged_in"))


def _claims() -> dict[str, Any]:
    return {key: st.user.get(key) for key in st.user if key != "tokens"}
