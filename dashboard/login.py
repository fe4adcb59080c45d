"""The login form, and who is logged in in this browser session.

Every rerun checks the session again (core.login_guard.session): idle too long, or the
user removed, disabled or changed in the database, and the login form is back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

import streamlit as st

from core import clock
from core.i18n import _
from core.login_guard.session import recheck
from core.users import UserInfo, count_users, login, prepare_login
from dashboard import language, runtime

_USER_KEY = "wanotify_user"
_SEEN_KEY = "wanotify_last_seen"
_ENDED_KEY = "wanotify_session_ended"
_WANTED_KEY = "wanotify_wanted"


def _remember_wanted_page() -> None:
    """Keep the page and query the browser asked for, to open them after the login."""
    if _WANTED_KEY in st.session_state:
        return
    path = urlsplit(st.context.url or "").path.strip("/")
    slug = path.rsplit("/", 1)[-1][:40]
    st.session_state[_WANTED_KEY] = (slug, {k: st.query_params[k][:200] for k in st.query_params})


def take_wanted_page() -> tuple[str, dict[str, str]] | None:
    """The page slug and query asked for before logging in (once), or None."""
    wanted = st.session_state.pop(_WANTED_KEY, None)
    if isinstance(wanted, tuple) and wanted[0]:
        return wanted
    return None


def current_user() -> UserInfo | None:
    """The user logged in in this browser session, if any."""
    user = st.session_state.get(_USER_KEY)
    return user if isinstance(user, UserInfo) else None


def logout() -> None:
    """Forget this session's user and everything the pages kept for them."""
    st.session_state.clear()


def require_login() -> UserInfo:
    """The logged-in user as stored now; otherwise show the login form and stop the script.

    Called on every rerun: a session idle for `DASHBOARD_IDLE_MINUTES`, or whose user was
    removed, disabled or given a new password, ends here with a one-line reason.
    """
    user = current_user()
    if user is not None:
        cfg = runtime.settings()
        now = clock.now()
        last_seen = st.session_state.get(_SEEN_KEY)
        verdict = recheck(
            runtime.engine(),
            user,
            last_seen if isinstance(last_seen, datetime) else now,
            now=now,
            idle=timedelta(minutes=cfg.dashboard_idle_minutes),
            allow_demo=cfg.sandbox_mode,
        )
        if verdict.user is not None:
            st.session_state[_USER_KEY] = verdict.user
            st.session_state[_SEEN_KEY] = now
            return verdict.user
        logout()
        st.session_state[_ENDED_KEY] = verdict.reason
    _remember_wanted_page()
    _login_form()
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises


def _login_form() -> None:
    cfg = runtime.settings()
    db = runtime.engine()
    _left, middle, _right = st.columns([1, 1.2, 1])
    with middle:
        st.title("📦 wanotify")
        st.caption(_("Purchase-order notices to suppliers over WhatsApp"))
        language.language_picker()
        ended = st.session_state.pop(_ENDED_KEY, None)
        if isinstance(ended, str):
            st.warning(ended)
        users = count_users(db)
        prepare_login()  # the dummy hash is made before anyone submits
        if users == 0:
            st.warning(
                _("No users yet. Create the first administrator from a terminal:")
                + "\n\n`.venv/bin/wanotify users add admin --role admin`"
            )
        with st.form("login", clear_on_submit=False):
            username = st.text_input(_("Username"), autocomplete="username", max_chars=120)
            password = st.text_input(
                _("Password"), type="password", autocomplete="current-password", max_chars=200
            )
            submitted = st.form_submit_button(_("Log in"), type="primary", width="stretch")
        if cfg.sandbox_mode and users > count_users(db, include_demo=False):
            st.info(
                _(
                    "Sandbox mode: demo users `buyer`, `manager` and `admin`, "
                    "password `demo-password`"
                )
            )
        if submitted:
            result = login(
                db, username, password, client=_client_address(), allow_demo=cfg.sandbox_mode
            )
            if result.user is None:
                st.error(_(result.error or "Wrong username or password"))
                return
            st.session_state[_USER_KEY] = result.user
            st.session_state[_SEEN_KEY] = clock.now()
            st.rerun()


def _client_address() -> str | None:
    """The browser's address as Streamlit saw the connection (None on this machine)."""
    address = st.context.ip_address
    return address if isinstance(address, str) else None
