"""Dates, numbers, shares and money as the reader's locale writes them (core.i18n).

One date format on every page: day, abbreviated month in the reader's language and full
year ("04 Dec 2026" / "04 dic 2026"), with a 24-hour clock when a time is shown. The
order never changes with the locale, so no reader mistakes 04/12 for April or December;
the month's name and the digits' separators do.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date as _babel_date
from babel.dates import format_datetime as _babel_datetime
from babel.dates import format_timedelta
from babel.numbers import format_currency, format_decimal
from babel.numbers import format_percent as _babel_percent

from core.i18n import current_locale

Style = Literal["date", "datetime", "seconds", "time", "clock"]
PATTERNS: dict[Style, str] = {
    "date": "dd MMM yyyy",
    "datetime": "dd MMM yyyy HH:mm",
    "seconds": "dd MMM yyyy HH:mm:ss",
    "time": "HH:mm:ss",
    "clock": "HH:mm",  # a chat bubble's time
}
NOTHING = "—"  # shown for a value that does not exist (no rate, no time yet)


def style_of(fmt: str) -> Style:
    """The style a strftime pattern asks for ("%d/%m/%Y %H:%M" -> "datetime"): what it
    shows (a date, a time, seconds), never its order, so every page reads alike."""
    if fmt in PATTERNS:
        return fmt
    has_date = any(code in fmt for code in ("%d", "%Y", "%y", "%b", "%m"))
    if "%H" not in fmt and "%M" not in fmt:
        return "date"
    if not has_date:
        return "time" if "%S" in fmt else "clock"
    return "seconds" if "%S" in fmt else "datetime"


def format_moment(at: datetime, tz: str | None = None, style: Style = "datetime") -> str:
    """An aware time in zone `tz` (as stored when None), in the one date format."""
    local = at.astimezone(ZoneInfo(tz)) if tz else at
    return _babel_datetime(local, PATTERNS[style], tzinfo=local.tzinfo, locale=current_locale())


def format_ago(at: datetime | None, now: datetime) -> str:
    """How long before `now` an aware time was, as the locale says it ("hace 2 días",
    "3 hours ago"); an em dash for no time. Tables show this where a date would be noise."""
    if at is None or (isinstance(at, float) and at != at):  # None or pandas' NaN
        return NOTHING
    return format_timedelta(at - now, add_direction=True, locale=current_locale())


def format_day(day: date) -> str:
    """A calendar date in the one date format ("04 dic 2026")."""
    return _babel_date(day, PATTERNS["date"], locale=current_locale())


def format_number(value: int | float | Decimal, digits: int = 0, upto: int = 0) -> str:
    """A count or quantity with the locale's grouping and decimal mark ("12.345"):
    exactly `digits` decimals, then up to `upto` more when they are not zero (a rate
    such as 0,0134)."""
    decimals = "0" * digits + "#" * upto
    pattern = "#,##0" + ("." + decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=current_locale())


def format_share(value: float | None, digits: int = 0) -> str:
    """A ratio (0.72) as the locale writes a percentage ("72 %"), or an em dash."""
    if value is None:
        return NOTHING
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "") + "%"
    locale_pattern = _babel_percent(0, locale=current_locale())  # "0 %" or "0%"
    if " " in locale_pattern or "\u00a0" in locale_pattern:
        pattern = pattern[:-1] + "\u00a0%"
    return _babel_percent(value, format=pattern, locale=current_locale())


def format_money(amount: Decimal, currency: str) -> str:
    """An amount with its currency as the locale writes it ("1.234,50 US$"): two
    decimals, or four below one cent (a per-message rate)."""
    locale = Locale.parse(current_locale())
    if not 0 < abs(amount) < Decimal("0.01"):
        return format_currency(amount, currency, locale=locale)
    pattern = locale.currency_formats["standard"].pattern.split(";")[0]
    return format_currency(
        amount.quantize(Decimal("0.0001")),
        currency,
        format=pattern.replace("0.00", "0.0000"),
        locale=locale,
        currency_digits=False,
    )
