"""core.templates.languages: the same language's closest version, never another language."""

from __future__ import annotations

import pytest

from core.templates.languages import pick_language


@pytest.mark.parametrize(
    ("wanted", "available", "chosen"),
    [
        ("es", ["en_US", "es"], "es"),  # exact
        ("es_ES", ["es", "en_US"], "es"),  # regional -> the generic version
        ("es-es", ["es_ES", "es"], "es_ES"),  # spelled another way, still exact
        ("ES", ["en", "es"], "es"),
        ("es_CO", ["es_MX", "es"], "es"),  # the generic one beats another region
        ("es", ["es_MX"], "es_MX"),  # the only version of the language
        ("pt", ["pt_BR", "pt_PT"], None),  # two regions fit: a person chooses
        ("fr_FR", ["es", "en_US"], None),  # never another language
        ("", ["es"], None),
        ("  ", ["es"], None),
        ("es", [], None),
    ],
)
def test_pick_language(wanted: str, available: list[str], chosen: str | None) -> None:
    assert pick_language(wanted, available) == chosen
