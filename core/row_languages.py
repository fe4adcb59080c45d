"""The language each row of a bulk send goes out in.

A row is sent in its own language: the file's `language` cell, else the language the
supplier directory keeps for that number, else the batch's default. It is sent only
when the template has an approved version in that language (`pick_language` finds
`es` for `es-ES` and the only regional variant for a bare code). A row whose language
has no such version is refused with that reason, unless the buyer chose explicitly to
send those rows in the default language; then it carries a warning saying so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from core.i18n import _
from core.templates.languages import pick_language

__all__ = ["LANGUAGE_CODE", "RowLanguage", "row_language"]

#: A language code as Meta and people write it: `pt`, `PT`, `pt-BR`, `es_419`, `fil`.
LANGUAGE_CODE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?")
#: How much of a cell a reason quotes.
_SHOWN = 20

Source = Literal["row", "supplier", "default"]


@dataclass(frozen=True)
class RowLanguage:
    """The language asked for (and where that came from), and what the row is sent in.

    `code` is the template version's language, or None when the row is refused
    (`error` says why). `warning` is set when the row goes out in the default language
    because the buyer chose so for languages without an approved version.
    """

    wanted: str
    source: Source
    code: str | None
    error: str | None = None
    warning: str | None = None


def row_language(
    cell: str | None,
    supplier_language: str | None,
    default: str,
    available: Iterable[str],
    *,
    fallback_to_default: bool = False,
) -> RowLanguage:
    """Decide a row's template language from its cell, its supplier's and the default.

    `available` are the languages of the template's approved versions (the default's
    among them). A cell that is not a language code is refused, never guessed.
    """
    codes = list(dict.fromkeys(available))
    text = (cell or "").strip()
    source: Source
    if text:
        if not LANGUAGE_CODE.fullmatch(text):
            return RowLanguage(
                text[:_SHOWN],
                "row",
                None,
                _("The language {value} is not a language code (such as es, pt or en_US)").format(
                    value=repr(text[:_SHOWN]) + ("…" if len(text) > _SHOWN else "")
                ),
            )
        wanted, source = text, "row"
    elif supplier_language and supplier_language.strip():
        wanted, source = supplier_language.strip(), "supplier"
    else:
        wanted, source = default, "default"
    code = pick_language(wanted, codes)
    if code is not None:
        return RowLanguage(wanted, source, code)
    if source == "default":  # the default itself always has its version
        return RowLanguage(wanted, source, default)
    if fallback_to_default:
        return RowLanguage(
            wanted,
            source,
            default,
            warning=_("Sent in {default}: the template has no approved {wanted} version").format(
                default=default, wanted=wanted
            ),
        )
    return RowLanguage(wanted, source, None, _missing(wanted, source, default, codes))


def _missing(wanted: str, source: Source, default: str, codes: list[str]) -> str:
    base = wanted.strip().replace("-", "_").partition("_")[0].lower()
    several = [c for c in codes if c.replace("-", "_").partition("_")[0].lower() == base]
    whose = _("the supplier's language") if source == "supplier" else _("the row's language")
    if len(several) > 1:
        return _(
            "The language {wanted} ({whose}) matches several versions of the template "
            "({versions}): write one of them"
        ).format(whose=whose, wanted=wanted, versions=", ".join(several))
    return _(
        "The template has no approved version in {wanted} ({whose}; approved: {versions}). "
        "Approve one, or choose to send such rows in {default}"
    ).format(wanted=wanted, whose=whose, versions=", ".join(codes) or "-", default=default)
