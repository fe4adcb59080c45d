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
from core.settings import SettingsError  # noqa: E402
from core.users import UserInfo  # noqa: E402
from dashboard import login, runtime  # noqa: E402
from dashboard.views import VIEWS, View  # noqa: E402
from dashboard.widgets import md_escape  # noqa: E402


def _page(view: View, user: UserInfo) -> st.Page:
    def draw() -> None:
        view.renderer()(user)

    draw.__name__ = f"page_{view.page.value}"
    return st.Page(draw, title=view.title, icon=view.icon, url_path=view.page.value)


def _sidebar(user: UserInfo, logout: Callable[[], None]) -> None:
    cfg = runtime.settings()
    with st.sidebar:
        if cfg.sandbox_mode:
            st.warning(
                "**Sandbox mode**: nothing reaches Meta or real suppliers.",
                icon=":material/science:",
            )
        else:
            st.caption(":green[:material/cell_tower: **Live mode**: sending through Meta]")
        name, tenant = md_escape(user.display_name), md_escape(user.tenant_id)
        st.caption(f"Signed in as **{name}** · {user.role.value} · {tenant}")
        st.button("Log out", on_click=logout, key="logout", width="stretch")


def _stop_on_bad_settings() -> None:
    """A partial live configuration serves nothing: the one line says what is missing."""
    try:
        runtime.settings()
    except SettingsError as exc:
        logging.getLogger("wanotify.dashboard").error("configuration refused: %s", exc)
        st.error("wanotify cannot start: fix its configuration and restart the dashboard.",
                 icon=":material/error:")  # fmt: skip
        st.code(str(exc), language=None, wrap_lines=True)
        st.stop()


def main() -> None:
    """Draw the app for this browser session."""
    st.set_page_config(page_title="wanotify", page_icon="📦", layout="wide")
    _stop_on_bad_settings()
    runtime.embedded_sender()
    user = login.require_login()
    pages = {page.value: _page(VIEWS[page], user) for page in allowed_pages(user.role)}
    navigation = st.navigation(list(pages.values()))
    wanted = login.take_wanted_page()
    if wanted is not None and wanted[0] in pages:  # a deep link opened before logging in
        st.switch_page(pages[wanted[0]], query_params=wanted[1])
    _sidebar(user, login.logout)
    navigation.run()


main()
