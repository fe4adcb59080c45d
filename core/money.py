"""Money: amounts as `Decimal`, read from what buyers type and shown in the supplier's language.

Two jobs. `parse_amount` reads an amount typed in a spreadsheet or a form ("1.234,50",
"€ 1,234.50", "318") and refuses to guess when the text could mean two different sums
("2.750": two thousand seven hundred and fifty, or two point seven five?). `format_amount`
writes an amount the way the template's language writes it (es "1.234,50 €",
en "€1,234.50"), the `fallback_value` Meta shows the supplier.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.numbers import (
    format_currency,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_quantum,
    get_decimal_symbol,
    get_group_symbol,
    get_territory_currencies,
    is_currency,
)

from core.i18n import _

DecimalMark = Literal["auto", ".", ","]

#: Longest amount text considered; anything longer is not an amount a person typed.
MAX_AMOUNT_CHARS = 40
#: Largest amount accepted: far above any PO, far below what breaks `amount_1000`.
MAX_AMOUNT = Decimal("1000000000000")

_SYMBOLS = "€$£¥₹₽₺₩₪฿₫₱₦₴₲₡₵₸¢"
#: A currency code or symbol before or after the number: "EUR", "€", "US$", "R$".
_CURRENCY_PREFIX = re.compile(rf"^(?:[A-Za-z]{{3}}|[A-Za-z]{{0,2}}[{_SYMBOLS}])")
_CURRENCY_SUFFIX = re.compile(rf"(?:[A-Za-z]{{3}}|[{_SYMBOLS}])$")
_GROUP_SPACES = re.compile(r"[\s\u00a0\u202f\u2009']+")  # spaces, NBSPs, Swiss apostrophes
_NUMBER = re.compile(r"[0-9][0-9.,]*")
_PLAIN_AMOUNT = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,6})?")
#: Digits, and maybe one separator with one or two decimals after it: read the same in
#: auto mode and in the separator's own mode (`parse_amount`'s plain path).
_SIMPLE_AMOUNT = re.compile(r"([0-9]{1,30})(?:([.,])([0-9]{1,2}))?")
_MINUS = ("-", "\u2212", "(")
#: A currency written in letters touching the number, before or after it.
_LETTERS_THEN_DIGIT = re.compile(r"^([^\W\d_]+)(\d)")
_DIGIT_THEN_LETTERS = re.compile(r"(\d)([^\W\d_]+)$")


class InvalidAmount(ValueError):
    """Text that is not an amount (or is ambiguous); the message says why."""


def parse_amount(text: str, decimal: DecimalMark = "auto") -> Decimal:
    """The non-negative amount in `text`, or InvalidAmount with a reason a buyer understands.

    `decimal` is the decimal separator: "." or ",", or "auto" to infer it. In auto mode a
    single separator followed by exactly three digits ("2.750", "2,750") is ambiguous and
    refused rather than guessed; so is a number with several separators of one kind and
    a final group of fewer than three digits.
    """
    if not isinstance(text, str):
        raise InvalidAmount(_("The amount must be text"))
    if decimal in ("auto", ".", ",") and (simple := _SIMPLE_AMOUNT.fullmatch(text.strip())):
        # The usual cell, "1234" or "1234,50": no sign, currency, grouping or ambiguity
        # for the steps below to find (tests compare both paths on hostile text).
        whole, mark, fraction = simple.groups()
        if mark is None or decimal in ("auto", mark):
            amount = Decimal(f"{whole}.{fraction}" if mark else whole)
            if amount <= MAX_AMOUNT:
                return amount
    return _parse_amount(text, decimal)


def _parse_amount(text: str, decimal: DecimalMark) -> Decimal:
    """`parse_amount` step by step, for any text."""
    raw = text.strip()
    if not raw:
        raise InvalidAmount(_("The amount is empty"))
    if len(raw) > MAX_AMOUNT_CHARS:
        raise InvalidAmount(_("The amount is too long to be an amount"))
    if any(sign in raw for sign in _MINUS):
        raise InvalidAmount(_("{raw} is negative; a PO total must be zero or more").format(raw=raw))
    unmarked = _CURRENCY_SUFFIX.sub("", _CURRENCY_PREFIX.sub("", raw).strip()).strip()
    compact = _GROUP_SPACES.sub("", unmarked).removeprefix("+")
    if not _NUMBER.fullmatch(compact):
        raise InvalidAmount(
            _("{raw} is not an amount (write it like 1234.50)").format(raw=repr(raw))
        )
    mark = _decimal_mark(raw, compact) if decimal == "auto" else decimal
    if mark not in (".", ","):
        raise ValueError(f"decimal must be 'auto', '.' or ',', not {decimal!r}")
    grouping = "," if mark == "." else "."
    integer, _mark, fraction = compact.partition(mark)
    if mark in fraction or grouping in fraction:
        raise InvalidAmount(
            _("{raw} has a separator after the decimal {mark}").format(raw=raw, mark=_name(mark))
        )
    if grouping in integer and not _well_grouped(integer.split(grouping)):
        raise InvalidAmount(
            _("{raw} has digits grouped oddly around the {mark}").format(
                raw=raw, mark=_name(grouping)
            )
        )
    digits = integer.replace(grouping, "") + (f".{fraction}" if fraction else "")
    amount = Decimal(digits)  # digits and at most one dot: always a valid Decimal
    if amount > MAX_AMOUNT:
        raise InvalidAmount(_("{raw} is larger than any PO total wanotify accepts").format(raw=raw))
    return amount


def _decimal_mark(raw: str, compact: str) -> str:
    """The decimal separator of an amount in auto mode; ambiguity is an InvalidAmount."""
    dots, commas = compact.count("."), compact.count(",")
    if dots and commas:  # the later one is the decimal mark: 1.234,50 / 1,234.50
        return "," if compact.rfind(",") > compact.rfind(".") else "."
    if not dots and not commas:
        return "."
    mark = "." if dots else ","
    last_group = compact.rsplit(mark, 1)[1]
    if dots + commas > 1:  # 1.234.567 or 1,234,567: only a grouping separator repeats
        if len(last_group) == 3:
            return "," if mark == "." else "."
        raise InvalidAmount(
            _("{raw} repeats the {mark} but is not grouped by thousands").format(
                raw=raw, mark=_name(mark)
            )
        )
    if len(last_group) == 3:
        whole = compact.replace(mark, "")
        head, tail = compact.split(mark)[0], last_group.rstrip("0") or "0"
        as_decimal = f"{head}.{tail}"
        hint = (
            _("{a} or {b}").format(a=f"{whole}.00", b=f"{head},{tail}")
            if len(tail) < 3
            else f"{whole}.00"
        )
        raise InvalidAmount(
            _(
                "ambiguous: {raw} may mean {whole} or {decimal}; write {hint}, or choose the "
                "decimal separator"
            ).format(raw=raw, whole=whole, decimal=as_decimal, hint=hint)
        )
    return mark


def _well_grouped(groups: list[str]) -> bool:
    return 1 <= len(groups[0]) <= 3 and all(len(group) == 3 for group in groups[1:])


def _name(mark: str) -> str:
    return _("comma") if mark == "," else _("dot")


def normalize_currency(code: object) -> str:
    """The ISO 4217 code (upper case) for `code`, or InvalidAmount naming the problem.

    Only currencies some country pays in today are accepted: ISO also lists codes that
    no invoice is written in (XXX "no currency", XTS for tests, XAU gold, XDR, CLF) and
    withdrawn ones (DEM, VEF); a PO total in one of those is a mistake upstream.
    """
    if not isinstance(code, str) or not code.strip():
        raise InvalidAmount(_("The currency is missing (use an ISO code such as EUR)"))
    if code in _known_currencies:  # a file repeats a few codes 100,000 times
        return _known_currencies[code]
    upper = code.strip().upper()
    if len(upper) != 3 or not upper.isascii() or not upper.isalpha() or not is_currency(upper):
        raise InvalidAmount(
            _("{code} is not a currency code (use e.g. EUR, USD)").format(
                code=repr(code.strip()[:20])
            )
        )
    if upper not in currencies_in_use():
        raise InvalidAmount(
            _("{code} is not a currency any country pays in today (use e.g. EUR, USD)").format(
                code=upper
            )
        )
    if len(_known_currencies) < 1_000:
        _known_currencies[code] = upper
    return upper


#: Currency cells already accepted, as written -> their code (refusals are never kept:
#: their text is in the reader's language).
_known_currencies: dict[str, str] = {}


@lru_cache(maxsize=1)
def currencies_in_use() -> frozenset[str]:
    """ISO 4217 codes that are legal tender in some territory today (from CLDR via Babel)."""
    today = datetime.now(UTC).date()
    territories = get_global("territory_currencies").keys()
    return frozenset(
        code
        for territory in territories
        for code in get_territory_currencies(territory, today, tender=True, non_tender=False)
    )


def check_amount(amount: object, currency: str) -> Decimal:
    """`amount` as a finite, non-negative Decimal with no more decimals than the currency has.

    Accepts a Decimal, an int or plain text ("1234.50"); refuses floats (they lose
    cents), NaN and infinities, negatives and fractions of a cent.
    """
    if isinstance(amount, float):
        raise InvalidAmount("The amount must be a Decimal or text, not a float")
    if isinstance(amount, bool):
        raise InvalidAmount("The amount must be a number")
    if isinstance(amount, int):
        amount = Decimal(amount)
    if isinstance(amount, str):
        text = amount.strip()
        if not _PLAIN_AMOUNT.fullmatch(text):
            raise InvalidAmount(f"{text[:MAX_AMOUNT_CHARS]!r} is not an amount like 1234.50")
        amount = Decimal(text)
    if not isinstance(amount, Decimal):
        raise InvalidAmount("The amount must be a number")
    if not amount.is_finite():
        raise InvalidAmount("The amount is not a finite number")
    if amount < 0:
        raise InvalidAmount(f"{_shown(amount)} is negative; an amount must be zero or more")
    if amount > MAX_AMOUNT:
        raise InvalidAmount(f"{_shown(amount)} is larger than any amount wanotify accepts")
    digits = _precision(currency)
    # More decimals than the currency has (as the normalized exponent says) exactly when
    # rounding to them changes the amount: finite, at most 13 + 4 digits, never inexact.
    if amount.quantize(_quantum(digits)) != amount:
        raise InvalidAmount(f"{_shown(amount)} has more decimals than {currency} allows ({digits})")
    return amount


@lru_cache(maxsize=512)
def _precision(currency: str) -> int:
    """The currency's decimals (Babel's `get_currency_precision`), looked up once."""
    return get_currency_precision(currency)


@lru_cache(maxsize=16)
def _quantum(digits: int) -> Decimal:
    """The smallest step with `digits` decimals: Decimal("0.01") for 2."""
    return Decimal(1).scaleb(-digits)


def _shown(amount: Decimal) -> str:
    """An amount for an error message, cut short if it is absurdly long (hostile input
    must not fill logs and replies with thousands of digits)."""
    text = str(amount)
    return text if len(text) <= MAX_AMOUNT_CHARS else f"{text[:MAX_AMOUNT_CHARS]}... (an amount)"


def amount_1000(amount: Decimal) -> int:
    """The amount times 1000 as an integer: the Cloud API's `currency.amount_1000`."""
    scaled = amount * 1000
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(f"{_shown(amount)} has more than three decimals")
    return int(scaled)


def format_amount(amount: Decimal, currency: str, language: str) -> str:
    """The amount as the template's language writes it: es "1.234,50 €", en "€1,234.50".

    `language` is a Meta template language code ("es", "en_US", "pt_BR"); unknown codes
    fall back to English. Non-breaking spaces become plain spaces so the text is safe
    in a template parameter and predictable in previews. A currency shown by its letters
    is kept apart from the digits ("KWD 1,234.567", not "KWD1,234.567"), as CLDR's
    currency spacing asks and Babel does not do.
    """
    return _currency_format(currency, language).text(amount)


def _spaced(text: str) -> str:
    """Babel's currency text as `format_amount` writes it: non-breaking spaces plain, a
    currency in letters apart from the digits."""
    text = text.replace("\u00a0", " ").replace("\u202f", " ")
    return _LETTERS_THEN_DIGIT.sub(r"\1 \2", _DIGIT_THEN_LETTERS.sub(r"\1 \2", text))


class _CurrencyFormat:
    """Babel's `format_currency(amount, currency, locale=...)` (standard format, the
    currency's digits, grouping, latin digits) with what does not depend on the amount
    worked out once: the pattern, the digits and the prefix and suffix with the currency
    sign written in. Babel spends most of a call on those (the currency's plural name is
    looked up on every call, used or not); a 100,000-row file formats 100,000 amounts.

    Anything unusual (a negative amount, an infinity, a pattern naming the currency by
    its plural name, scientific or significant-digit patterns) goes through Babel itself,
    and tests compare the two across locales and currencies.
    """

    def __init__(self, currency: str, locale: Locale) -> None:
        self.currency, self.locale = currency, locale
        self.pattern = locale.currency_formats["standard"]
        prefix, suffix = self.pattern.prefix[0], self.pattern.suffix[0]
        self.fast = not (
            "¤¤¤" in prefix + suffix or self.pattern.exp_prec or "@" in self.pattern.pattern
        )
        if self.fast:
            self.prefix, self.suffix = (self._affix(prefix), self._affix(suffix))
            self.frac_prec = (get_currency_precision(currency),) * 2
        self.plain = self.fast and self._plain_parts()

    def _plain_parts(self) -> bool:
        """Work out `text`'s plain path: the affixes and the locale's symbols as
        `_spaced` leaves them, when nothing in them is quoted (Babel's unquoting could
        then pair quotes across the number) or a digit (the letters-and-digits spacing
        is then decided by the affix and its side of the number alone)."""
        if self.pattern.number_pattern == "":
            return False
        group = get_group_symbol(self.locale, numbering_system="latn")
        point = get_decimal_symbol(self.locale, numbering_system="latn")
        parts = (self.prefix, self.suffix, group, point)
        if any("'" in part or any(char.isdigit() for char in part) for part in parts):
            return False
        # The number always starts and ends with a digit ("0" stands for it): a currency
        # in letters touching it is kept apart, as `_spaced` does on the whole text.
        self.plain_prefix = _spaced(self.prefix + "0")[:-1]
        self.plain_suffix = _spaced("0" + self.suffix)[1:]
        self.group = _spaced(group)
        self.point = _spaced(point)
        self.quantum = get_decimal_quantum(self.frac_prec[1])
        return True

    def text(self, amount: Decimal) -> str:
        """The amount as `format_amount` writes it: `format`'s text, `_spaced`.

        For a finite non-negative amount in a plain pattern the number is grouped here
        with the symbols worked out once (NumberPattern's `_quantize_value`, `_format_int`
        and `_format_frac` step by step, without their per-call symbol look-ups); tests
        compare it with Babel's `format_currency` across currencies, locales and amounts.
        """
        if not self.plain or not amount.is_finite() or amount.is_signed():
            return _spaced(self.format(amount))
        pattern = self.pattern
        rounded = amount.scaleb(pattern.scale).normalize().quantize(self.quantum)
        whole, _point, fraction = f"{rounded:f}".partition(".")
        if len(whole) < pattern.int_prec[0]:
            whole = "0" * (pattern.int_prec[0] - len(whole)) + whole
        size, grouped = pattern.grouping[0], ""
        while len(whole) > size:
            grouped = self.group + whole[-size:] + grouped
            whole = whole[:-size]
            size = pattern.grouping[1]
        least, most = self.frac_prec
        fraction = fraction or "0"
        if len(fraction) < least:
            fraction += "0" * (least - len(fraction))
        if most == 0 or (least == 0 and int(fraction) == 0):
            fraction = ""
        else:
            while len(fraction) > least and fraction[-1] == "0":
                fraction = fraction[:-1]
            fraction = self.point + fraction
        return self.plain_prefix + whole + grouped + fraction + self.plain_suffix

    def _affix(self, text: str) -> str:
        if "¤" in text:  # as NumberPattern.apply: code for ¤¤, the symbol for ¤
            text = text.replace("¤¤", self.currency.upper())
            text = text.replace("¤", get_currency_symbol(self.currency, self.locale))
        return text

    def format(self, amount: Decimal) -> str:
        """The amount as Babel's `format_currency` writes it in this locale."""
        if not self.fast or not amount.is_finite() or amount.is_signed():
            return format_currency(amount, self.currency, locale=self.locale)
        number = self.pattern._quantize_value(  # apply()'s own number step
            amount.scaleb(self.pattern.scale).normalize(),
            self.locale,
            self.frac_prec,
            True,
            numbering_system="latn",
        )
        text = self.prefix + (number if self.pattern.number_pattern != "" else "") + self.suffix
        if "'" in text:  # quoted text, as apply() unquotes it (a de_CH group mark too)
            text = re.sub(r"'([^']*)'", lambda m: m.group(1) or "'", text)
        return text


@lru_cache(maxsize=256)  # worked out once per currency and language
def _currency_format(currency: str, language: str) -> _CurrencyFormat:
    return _CurrencyFormat(currency, _locale(language))


@lru_cache(maxsize=64)  # parsed once per language: a batch formats thousands of amounts
def _locale(language: str) -> Locale:
    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError, AttributeError):
        return Locale("en")
