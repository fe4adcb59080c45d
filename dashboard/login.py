"""The login form, and who is logged in in this browser session.

A sign-in opens a server-side session (core.login_guard.server_sessions) that this tab
keeps by id and the browser keeps as an HttpOnly cookie (set by dashboard/server.py's
route when the page trades the session's one-time claim code), so a reload or a second
tab resumes it from the cookie. Every rerun checks the session again: revoked (signed
out in any tab), idle too long, past its lifetime, or the user removed, disabled or
changed in the database, and the login form is back.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import streamlit as st

from core import clock
from core.i18n import _
from core.login_guard import server_sessions
from core.login_guard.session import Verdict
from core.users import UserInfo, count_users, login, prepare_login
from dashboard import language, runtime, sso_login

_USER_KEY = "wanotify_user"
_SESSION_KEY = "wanotify_session_id"  # the dashboard_sessions row this tab holds
_CLAIM_KEY = "wanotify_session_claim"  # a claim code the page has yet to trade
_FORGET_KEY = "wanotify_forget_cookie"  # the page should delete the cookie
_COOKIE_TRIED_KEY = "wanotify_cookie_tried"  # this tab's cookie was already looked up
#: Where dashboard/server.py's routes are (the browser posts to them from the page).
CLAIM_PATH = "/_wanotify/session"
END_PATH = "/_wanotify/session/end"
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
    """Sign out: revoke the server-side session (every tab holding it is out at its next
    click), forget everything the pages kept, and have the page delete the cookie."""
    session_id = st.session_state.get(_SESSION_KEY)
    if isinstance(session_id, int):
        server_sessions.end_session(runtime.engine(), session_id=session_id, now=clock.now())
    st.session_state.clear()
    st.session_state[_FORGET_KEY] = True
    st.session_state[_COOKIE_TRIED_KEY] = True
    sso_login.sign_out()  # and the identity provider's sign-in, for single sign-on users


def require_login() -> UserInfo:
    """The logged-in user as stored now; otherwise show the login form and stop the script.

    Called on every rerun: a session signed out in any tab, idle for
    `DASHBOARD_IDLE_MINUTES`, or whose user was removed, disabled or given a new password,
    ends here with a one-line reason. A tab without a session (a reload, a second tab)
    resumes the one its cookie names, once.
    """
    cfg = runtime.settings()
    kept = st.session_state.get(_SESSION_KEY)
    held = kept if isinstance(kept, int) and current_user() is not None else None
    session_id, verdict = held, Verdict(None)
    if held is not None or not st.session_state.get(_COOKIE_TRIED_KEY):
        now, idle = clock.now(), timedelta(minutes=cfg.dashboard_idle_minutes)
        if held is not None:
            verdict = server_sessions.check(
                runtime.engine(), held, now=now, idle=idle, allow_demo=cfg.sandbox_mode
            )
        else:
            st.session_state[_COOKIE_TRIED_KEY] = True
            cookie = st.context.cookies.get(server_sessions.COOKIE_NAME)
            resumed = server_sessions.resume(
                runtime.engine(),
                cookie if isinstance(cookie, str) else None,
                now=now,
                idle=idle,
                allow_demo=cfg.sandbox_mode,
            )
            session_id, verdict = resumed.session_id, resumed.verdict
    if verdict.user is not None:
        st.session_state[_USER_KEY] = verdict.user
        st.session_state[_SESSION_KEY] = session_id
        _cookie_request(CLAIM_PATH, st.session_state.pop(_CLAIM_KEY, None))
        return verdict.user
    if held is not None:
        logout()
    if verdict.reason:
        st.session_state[_ENDED_KEY] = verdict.reason
        st.session_state[_FORGET_KEY] = True
    if st.session_state.pop(_FORGET_KEY, False):
        _cookie_request(END_PATH, "")
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
            st.warning(_(ended))
        sso_user = sso_login.offer(_client_address())
        if sso_user is not None:  # signed in at the identity provider: as a password login
            _signed_in(sso_user, "oidc")
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
            _signed_in(result.user)


def _signed_in(user: UserInfo, method: str = "password") -> None:
    """Start this browser session's login for `user` (password or single sign-on): a
    server-side session, whose cookie the page asks for on the next run."""
    started = server_sessions.start_session(runtime.engine(), user, method, now=clock.now())
    st.session_state[_USER_KEY] = user
    st.session_state[_SESSION_KEY] = started.session_id
    st.session_state[_CLAIM_KEY] = started.claim_code
    st.session_state[_COOKIE_TRIED_KEY] = True
    st.rerun()


def _cookie_request(path: str, body: object) -> None:
    """Have the page POST `body` to one of dashboard/server.py's cookie routes, once.

    Only the page's own origin may (the route checks Origin); the answer sets or deletes
    the HttpOnly cookie, which no script can read. `body` is a claim code we made (URL-safe
    base64) or empty; nothing from outside goes into the script.
    """
    if not isinstance(body, str):
        return
    call = f"fetch({json.dumps(path)},{{method:'POST',body:{json.dumps(body)},"
    call += "credentials:'same-origin',cache:'no-store'})"
    st.html(f"<script>{call}</script>", unsafe_allow_javascript=True)


def _client_address() -> str | None:
    """The browser's address as Streamlit saw the connection (None on this machine)."""
    address = st.context.ip_address
    return address if isinstance(address, str) else None
