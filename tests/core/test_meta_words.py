"""Meta's codes in words: one mapping for every page, Spanish and English, unknown codes kept."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.i18n import set_locale
from core.meta_words import (
    category_words,
    number_status_words,
    pricing_type_words,
    quality_words,
    throughput_words,
)


@pytest.fixture(autouse=True)
def _english_afterwards() -> Iterator[None]:
    yield
    set_locale("en")


def test_codes_read_as_words_in_english_and_spanish() -> None:
    set_locale("en")
    assert (quality_words("GREEN"), category_words("utility")) == ("High", "Utility")
    assert pricing_type_words("free_customer_service") == "free (customer service window)"
    assert (number_status_words("CONNECTED"), throughput_words("STANDARD")) == (
        "Connected",
        "standard",
    )
    set_locale("es")
    assert (quality_words("red"), category_words("MARKETING")) == ("Baja", "Marketing")
    assert (category_words("utility"), pricing_type_words("regular")) == ("Utilidad", "con cargo")
    assert number_status_words("FLAGGED") == "Marcado"


@pytest.mark.parametrize(
    ("code", "shown"),
    [(None, "—"), ("", "—"), ("NEW_THING", "New Thing"), (" green ", "High")],
)
def test_missing_and_unknown_codes_are_shown_not_dropped(code: str | None, shown: str) -> None:
    set_locale("en")
    assert quality_words(code) == shown


def test_rejection_reasons_in_words_keep_metas_code() -> None:
    from core.meta_words import rejection_words

    assert rejection_words("INCORRECT_CATEGORY") == (
        "the category does not match the content (INCORRECT_CATEGORY)"
    )
    assert rejection_words("SOMETHING_NEW") == "SOMETHING_NEW"
    assert rejection_words(None) == "—"
