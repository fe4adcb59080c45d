"""The wanotify dashboard: log in, then only the pages your role may use.

Run with `streamlit run dashboard/app.py` (`make run` does). Every rule and query is a
`core` function; this file only wires login, navigation and the embedded sender.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import streamlit as st

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the project root.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from core.auth import allowed_pages  # noqa: E402
from core.i18n import _  # noqa: E402
from core.settings import SettingsError  # noqa: E402
from core.users import UserInfo  # noqa: E402
from dashboard import language, login, runtime  # noqa: E402
from dashboard.views import VIEWS, View  # noqa: E402
from dashboard.widgets import md_escape  # noqa: E402


def _page(view: View, user: UserInfo) -> st.Page:
    def draw() -> None:
        view.renderer()(user)

    draw.__name__ = f"page_{view.page.value}"
    return st.Page(draw, title=_(view.title), icon=view.icon, url_path=view.page.value)


def _sidebar(user: UserInfo, logout: Callable[[], None]) -> None:
    cfg = runtime.settings()
    with st.sidebar:
        if cfg.sandbox_mode:
            st.warning(
                _("**Sandbox mode**: nothing reaches Meta or real suppliers."),
                icon=":material/science:",
            )
        else:
            live = _("**Live mode**: sending through Meta")
            st.caption(f":green[:material/cell_tower: {live}]")
        name, tenant = md_escape(user.display_name), md_escape(user.tenant_id)
        role = _(user.role.value)
        st.caption(_("Signed in as **{name}** · {role} · {tenant}").format(
            name=name, role=role, tenant=tenant))  # fmt: skip
        st.button(_("Log out"), on_click=logout, key="logout", width="stretch")
        language.language_picker(user.id)


def _stop_on_bad_settings() -> None:
    """A partial live configuration serves nothing: the one line says what is missing."""
    try:
        runtime.settings()
    except SettingsError as exc:
        logging.getLogger("wanotify.dashboard").error("configuration refused: %s", exc)
        st.error(_("wanotify cannot start: fix its configuration and restart the dashboard."),
                 icon=":material/error:")  # fmt: skip
        st.code(str(exc), language=None, wrap_lines=True)
        st.stop()


def main() -> None:
    """Draw the app for this browser session."""
    st.set_page_config(page_title="wanotify", page_icon="📦", layout="wide")
    language.apply_locale()  # the browser's or this session's choice, for the login form
    _stop_on_bad_settings()
    runtime.embedded_sender()
    user = login.require_login()
    language.apply_locale(user.id)  # the language this user chose, if they chose one
    pages = {page.value: _page(VIEWS[page], user) for page in allowed_pages(user.role)}
    navigation = st.navigation(list(pages.values()))
    wanted = login.take_wanted_page()
    if wanted is not None and wanted[0] in pages:  # a deep link opened before logging in
        st.switch_page(pages[wanted[0]], query_params=wanted[1])
    _sidebar(user, login.logout)
    navigation.run()


main()
