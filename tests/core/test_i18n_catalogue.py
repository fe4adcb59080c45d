"""The Spanish catalogue covers every marked string, and nothing it holds is stale.

Extracts with Babel exactly as `make messages` does (core/ and dashboard/, _(), N_() and
ngettext()), then reads core/locale/es/LC_MESSAGES/wanotify.po as core.i18n does.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from core.i18n import DOMAIN, LANGUAGES, LOCALE_DIR

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [language for language in LANGUAGES if language != "en"]
_FIELD = re.compile(r"\{[^{}]*\}")


@lru_cache(maxsize=1)
def extracted() -> frozenset[str | tuple[str, ...]]:
    """Every msgid marked in core/ and dashboard/ (a tuple for ngettext's two forms)."""
    found: set[str | tuple[str, ...]] = set()
    for folder in ("core", "dashboard"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder, [("**.py", "python")], keywords=DEFAULT_KEYWORDS
        ):
            found.add(message if isinstance(message, str) else tuple(message))
    return frozenset(found)


def catalogue(language: str) -> Catalog:
    with (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as handle:
        return read_po(handle, locale=language, domain=DOMAIN)


def test_extraction_finds_the_marked_strings() -> None:
    assert "Log in" in extracted()  # the login button (dashboard/login.py)
    assert len(extracted()) > 50


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_marked_string_has_a_translation(language: str) -> None:
    po = catalogue(language)
    missing = []
    for msgid in sorted(extracted(), key=str):
        entry = po.get(msgid if isinstance(msgid, str) else msgid[0])
        strings = (
            []
            if entry is None
            else ([entry.string] if isinstance(entry.string, str) else list(entry.string))
        )
        if entry is None or entry.fuzzy or not strings or not all(strings):
            missing.append(msgid)
    assert not missing, (
        f"{len(missing)} strings without a {language} translation (run `make messages`, "
        f"then translate them in core/locale/{language}/LC_MESSAGES/{DOMAIN}.po): {missing[:20]}"
    )


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_catalogue_holds_no_stale_strings(language: str) -> None:
    marked = {m if isinstance(m, str) else m[0] for m in extracted()}
    stale = sorted(
        str(m.id)
        for m in catalogue(language)
        if m.id and ((m.id if isinstance(m.id, str) else m.id[0]) not in marked)
    )
    assert not stale, f"no longer in the code (run `make messages`): {stale[:20]}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_every_placeholder(language: str) -> None:
    """A `{name}` lost or misspelt in a translation would raise KeyError on screen."""
    wrong = []
    for entry in catalogue(language):
        if not entry.id or entry.fuzzy:  # unused until translated again (reported above)
            continue
        ids = [entry.id] if isinstance(entry.id, str) else list(entry.id)
        strings = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        wanted = set(_FIELD.findall(ids[-1])) | set(_FIELD.findall(ids[0]))
        for text in strings:
            if text and not set(_FIELD.findall(text)) <= wanted:
                wrong.append((ids[0], text))
            if text and len(ids) == 1 and set(_FIELD.findall(text)) != wanted:
                wrong.append((ids[0], text))
    assert not wrong, wrong[:10]


@pytest.mark.parametrize("language", TRANSLATED)
def test_catalogue_header_names_its_language_and_plural_rule(language: str) -> None:
    po = catalogue(language)
    assert str(po.locale) == language
    assert po.num_plurals >= 2
