"""Amounts: parsing what buyers type without guessing, formatting for the supplier's language."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import (
    InvalidAmount,
    amount_1000,
    check_amount,
    format_amount,
    normalize_currency,
    parse_amount,
)

pytestmark = pytest.mark.clock  # decides by dates or ages: also run a year ahead


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234.50", "1234.50"),
        ("1.234,50", "1234.50"),
        ("1,234.50", "1234.50"),
        ("318", "318"),
        ("318.00", "318.00"),
        ("€ 1.234,50", "1234.50"),
        ("1 234,50 €", "1234.50"),
        ("1\u202f234,50\u00a0€", "1234.50"),
        ("USD 1,234.50", "1234.50"),
        ("R$ 10,00", "10.00"),
        ("1.234.567", "1234567"),
        ("1,234,567.89", "1234567.89"),
        ("1234,5", "1234.5"),
        ("0", "0"),
        ("+5", "5"),
        ("1000", "1000"),
    ],
)
def test_parses_unambiguous_amounts(text: str, expected: str) -> None:
    amount = parse_amount(text)
    assert amount == Decimal(expected)
    assert isinstance(amount, Decimal)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("abc", "not an amount"),
        ("", "empty"),
        ("   ", "empty"),
        ("1e5", "not an amount"),
        ("NaN", "not an amount"),
        ("Infinity", "not an amount"),
        ("-5", "negative"),
        ("(5)", "negative"),
        ("−5", "negative"),  # unicode minus
        ("1.2.3", "not grouped by thousands"),
        ("12,34,567", "grouped oddly"),
        ("1,234.5.6", "separator after the decimal"),
        ("9" * 30, "larger than"),
        ("1" * 100, "too long"),
        ("EUR", "not an amount"),
        ("12 EUR 5", "not an amount"),
    ],
)
def test_refuses_what_is_not_an_amount(text: str, reason: str) -> None:
    with pytest.raises(InvalidAmount, match=reason):
        parse_amount(text)


@pytest.mark.parametrize("text", ["2.750", "2,750", "1.125"])
def test_three_decimals_after_one_separator_is_ambiguous(text: str) -> None:
    with pytest.raises(InvalidAmount) as caught:
        parse_amount(text)
    message = str(caught.value)
    assert message.startswith(f"ambiguous: {text} may mean")
    assert "choose the decimal separator" in message


def test_ambiguity_message_suggests_unambiguous_spellings() -> None:
    with pytest.raises(InvalidAmount) as caught:
        parse_amount("2.750")
    assert str(caught.value) == (
        "ambiguous: 2.750 may mean 2750 or 2.75; write 2750.00 or 2,75, "
        "or choose the decimal separator"
    )


def test_explicit_decimal_separator_resolves_ambiguity() -> None:
    assert parse_amount("2.750", ".") == Decimal("2.75")
    assert parse_amount("2.750", ",") == Decimal("2750")
    assert parse_amount("2,750", ",") == Decimal("2.75")
    assert parse_amount("2,750", ".") == Decimal("2750")
    assert parse_amount("1.234,50", ",") == Decimal("1234.50")
    with pytest.raises(InvalidAmount, match="separator after the decimal dot"):
        parse_amount("1.234,50", ".")
    with pytest.raises(ValueError, match="decimal must be"):
        parse_amount("1", "x")  # type: ignore[arg-type]


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidAmount, match="must be text"):
        parse_amount(12.5)  # type: ignore[arg-type]


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False))
def test_round_trips_amounts_written_with_two_decimals(amount: Decimal) -> None:
    assert parse_amount(f"{amount:.2f}") == amount
    assert parse_amount(f"{amount:,.2f}") == amount  # 1,234.50
    spanish = f"{amount:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    assert parse_amount(spanish) == amount  # 1.234,50


@given(st.text(max_size=50))
def test_any_text_parses_or_raises_invalid_amount(text: str) -> None:
    try:
        amount = parse_amount(text)
    except InvalidAmount as exc:
        assert str(exc)
    else:
        assert amount.is_finite() and amount >= 0


def test_format_amount_per_language() -> None:
    assert format_amount(Decimal("1234.50"), "EUR", "es") == "1.234,50 €"
    assert format_amount(Decimal("1234.50"), "EUR", "en") == "€1,234.50"
    assert format_amount(Decimal("1234.5"), "GBP", "en_GB") == "£1,234.50"
    assert format_amount(Decimal("980.10"), "EUR", "pt_PT") == "980,10 €"
    assert format_amount(Decimal("1234"), "JPY", "en") == "¥1,234"
    assert "\u00a0" not in format_amount(Decimal("1234.50"), "EUR", "fr")
    assert format_amount(Decimal("10"), "EUR", "not-a-language") == "€10.00"


def test_amount_1000() -> None:
    assert amount_1000(Decimal("1234.50")) == 1234500
    assert amount_1000(Decimal("0.001")) == 1
    assert amount_1000(Decimal("2750")) == 2750000
    with pytest.raises(InvalidAmount):
        amount_1000(Decimal("0.0001"))


def test_check_amount() -> None:
    assert check_amount("1234.50", "EUR") == Decimal("1234.50")
    assert check_amount(Decimal("1.125"), "BHD") == Decimal("1.125")  # 3-decimal currency
    assert check_amount(7, "EUR") == Decimal(7)
    for bad, reason in [
        (Decimal("NaN"), "finite"),
        (Decimal("Infinity"), "finite"),
        (1.5, "float"),
        (True, "number"),
        (None, "number"),
        (Decimal("-1"), "negative"),
        (Decimal("1.234"), "more decimals than EUR"),
        (Decimal("1.5"), "more decimals than JPY"),
        ("1,234.50", "not an amount"),
        ("1e3", "not an amount"),
        ("NaN", "not an amount"),
    ]:
        currency = "JPY" if "JPY" in reason else "EUR"
        with pytest.raises(InvalidAmount, match=reason):
            check_amount(bad, currency)


def test_normalize_currency() -> None:
    assert normalize_currency(" eur ") == "EUR"
    assert normalize_currency("usd") == "USD"
    for bad in ["XYZ", "€", "EURO", "", None, 978, "ÉUR"]:
        with pytest.raises(InvalidAmount):
            normalize_currency(bad)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("XXX", "not a currency any country pays in"),  # ISO "no currency"
        ("XTS", "not a currency any country pays in"),  # ISO's code for tests
        ("XAU", "not a currency any country pays in"),  # gold
        ("DEM", "not a currency any country pays in"),  # withdrawn (euro)
        ("ZZZ", "not a currency code"),
        ("EU R", "not a currency code"),
        ("'; DROP TABLE suppliers; --", "not a currency code"),
    ],
)
def test_codes_nobody_pays_in_are_refused(code: str, reason: str) -> None:
    with pytest.raises(InvalidAmount, match=reason):
        normalize_currency(code)


@pytest.mark.parametrize("code", ["EUR", "USD", "GBP", "MXN", "BRL", "XOF", "XAF", "XCD", "KWD"])
def test_currencies_in_use_are_accepted(code: str) -> None:
    assert normalize_currency(code.lower()) == code


@pytest.mark.parametrize(
    ("amount", "currency", "language", "expected"),
    [
        ("1234.50", "EUR", "es", "1.234,50 €"),
        ("1234.50", "EUR", "en", "€1,234.50"),
        ("1234.50", "USD", "en_US", "$1,234.50"),
        ("1234.50", "USD", "es", "1.234,50 US$"),
        ("1234.50", "MXN", "es_MX", "$1,234.50"),
        ("1234.50", "BRL", "pt_BR", "R$ 1.234,50"),
        ("1234", "JPY", "en", "¥1,234"),
        ("1234.567", "KWD", "en", "KWD 1,234.567"),
        ("1234.50", "EUR", "xx", "€1,234.50"),  # an unknown language: English
    ],
)
def test_the_amount_is_written_as_the_suppliers_language_writes_it(
    amount: str, currency: str, language: str, expected: str
) -> None:
    assert format_amount(Decimal(amount), currency, language) == expected


def test_errors_about_huge_amounts_stay_short() -> None:
    with pytest.raises(InvalidAmount) as caught:
        check_amount(Decimal("9" * 5000), "EUR")
    assert len(str(caught.value)) < 120
    assert "larger than any amount" in str(caught.value)


def test_format_amount_writes_what_babel_writes_across_locales_and_currencies() -> None:
    """The amount formatter works out the pattern, digits and currency sign once per
    currency and language (`_CurrencyFormat`); what it writes must be Babel's own
    `format_currency` text, for every currency in use, in languages with odd patterns
    (right-to-left, Indian grouping, currency names, no decimals) and odd amounts."""
    from babel.numbers import format_currency

    from core.money import _currency_format, _locale, currencies_in_use

    languages = ["es", "en_US", "pt_BR", "de_CH", "fr", "ar", "ar_EG", "hi", "bn", "ja", "fa", "he",
                 "my", "ckb", "sw", "zh_Hant", "nl", "ps", "xx_YY"]  # fmt: skip
    amounts = ["0", "1", "0.5", "1234.5", "1234567.891", "12345678901.2", "0.001",
               "99999999999999", "-5", "1E+3", "1.000", "Infinity"]  # fmt: skip
    for language in languages:
        for currency in sorted(currencies_in_use()):
            fast = _currency_format(currency, language)
            for text in amounts:
                amount = Decimal(text)
                assert fast.format(amount) == format_currency(
                    amount, currency, locale=_locale(language)
                ), (language, currency, text)


def test_normalize_currency_remembers_codes_not_refusals() -> None:
    assert normalize_currency("eur") == normalize_currency("eur") == "EUR"
    for _attempt in range(2):
        with pytest.raises(InvalidAmount, match="not a currency any country pays in"):
            normalize_currency("xxx")


def test_format_amount_plain_path_writes_what_babel_writes() -> None:
    """`format_amount` groups a plain pattern's number itself (`_CurrencyFormat.text`);
    its text must be Babel's `format_currency` text as `_spaced` leaves it, for every
    currency in use, in many languages (a quoted or digit-bearing affix or symbol takes
    Babel's path), for amounts of every size, scale and exponent."""
    from babel.numbers import format_currency

    from core.money import _currency_format, _locale, _spaced, currencies_in_use

    languages = ["es", "en_US", "pt_BR", "de_CH", "fr", "ar", "ar_EG", "hi", "en_IN", "bn", "ja",
                 "fa", "he", "my", "ckb", "sw", "zh_Hant", "nl", "ps", "de", "it", "ru", "tr",
                 "fi", "ko", "th", "ur", "sr", "ro", "gsw", "xx_YY"]  # fmt: skip
    amounts = ["0", "1", "0.5", "1234.5", "1234567.891", "12345678901.2", "0.001", "0.00",
               "99999999999999", "1E+3", "1.000", "123", "12345", "123456.78", "7.125",
               "1000000000000", "5.555", "0.0005", "1E-7", "123456789012345678901234.5",
               "-0", "-5", "Infinity", "NaN"]  # fmt: skip
    plain = 0
    for language in languages:
        for currency in sorted(currencies_in_use()):
            fast = _currency_format(currency, language)
            plain += fast.plain
            for text in amounts:
                amount = Decimal(text)
                try:
                    expected = _spaced(format_currency(amount, currency, locale=_locale(language)))
                except ArithmeticError as exc:
                    expected = type(exc).__name__
                try:
                    written = fast.text(amount)
                except ArithmeticError as exc:
                    written = type(exc).__name__
                assert written == expected, (language, currency, text)
    assert plain > 1000  # the plain path is the usual one


@given(st.decimals(min_value=0, max_value=Decimal("1E+12"), allow_nan=False, places=3))
def test_format_amount_plain_path_on_any_amount(amount: Decimal) -> None:
    from babel.numbers import format_currency

    from core.money import _currency_format, _locale, _spaced

    for currency, language in (("EUR", "es"), ("USD", "en_US"), ("INR", "hi"), ("JPY", "ja"),
                               ("KWD", "ar"), ("CHF", "de_CH"), ("EUR", "fr")):  # fmt: skip
        expected = _spaced(format_currency(amount, currency, locale=_locale(language)))
        assert _currency_format(currency, language).text(amount) == expected


def _read(parse: object, text: object, decimal: str) -> str:
    """What an amount reader makes of `text`: the amount, or the refusal's reason."""
    try:
        return f"amount: {parse(text, decimal)!r}"  # type: ignore[operator]
    except (InvalidAmount, ValueError) as exc:
        return f"refused: {type(exc).__name__}: {exc}"


@given(
    st.text(alphabet="0123456789.,, +-€$E \u00a0\u202f'٣", max_size=40),
    st.sampled_from(["auto", ".", ",", "x"]),
)
def test_parse_amount_plain_path_agrees_with_the_full_path(text: str, decimal: str) -> None:
    # A plain cell ("1234", "1234,50") skips the currency, sign and grouping steps; any
    # text in any mode must read as the step-by-step path reads it.
    from core.money import _parse_amount

    assert _read(parse_amount, text, decimal) == _read(_parse_amount, text, decimal)


@pytest.mark.parametrize(
    "text",
    ["0", "00012", "1234", "1234,5", "1234.50", "1234,500", "1,234", "1.2", " 7,25 ", "9" * 13,
     "9" * 12 + ",99", "1" + "0" * 12, "1" + "0" * 12 + ",01", "9" * 30, "9" * 31, "1,", ",5",
     "1.2.3", "12,34,56", "", " ", "٣", "1\u00a0234", "+1", "-1", "1e3"],
)  # fmt: skip
@pytest.mark.parametrize("decimal", ["auto", ".", ",", "?"])
def test_parse_amount_plain_path_agrees_on_edge_cells(text: str, decimal: str) -> None:
    from core.money import _parse_amount

    assert _read(parse_amount, text, decimal) == _read(_parse_amount, text, decimal)


def _decimals_by_exponent(amount: Decimal, currency: str) -> str:
    """check_amount's decimals rule as the normalized exponent states it."""
    from core.money import _precision

    try:
        checked = check_amount(amount, currency)
    except InvalidAmount as exc:
        if "more decimals" not in str(exc):
            return f"refused: {exc}"
        checked = None
    exponent = amount.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    expected = -exponent > _precision(currency)
    return f"{checked is None} {expected}"


@given(
    st.decimals(min_value=0, max_value=Decimal("1E+12"), allow_nan=False, places=None),
    st.sampled_from(["EUR", "JPY", "KWD", "CLF", "USD", "UYW"]),
)
def test_the_decimals_rule_is_the_normalized_exponent(amount: Decimal, currency: str) -> None:
    outcome = _decimals_by_exponent(amount, currency)
    assert outcome.startswith("refused") or outcome in ("True True", "False False")


@pytest.mark.parametrize(
    "amount",
    ["0", "0E-30", "0E+5", "1E+11", "1.5", "1.50", "1.505", "1.5000000000000000000000001",
     "999999999999.99", "1E-1000", "12.3450", "-0", "-0.001"],
)  # fmt: skip
def test_the_decimals_rule_on_edge_amounts(amount: str) -> None:
    for currency in ("EUR", "JPY", "KWD"):
        outcome = _decimals_by_exponent(Decimal(amount), currency)
        assert outcome.startswith("refused") or outcome in ("True True", "False False")
