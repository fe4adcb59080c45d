"""The templates page (being built in this session)."""

from __future__ import annotations

import streamlit as st

from core.users import UserInfo


def render(user: UserInfo) -> None:
    """Draw the page for `user`."""
    st.title("templates")
    st.info("This page is being built.")
