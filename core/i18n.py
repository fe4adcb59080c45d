"""The language a person reads wanotify in, and its text in that language.

`_()` marks a user-facing string and translates it (gettext catalogues kept with Babel:
`core/locale/<lang>/LC_MESSAGES/wanotify.po`, read at run time with Babel, so there is
no compile step and nothing to forget to build). `N_()` only marks a string that is
translated later, where it is shown (module-level constants). The locale lives in a
context variable: the dashboard sets it at the start of every rerun (the user's choice,
else the browser's Accept-Language), and core messages are translated when shown.

The English text is the message id. A translation missing from the catalogue reads in
English; tests/core/test_i18n_catalogue.py fails the build before that happens.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.pofile import read_po

DEFAULT_LOCALE = "en"
#: Languages with a full catalogue, and how each is named in its own language.
LANGUAGES: dict[str, str] = {"en": "English", "es": "Español"}
DOMAIN = "wanotify"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
_MAX_HEADER = 500  # an Accept-Language header longer than this is cut, not parsed whole

_current: ContextVar[str | None] = ContextVar("wanotify_locale", default=None)
#: Where to read the locale when this context never set one (a dashboard fragment's
#: rerun, which may run in a fresh context): the dashboard registers its session's.
_fallback: list[Callable[[], str | None]] = []


def normalize_locale(code: str | None) -> str | None:
    """`code` ("es", "es-MX", "es_mx") as a supported locale ("es", "es_MX"), or None.

    The language must have a catalogue; a region is kept (numbers and dates follow it)
    only when CLDR knows that language and region together.
    """
    if not code or len(code) > 35:
        return None
    parts = code.strip().replace("-", "_").split("_")
    language = parts[0].lower()
    if language not in LANGUAGES:
        return None
    if len(parts) > 1 and parts[-1].isalnum() and len(parts[-1]) in (2, 3):
        region = parts[-1].upper()
        try:
            Locale.parse(f"{language}_{region}")
        except (UnknownLocaleError, ValueError):
            return language
        return f"{language}_{region}"
    return language


def set_locale(code: str | None) -> None:
    """Read text in `code` ("en", "es", "es_MX") in this thread of work from now on;
    an unsupported or empty code means the default (English)."""
    _current.set(normalize_locale(code) or DEFAULT_LOCALE)


def set_locale_fallback(source: Callable[[], str | None] | None) -> None:
    """Read the locale from `source()` wherever `set_locale` was not called (None: stop)."""
    _fallback.clear()
    if source is not None:
        _fallback.append(source)


def current_locale() -> str:
    """The locale text is translated into and numbers and dates are formatted for."""
    found = _current.get()
    if found is None and _fallback:
        try:
            found = normalize_locale(_fallback[0]())
        except Exception:  # a source outside its session (no Streamlit run): default
            found = None
    return found or DEFAULT_LOCALE


def current_language() -> str:
    """The language part of the current locale ("es" for "es_MX")."""
    return current_locale().split("_")[0]


def negotiate(accept_language: str | None) -> str | None:
    """The first supported locale in a browser's Accept-Language header, or None.

    Weights (`;q=`) order the choices; malformed parts are skipped, never an error.
    """
    if not accept_language:
        return None
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language[:_MAX_HEADER].split(",")[:20]):
        tag, _sep, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        if weight > 0:
            choices.append((-weight, index, tag.strip()))
    for _weight, _index, tag in sorted(choices):
        found = normalize_locale(tag)
        if found:
            return found
    return None


def choose_locale(chosen: str | None, accept_language: str | None) -> str:
    """The locale to use: the user's chosen language (with the browser's region when the
    browser asks for the same language), else the browser's, else English."""
    browser = negotiate(accept_language)
    language = normalize_locale(chosen)
    if language is None:
        return browser or DEFAULT_LOCALE
    language = language.split("_")[0]
    if browser and browser.split("_")[0] == language:
        return browser
    return language


@dataclass(frozen=True)
class Catalogue:
    """One language's translated messages and its rule for choosing a plural form."""

    messages: dict[str | tuple[str, str], str | tuple[str, ...]] = field(default_factory=dict)
    plural: Callable[[int], int] = field(default=lambda n: int(n != 1))


@lru_cache(maxsize=8)
def catalogue(language: str) -> Catalogue:
    """The translated, non-fuzzy messages of `language`'s catalogue (empty for English)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == DEFAULT_LOCALE or not path.is_file():
        return Catalogue()
    with path.open("rb") as handle:
        po = read_po(handle, locale=language, domain=DOMAIN)
    found: dict[str | tuple[str, str], str | tuple[str, ...]] = {}
    for message in po:
        if not message.id or message.fuzzy:
            continue
        key = message.id if isinstance(message.id, str) else (message.id[0], message.id[1])
        text = message.string
        if isinstance(text, str) and text:
            found[key] = text
        elif isinstance(text, (tuple, list)) and all(text):
            found[key] = tuple(text)
    return Catalogue(found, gettext.c2py(po.plural_expr))


def _(message: str) -> str:
    """`message` in the current locale (the English original when it has no translation)."""
    text = catalogue(current_language()).messages.get(message)
    return text if isinstance(text, str) else message


def N_(message: str) -> str:
    """`message` unchanged, marked for the catalogue; translate it with `_()` where shown."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a message for `n` things ("1 message", "2 messages") in the current
    locale, by the catalogue's own plural rule."""
    found = catalogue(current_language())
    forms = found.messages.get((singular, plural))
    if isinstance(forms, tuple):
        return forms[min(found.plural(abs(n)), len(forms) - 1)]
    return singular if n == 1 else plural
