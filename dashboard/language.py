"""The language this browser session reads the dashboard in, and the picker to change it.

Each rerun starts with `apply_locale`: the language the user picked (this session, else
the one stored on their user row), else the browser's Accept-Language, else English.
Everything after it (`_()`, dates, numbers, money) reads core.i18n's current locale.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.i18n import LANGUAGES, _, choose_locale, current_language, set_locale
from core.i18n import set_locale_fallback as _set_fallback
from core.user_locale import choose_language, chosen_language
from dashboard import runtime

CHOICE_KEY = "wanotify_language"  # the language picked in this session ("en", "es")
LOCALE_KEY = "wanotify_locale"  # the locale this session's last rerun used ("es_MX")
_LOADED_KEY = "wanotify_language_loaded"  # the user id whose stored choice was read
_PICKER_KEY = "wanotify_language_picker"


def _session_locale() -> str | None:
    """This session's locale, for code running in its script thread (a fragment's rerun);
    None elsewhere (the embedded sender's threads read English)."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    value = st.session_state.get(LOCALE_KEY)
    return value if isinstance(value, str) else None


def browser_languages() -> str | None:
    """The browser's Accept-Language header, else the language its JavaScript reports."""
    header = st.context.headers.get("Accept-Language") if st.context.headers else None
    return header or getattr(st.context, "locale", None) or None


def apply_locale(user_id: int | None = None) -> str:
    """Set this rerun's locale (see the module docstring) and return it.

    With a logged-in `user_id`, their stored choice is read once per session; a language
    picked on the login page just before is their latest choice and is stored instead.
    """
    if user_id is not None and st.session_state.get(_LOADED_KEY) != user_id:
        st.session_state[_LOADED_KEY] = user_id
        picked = st.session_state.get(CHOICE_KEY)
        if isinstance(picked, str) and picked in LANGUAGES:
            choose_language(runtime.engine(), user_id, picked)
        else:
            stored = chosen_language(runtime.engine(), user_id)
            if stored is not None:
                st.session_state[CHOICE_KEY] = stored
    chosen = st.session_state.get(CHOICE_KEY)
    locale = choose_locale(chosen if isinstance(chosen, str) else None, browser_languages())
    set_locale(locale)
    st.session_state[LOCALE_KEY] = locale
    _set_fallback(_session_locale)
    return locale


def language_picker(user_id: int | None = None) -> None:
    """A menu of the dashboard's languages; the pick applies at once and, for a logged-in
    user, is stored on their user row for their next session."""

    def picked() -> None:
        language = st.session_state.get(_PICKER_KEY)
        if language in LANGUAGES:
            st.session_state[CHOICE_KEY] = language
            if user_id is not None:
                choose_language(runtime.engine(), user_id, language)

    options = list(LANGUAGES)
    st.session_state[_PICKER_KEY] = current_language()
    st.selectbox(
        _("Language"),
        options,
        format_func=LANGUAGES.__getitem__,
        key=_PICKER_KEY,
        on_change=picked,
    )
