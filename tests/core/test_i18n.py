"""core.i18n (locale choice, translation) and core.formatting (dates, numbers, money)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import i18n
from core.formatting import (
    format_day,
    format_moment,
    format_money,
    format_number,
    format_share,
    style_of,
)
from core.i18n import (
    _,
    choose_locale,
    current_language,
    current_locale,
    negotiate,
    ngettext,
    normalize_locale,
    set_locale,
)


@pytest.fixture(autouse=True)
def english_after() -> Iterator[None]:
    yield
    set_locale("en")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("es-ES,es;q=0.9,en;q=0.8", "es_ES"),
        ("es-MX", "es_MX"),
        ("es-419,es;q=0.9", "es_419"),  # Latin American Spanish
        ("es-QQ", "es"),  # a region CLDR does not know is dropped
        ("pt-BR,pt;q=0.9,es;q=0.5,en;q=0.4", "es"),
        ("en-US,en;q=0.9", "en_US"),
        ("fr;q=0.9, en;q=0.1", "en"),
        ("de-DE", None),
        ("en;q=0.2, es;q=0.8", "es"),  # weights, not order, decide
        ("es;q=0, en", "en"),  # q=0 means "not this one"
        ("", None),
        (None, None),
        ("es;q=abc, en", "en"),
        (",,,;;;q=", None),
        ("*", None),
    ],
)
def test_the_browser_language_is_negotiated(header: str | None, expected: str | None) -> None:
    assert negotiate(header) == expected


@given(st.text(max_size=2000))
def test_any_accept_language_header_gives_a_supported_locale_or_none(header: str) -> None:
    found = negotiate(header)
    assert found is None or found.split("_")[0] in ("en", "es")


def test_the_users_choice_wins_over_the_browser_but_keeps_its_region() -> None:
    assert choose_locale("es", "en-GB,en") == "es"
    assert choose_locale("es", "es-AR,es") == "es_AR"  # Argentinian numbers, Spanish text
    assert choose_locale("en", "es-MX") == "en"
    assert choose_locale(None, "es-MX") == "es_MX"
    assert choose_locale(None, None) == "en"
    assert choose_locale("klingon", "es") == "es"


def test_unknown_codes_fall_back_to_english() -> None:
    set_locale("xx")
    assert current_locale() == "en"
    set_locale("es-CL")
    assert (current_locale(), current_language()) == ("es_CL", "es")
    assert normalize_locale("es_" + "X" * 40) is None


def test_text_is_translated_into_the_current_language() -> None:
    assert _("Log in") == "Log in"
    set_locale("es_MX")
    assert _("Log in") == "Iniciar sesión"
    assert _("a sentence nobody marked") == "a sentence nobody marked"


def test_plurals_follow_the_catalogues_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "es" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "wanotify.po").write_text(
        'msgid ""\nmsgstr ""\n"Language: es\\n"\n'
        '"Plural-Forms: nplurals=3; plural=(n == 1 ? 0 : n != 0 && n % 1000000 == 0 ? 1 : 2);\\n"\n'
        "\n"
        'msgid "{n} message"\nmsgid_plural "{n} messages"\n'
        'msgstr[0] "{n} mensaje"\nmsgstr[1] "{n} de mensajes"\nmsgstr[2] "{n} mensajes"\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.catalogue.cache_clear()
    try:
        assert ngettext("{n} message", "{n} messages", 1) == "{n} message"
        assert ngettext("{n} message", "{n} messages", 2) == "{n} messages"
        set_locale("es")
        assert ngettext("{n} message", "{n} messages", 1) == "{n} mensaje"
        assert ngettext("{n} message", "{n} messages", 3) == "{n} mensajes"
        assert ngettext("{n} message", "{n} messages", 0) == "{n} mensajes"
        assert ngettext("{n} message", "{n} messages", 2_000_000) == "{n} de mensajes"
        assert ngettext("{n} thing", "{n} things", 1) == "{n} thing"  # not translated
    finally:
        i18n.catalogue.cache_clear()


def test_one_date_format_in_each_language() -> None:
    at = datetime(2026, 12, 4, 20, 9, 5, tzinfo=UTC)
    assert format_moment(at, "Europe/Madrid") == "04 Dec 2026 21:09"
    assert format_moment(at, "America/Mexico_City", "seconds") == "04 Dec 2026 14:09:05"
    assert format_day(date(2026, 1, 9)) == "09 Jan 2026"
    set_locale("es")
    assert format_moment(at, "Europe/Madrid") == "04 dic 2026 21:09"
    assert format_day(date(2026, 1, 9)) == "09 ene 2026"
    assert format_moment(at, "UTC", "time") == "20:09:05"


@pytest.mark.parametrize(
    ("fmt", "style"),
    [
        ("%d/%m/%Y %H:%M", "datetime"),
        ("%Y-%m-%d %H:%M", "datetime"),
        ("%d/%m/%Y %H:%M:%S", "seconds"),
        ("%H:%M:%S", "time"),
        ("%H:%M", "clock"),
        ("%d %b %Y", "date"),
        ("date", "date"),
    ],
)
def test_old_strftime_patterns_map_to_the_one_format(fmt: str, style: str) -> None:
    assert style_of(fmt) == style


def test_numbers_shares_and_money_follow_the_locale() -> None:
    assert format_number(12345) == "12,345"
    assert format_share(0.725) == "72%" or format_share(0.725) == "73%"
    assert format_share(None) == "—"
    assert format_money(Decimal("1234.5"), "USD") == "$1,234.50"
    assert format_money(Decimal("0.0043"), "USD") == "$0.0043"  # a per-message rate
    set_locale("es")
    assert format_number(12345) == "12.345"
    assert format_number(Decimal("3.5"), 1) == "3,5"
    assert format_number(Decimal("0.013400"), upto=6) == "0,0134"
    assert format_number(Decimal("12"), upto=6) == "12"
    assert format_share(0.5) == "50\u00a0%"
    assert format_money(Decimal("1234.5"), "EUR") == "1.234,50\u00a0€"
    assert format_money(Decimal("0.0043"), "USD") == "0,0043\u00a0US$"
    set_locale("es_MX")
    assert format_number(12345) == "12,345"  # Mexico groups with commas


def test_charts_write_numbers_with_the_readers_marks() -> None:
    import plotly.graph_objects as go

    from dashboard.charts import _layout

    assert _layout(go.Figure()).layout.separators == ".,"
    set_locale("es")
    assert _layout(go.Figure()).layout.separators == ",."


def test_how_long_ago_reads_in_the_locale() -> None:
    from datetime import timedelta

    from core.formatting import format_ago

    now = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
    assert format_ago(now - timedelta(days=2), now) == "2 days ago"
    assert format_ago(None, now) == "—"
    set_locale("es")
    assert format_ago(now - timedelta(hours=3), now) == "hace 3 horas"


def test_chart_dates_name_the_month_in_the_readers_language() -> None:
    from dashboard.charts import date_axis

    days = [date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)]
    assert "ticktext" not in date_axis(days, "day")  # English: Plotly's own labels
    set_locale("es")
    axis = date_axis(days, "day")
    assert axis["ticktext"] == ["05 ene", "06 ene", "07 ene"]
    assert axis["tickvals"][0].startswith("2026-01-05")
    months = date_axis([date(2026, 1, 1), date(2026, 2, 1)], "month")
    assert months["ticktext"] == ["ene 2026", "feb 2026"]


def test_chart_hover_labels_use_the_one_date_format() -> None:
    import pandas as pd

    from dashboard.charts import _days

    set_locale("es")
    assert _days(pd.Series([pd.Timestamp("2026-01-05")])) == ["05 ene 2026"]
