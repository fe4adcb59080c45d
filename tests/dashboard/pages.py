"""Helpers for AppTest tests of single dashboard pages (a page's `render(user)`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.models.users import Role
from core.users import UserInfo

USER_KEY = "wanotify_user"  # dashboard.login._USER_KEY


def person(role: str, tenant: str = "default", *extra: str, name: str | None = None) -> UserInfo:
    """A logged-in user as the login page would put it in the session."""
    return UserInfo(
        id=1,
        username=name or f"{role}-user",
        display_name=(name or role).title(),
        role=Role(role),
        tenant_id=tenant,
        tenants=(tenant, *extra),
        is_active=True,
        is_demo=False,
        last_login_at=None,
    )


def _script(module: str) -> None:
    import importlib

    import streamlit as st

    importlib.import_module(module).render(st.session_state["wanotify_user"])


def page(module: str, user: UserInfo, timeout: float = 60) -> AppTest:
    """An AppTest that draws `module`'s page for `user` (call `.run()`)."""
    at = AppTest.from_function(_script, args=(module,), default_timeout=timeout)
    at.session_state[USER_KEY] = user
    return at


@pytest.fixture
def dashboard_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database for the pages, no embedded sender, empty Streamlit caches."""
    monkeypatch.setenv("DASHBOARD_EMBEDDED_SENDER", "false")
    st.cache_data.clear()
    yield database_url
    st.cache_data.clear()


def texts(at: AppTest) -> str:
    """Every markdown, caption, info, warning, error and success text on the page."""
    parts: list[Any] = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "subheader",
                 "title"):  # fmt: skip
        parts.extend(element.value for element in getattr(at, kind))
    return "\n".join(str(p) for p in parts)
