"""Phone numbers typed by buyers: normalisation to E.164 and refusals a buyer understands."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from phonenumbers import PhoneNumber, PhoneNumberFormat, PhoneNumberType

from core.phones import (
    InvalidPhoneNumber,
    country_calling_code,
    display_phone,
    normalize_phone,
    wa_digits,
)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("612 34 56 78", "ES", "+34612345678"),
        ("+34 612 34 56 78", "ES", "+34612345678"),
        ("0034 622 333 444", "ES", "+34622333444"),
        ("0034 622 333 444", "US", "+34622333444"),  # 00 read as + when the region's IDD differs
        ("011 34 622 333 444", "US", "+34622333444"),
        ("612 555 111", "ES", "+34612555111"),
        ("+351 912 345 678", "ES", "+351912345678"),
        ("(+34) 612-34-56-78", "ES", "+34612345678"),
        ("612.34.56.78", "ES", "+34612345678"),
        ("91 123 45 67", "ES", "+34911234567"),  # a landline: valid, accepted
        ("\u200e+34\u00a0612\u202f34 56 78", "ES", "+34612345678"),  # copy-paste marks
        ("６１２ ３４５ ６７８", "ES", "+34612345678"),  # full-width digits
        ("٦١٢٣٤٥٦٧٨", "ES", "+34612345678"),  # Arabic-Indic digits
        ("07911 123456", "GB", "+447911123456"),
    ],
)
def test_accepts_the_formats_buyers_type(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


def test_default_region_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings

    assert normalize_phone("612 34 56 78") == "+34612345678"  # default ES
    monkeypatch.setenv("WHATSAPP_DEFAULT_REGION", "pt")
    get_settings.cache_clear()
    assert normalize_phone("912 345 678") == "+351912345678"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "The phone number is empty"),
        ("   ", "The phone number is empty"),
        (None, "The phone number is empty"),
        ("-- ()", "The phone number is empty"),
        ("+34 612", "+34 612 is too short for Spain"),
        ("+44 7700 900123", "+44 7700 900123 is not a valid phone number in United Kingdom"),
        ("612 34 56 78 ext 5", "contains letters"),
        ("1-800-FLOWERS", "contains letters"),
        ("abc", "contains letters"),
        ("612\n345678", "line break"),
        ("612\x00345678", "line break or another invisible character"),
        ("+999 1234567", "unknown country code"),
        ("+34+612345678", "'+' in the middle"),
        ("612#345678", "the character '#'"),
        ("+-", "has no digits"),
        ("1" * 41, "The phone number is too long"),
        ("6" * 10_000_000, "The phone number is too long"),
        ("+34 612 345 678 901 234", "too long for Spain"),
    ],
)
def test_refuses_with_a_reason(raw: str | None, message: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalize_phone(raw, "ES")  # type: ignore[arg-type]
    assert message in str(caught.value)
    assert len(str(caught.value)) < 160  # hostile input is never echoed whole


@pytest.mark.parametrize("raw", [12345678, b"612345678", ["612345678"], 6.1e8])
def test_refuses_values_that_are_not_text(raw: object) -> None:
    with pytest.raises(InvalidPhoneNumber, match="must be text"):
        normalize_phone(raw, "ES")  # type: ignore[arg-type]


def test_unknown_region_is_refused() -> None:
    with pytest.raises(InvalidPhoneNumber, match="not a known country code"):
        normalize_phone("612345678", "XX")
    assert isinstance(InvalidPhoneNumber("x"), ValueError)


def test_wa_digits_and_country_code() -> None:
    assert wa_digits("+34612345678") == "34612345678"
    assert country_calling_code("+34612345678") == "34"
    assert country_calling_code("+351912345678") == "351"
    assert country_calling_code("+14155550123") == "1"
    assert display_phone("+34612345678") == "+34 612 34 56 78"


@pytest.mark.parametrize(
    "bad", ["34612345678", "+34 612 345 678", "", "+0123456789", "+3461234567890123"]
)
def test_e164_helpers_refuse_other_forms(bad: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        wa_digits(bad)
    with pytest.raises(InvalidPhoneNumber):
        country_calling_code(bad)


@given(st.text(max_size=60))
def test_any_text_either_normalises_or_raises_invalid_phone(raw: str) -> None:
    try:
        e164 = normalize_phone(raw, "ES")
    except InvalidPhoneNumber as exc:
        assert str(exc)
    else:
        assert e164.startswith("+") and e164[1:].isdigit() and len(e164) <= 16
        assert normalize_phone(e164, "ES") == e164  # idempotent


# --- numbers as people write them (issue 11 item 6) ------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+34 (0)612 34 56 78", "+34612345678"),  # the trunk 0 Spain does not have
        ("+34 (0) 612 34 56 78", "+34612345678"),
        ("+34(0)612345678", "+34612345678"),
        ("0034 (0)612 34 56 78", "+34612345678"),
        ("(+34) (0)612 34 56 78", "+34612345678"),
        ("0034 612 34 56 78", "+34612345678"),
        ("(+34) 612 34 56 78", "+34612345678"),
        ("(0034) 612345678", "+34612345678"),
        ("+34.612.34.56.78", "+34612345678"),
        ("0034.612.345.678", "+34612345678"),
        ("+44 (0)20 7946 0958", "+442079460958"),  # UK: the 0 is the trunk prefix
        ("+49 (0)30 1234567", "+49301234567"),
        ("+39 (0)6 1234 5678", "+390612345678"),  # Italy: the 0 is part of the number
    ],
)
def test_reads_numbers_as_people_write_them(raw: str, expected: str) -> None:
    assert normalize_phone(raw, "ES") == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("+34 (0)612 34 56 7", "too short for Spain"),  # still not a Spanish number
        ("+34 (0)612 34 56 789", "too long for Spain"),
        ("+34 (0)(0)612 34 56 78", "too long for Spain"),  # one trunk prefix, not two
        ("+34 (1)612345678", "too long for Spain"),  # only a bracketed 0 is dropped
        ("+34 (0)112 34 56 78", "not a valid phone number in Spain"),
        ("+34 (0)", "too short"),
        ("(0)" * 13, "too long for Spain"),
        ("+34 (0)612\n345678", "line break"),
        ("+34 (0)612=34+56", "the character '='"),
    ],
)
def test_refuses_written_forms_that_are_no_valid_number(raw: str, message: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalize_phone(raw, "ES")
    assert message in str(caught.value)
    assert len(str(caught.value)) < 160


def _outcome(raw: str) -> str:
    """What normalize_phone makes of `raw`: the number, or the refusal's text."""
    try:
        return normalize_phone(raw, "ES")
    except InvalidPhoneNumber as exc:
        return f"refused: {exc}"


@given(st.text(alphabet="0123456789+ -.()/", max_size=48))
def test_plain_ascii_cells_read_as_the_character_by_character_path_reads_them(raw: str) -> None:
    # A cell of ASCII digits, spaces, separators and '+' skips the per-character
    # clean-up; a zero-width space (dropped by that clean-up) forces it: the same
    # number, or the same refusal.
    assert _outcome(raw) == _outcome(raw + "\u200b")


@pytest.mark.parametrize(
    "raw",
    ["", " ", "+", "++34 612 34 56 78", "34+612345678", "-.()/", "(+34) 612-34-56-78",
     "0034 622 333 444", "+34 (0)612 34 56 78", "1" * 41, " 612  34 56 78 ", "(0)" * 13,
     "612\t345678", "６１２ ３４５ ６７８"],
)  # fmt: skip
def test_hostile_cells_keep_their_outcome(raw: str) -> None:
    # Edge cases of the plain path, and cells (a tab, full-width digits) that take the
    # character-by-character path either way.
    assert _outcome(raw) == _outcome(raw + "\u200b")


def _parsed(read: object, text: str, region: str) -> object:
    """A reading of `text`, or the kind of refusal."""
    try:
        return read(text, region)  # type: ignore[operator]
    except phonenumbers.NumberParseException as exc:
        return f"refused: {exc.error_type}"


#: Regions with odd national rules: trunk prefixes with transforms (AR, MX, BR), Italian
#: leading zeros (IT), shared country codes (US, CA, RU, KZ, GB, GG), no trunk prefix (ES).
_REGIONS = ["ES", "IT", "AR", "MX", "BR", "US", "CA", "GB", "GG", "RU", "KZ", "DE", "FR",
            "IN", "CN", "JP", "AU", "NZ", "SG", "HK", "CI", "SM", "VA", "MA", "NG", "ID",
            "PT"]  # fmt: skip


@given(
    st.lists(st.text(alphabet="0123456789", min_size=1, max_size=9), min_size=1, max_size=4),
    st.sampled_from(_REGIONS),
)
def test_digit_groups_read_as_phonenumbers_reads_them(groups: list[str], region: str) -> None:
    # `_read` reads a national number in digit groups itself: the same PhoneNumber as
    # phonenumbers.parse, or the same refusal.
    from core.phones import _read

    text = " ".join(groups)
    assert _parsed(_read, text, region) == _parsed(phonenumbers.parse, text, region)


def test_digit_groups_of_every_region_read_as_phonenumbers_reads_them() -> None:
    from core.phones import _read

    samples = ["612345678", "612 34 56 78", "0612345678", "00", "000", "0034612345678",
               "34612345678", "1234", "20 7946 0958", "020 7946 0958", "011 54 9 11 1234 5678",
               "9 11 1234 5678", "0 11 15 1234 5678", "044 55 1234 5678", "1" * 17, "1" * 18,
               "3 3 3", "5 9", "59", "1 23", "06 698 12345", "8 800 555 35 35"]  # fmt: skip
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for text in samples:
            assert _parsed(_read, text, region) == _parsed(phonenumbers.parse, text, region), (
                region,
                text,
            )
        example = phonenumbers.example_number(region)
        for step in range(20 if example is not None else 0):
            assert example is not None
            number = PhoneNumber(
                country_code=example.country_code,
                national_number=(example.national_number or 0) + step * 7919,
                italian_leading_zero=example.italian_leading_zero,
            )  # the region's written form, with its spaces kept
            national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
            text = " ".join("".join(c for c in national if c.isdigit() or c == " ").split())
            assert _parsed(_read, text, region) == _parsed(phonenumbers.parse, text, region)


@given(st.integers(min_value=1, max_value=999), st.text(alphabet="0123456789", max_size=17))
def test_validity_is_judged_as_phonenumbers_judges_it(code: int, digits: str) -> None:
    from core.phones import _is_valid

    try:
        number = phonenumbers.parse(f"+{code}{digits}", None)
    except phonenumbers.NumberParseException:
        return
    assert _is_valid(number) == phonenumbers.is_valid_number(number)


def test_validity_of_every_region_s_numbers_of_every_type() -> None:
    from core.phones import _is_valid

    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            code, national = example.country_code, example.national_number or 0
            for number in (
                example,
                PhoneNumber(country_code=code, national_number=national + 1),
                PhoneNumber(country_code=code, national_number=national // 10),
                PhoneNumber(country_code=code, national_number=national, italian_leading_zero=True),
            ):
                assert _is_valid(number) == phonenumbers.is_valid_number(number), (region, kind)


@given(st.integers(min_value=0, max_value=999), st.text(alphabet="0123456789", max_size=18))
def test_possibility_is_judged_as_phonenumbers_judges_it(code: int, digits: str) -> None:
    from core.phones import _possible

    number = PhoneNumber(country_code=code, national_number=int(digits or "0"))
    number.italian_leading_zero = digits.startswith("0") or None
    assert _possible(number) == phonenumbers.is_possible_number_with_reason(number)


def test_possibility_of_every_region_s_numbers() -> None:
    from core.phones import _possible

    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number(region)
        if example is None:
            continue
        code, national = example.country_code, example.national_number or 0
        for number in (
            example,
            PhoneNumber(country_code=code, national_number=national * 10),
            PhoneNumber(country_code=code, national_number=national // 100),
        ):
            assert _possible(number) == phonenumbers.is_possible_number_with_reason(number)
