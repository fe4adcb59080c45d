"""Stop words: a supplier's reply that, on its own, means "stop messaging me".

A reply is a stop request when its whole text, folded (case, accents, punctuation and
spacing ignored), is one of the configured words or phrases: "STOP", "Baja.", "baixa!"
and "  Parar " are; "please don't stop the order" is not. Any language's words count
for every supplier (a supplier filed as Spanish who writes BAIXA means it too).

The lists come from the setting `CONSENT_STOP_WORDS` (`core.settings`), written as
`es=baja,parar,cancelar;pt=baixa,parar;en=stop,unsubscribe`; languages not named keep
their defaults below. A malformed value stops the process at start (fail closed).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

#: The defaults per language (Meta's and providers' commonly honoured words).
DEFAULT_STOP_WORDS: dict[str, tuple[str, ...]] = {
    "es": ("stop", "baja", "darme de baja", "parar", "cancelar", "no mas mensajes"),
    "pt": ("stop", "baixa", "parar", "cancelar", "sair", "descadastrar"),
    "en": ("stop", "unsubscribe", "stop all", "opt out", "optout"),
}
_MAX_WORDS = 200
_MAX_WORD = 60
_MAX_REPLY = 80  # longer replies are never a bare stop word (and are not folded)


def fold(text: str) -> str:
    """`text` lower case, without accents, punctuation or repeated spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = "".join(
        ch if ch.isalnum() else " " for ch in decomposed if not unicodedata.combining(ch)
    )
    return " ".join(kept.split())


def parse_stop_words(text: str | None) -> dict[str, tuple[str, ...]]:
    """The lists `text` configures, over the defaults; ValueError saying what is wrong."""
    lists = dict(DEFAULT_STOP_WORDS)
    if text is None or not text.strip():
        return lists
    for part in text.split(";"):
        if not part.strip():
            continue
        language, sep, words = part.partition("=")
        language = language.strip().lower()
        if not sep or not language.isalpha() or not 2 <= len(language) <= 3:
            raise ValueError(f"CONSENT_STOP_WORDS: {part.strip()[:40]!r} is not like es=baja,parar")
        folded = tuple(dict.fromkeys(f for w in words.split(",") if (f := fold(w))))
        if not folded:
            raise ValueError(f"CONSENT_STOP_WORDS: no words for {language!r}")
        if len(folded) > _MAX_WORDS or any(len(w) > _MAX_WORD for w in folded):
            raise ValueError(
                f"CONSENT_STOP_WORDS: at most {_MAX_WORDS} words of {_MAX_WORD} characters"
            )
        lists[language] = folded
    return lists


@lru_cache(maxsize=8)
def _words(text: str | None) -> frozenset[str]:
    return frozenset(w for words in parse_stop_words(text).values() for w in map(fold, words))


def stop_words(configured: str | None = None) -> frozenset[str]:
    """Every stop word of every language, folded (from `configured`, else the setting)."""
    if configured is None:
        from core.settings import get_settings  # read late: settings import this module

        configured = get_settings().consent_stop_words
    return _words(configured)


def is_stop_reply(text: str | None, words: frozenset[str] | None = None) -> bool:
    """True when the whole reply is a stop word (see the module's docstring)."""
    if not text or len(text) > _MAX_REPLY:
        return False
    return fold(text) in (words if words is not None else stop_words())
