"""Which of a template's languages to send when the one asked for is not there exactly.

Meta keys each approved template by an exact language code (`es`, `es_ES`, `es_MX`,
`en_US`...), while a supplier's or an ERP's language is often written another way
(`es-ES`, `ES`) or more precisely than the template (`es_ES` when only `es` exists).
Refusing such a PO notice helps nobody; sending it in another language would be wrong.
So the fallback stays inside the same language: the exact code, else the generic one,
else the only regional variant; anything ambiguous is left for a person to choose.
"""

from __future__ import annotations

from collections.abc import Iterable


def _canonical(code: str) -> str:
    base, _, region = code.strip().replace("-", "_").partition("_")
    return f"{base.lower()}_{region.upper()}" if region else base.lower()


def _base(code: str) -> str:
    return _canonical(code).partition("_")[0]


def pick_language(wanted: str, available: Iterable[str]) -> str | None:
    """The code among `available` to send for `wanted`, or None when there is none or
    several would fit (es_AR and es_MX for `es`)."""
    codes = list(dict.fromkeys(available))
    if not wanted or not wanted.strip():
        return None
    target = _canonical(wanted)
    exact = [c for c in codes if _canonical(c) == target]
    if exact:
        return exact[0]
    same = [c for c in codes if _base(c) == _base(target)]
    generic = [c for c in same if "_" not in _canonical(c)]
    if generic:
        return generic[0]
    return same[0] if len(same) == 1 else None
