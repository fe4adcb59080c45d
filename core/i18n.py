"""The language a person reads wanotify in, and its text in that language.

Skeleton: `_()` marks a user-facing string for translation (gettext via Babel); the
i18n work fills in catalogue loading and locale choice. Use it for every new string a
person reads (dashboard pages, charts, errors shown in the UI).
"""

from __future__ import annotations

from contextvars import ContextVar

DEFAULT_LOCALE = "en"
_current: ContextVar[str] = ContextVar("wanotify_locale", default=DEFAULT_LOCALE)


def set_locale(code: str) -> None:
    """Read text in `code` ("en", "es") in this thread of work from now on."""
    _current.set(code)


def current_locale() -> str:
    """The locale text is translated into here."""
    return _current.get()


def _(message: str) -> str:
    """`message` in the current locale (the English original until catalogues load)."""
    return message
