"""Plotly figures for the analytics page, built from `core.stats` results.

Pure functions (data in, figure out) so they are tested without a browser. Every figure
shares one look: the theme's teal for the main series, muted greys for context, red for
failures, no chart junk. Plotly reads a little HTML in every label (`<a href>`, `<b>`,
`<br>`): text from outside (Meta's error titles) goes through `_label` first.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from babel import Locale
from babel.dates import format_date
from babel.numbers import get_decimal_symbol, get_group_symbol

from core import formatting, rates
from core.i18n import _, current_language, current_locale
from core.stats import AckStats, CostReport, Funnel, Granularity, LatencyStats

PRIMARY = "#128C7E"
SECONDARY = "#25D366"
READ = "#34B7F1"
FAIL = "#D9534F"
MUTED = "#B8C4C2"
TEXT = "#1F2A2E"
_FONT = {"family": "sans-serif", "color": TEXT, "size": 13}


def _days(buckets: Iterable[Any]) -> list[str]:
    """Each slice's first day in the one date format and the reader's language, for
    hover labels (Plotly's own `%b` month names are English only)."""
    return [formatting.format_day(pd.Timestamp(b).date()) for b in buckets]


def _separators() -> str:
    """Plotly's `separators` (decimal mark, then group mark) for the reader's locale."""
    locale = Locale.parse(current_locale())
    return get_decimal_symbol(locale) + get_group_symbol(locale)


def _layout(fig: go.Figure, *, height: int = 320, legend: bool = False) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        font=_FONT,
        showlegend=legend,
        legend={"orientation": "h", "y": -0.18, "x": 0},
        plot_bgcolor="rgba(0,0,0,0)",
        paper_bgcolor="rgba(0,0,0,0)",
        hoverlabel={"bgcolor": "white"},
        separators=_separators(),  # 1.234,5 in Spanish: the reader's decimal and group marks
    )
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_yaxes(gridcolor="#E6ECEA", zeroline=False)
    return fig


#: Most date ticks on a time axis; more slices than this get a tick every few slices.
MAX_DATE_TICKS = 10
#: Most ticks on a count axis (whole numbers only, in steps of 1, 2 or 5 times a power of 10).
MAX_COUNT_TICKS = 6
_DAY_MS = 86_400_000


def count_axis(largest: float) -> dict[str, Any]:
    """Axis settings for a count: whole-number ticks from zero (never 0.5 of a message,
    never the same label twice), readable from 1 message to millions."""
    top = max(1.0, float(largest) if math.isfinite(float(largest)) else 1.0)
    step = _nice_step(top / (MAX_COUNT_TICKS - 1))
    return {
        "tickmode": "linear",
        "tick0": 0,
        "dtick": step,
        "tickformat": ",d",
        "rangemode": "tozero",
        "range": [0, max(step, top) * 1.08],
    }


def _nice_step(raw: float) -> int:
    """The smallest whole 1, 2 or 5 times a power of ten at least `raw` (and at least 1)."""
    if raw <= 1:
        return 1
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return int(factor * power)
    return int(10 * power)  # pragma: no cover - the loop always returns


def date_axis(labels: Sequence[date], unit: Granularity) -> dict[str, Any]:
    """Axis settings for time slices (days, weeks or months): at most one tick per slice
    and at most MAX_DATE_TICKS ticks, each labelled once, and the range padded by half a
    slice so a single day shows as a day, not as hours."""
    days = sorted(pd.Timestamp(d).date() for d in labels) or [date(2000, 1, 1)]
    every = max(1, math.ceil(len(days) / MAX_DATE_TICKS))
    # A range's first week or month may start mid-way; later slices start on a Monday
    # or a first day, so the ticks are anchored there.
    anchor = days[1] if unit != "day" and len(days) > 1 else days[0]
    half = {"day": timedelta(hours=12), "week": timedelta(days=3.5), "month": timedelta(days=15)}
    first = datetime.combine(days[0], time(0)) - half[unit]
    last = datetime.combine(days[-1], time(0)) + half[unit]
    axis: dict[str, Any] = {
        "type": "date",
        "tickmode": "linear",
        "tick0": anchor.isoformat(),
        "range": [first.isoformat(), last.isoformat()],
    }
    if unit == "month":
        axis.update(dtick=f"M{every}", tickformat="%b %Y")
    else:
        axis.update(dtick=_DAY_MS * every * (7 if unit == "week" else 1), tickformat="%d %b")
    if current_language() != "en":  # Plotly names months in English only: label them here
        start = days.index(anchor)
        ticks = [d for i, d in enumerate(days) if (i - start) % every == 0]
        pattern = "MMM yyyy" if unit == "month" else "dd MMM"
        axis.update(
            tickmode="array",
            tickvals=[datetime.combine(d, time(0)).isoformat() for d in ticks],
            ticktext=[format_date(d, pattern, locale=current_locale()) for d in ticks],
        )
    return axis


def stage_name(stage: str) -> str:
    """A funnel stage's name as the page says it (the same words as the rates)."""
    names = {
        "sent": _("Sent"),
        "delivered": _(rates.DELIVERED.name),
        "read": _(rates.READ.name),
        "replied": _(rates.ANSWERED.name),
    }
    return names.get(stage, stage)


def funnel_figure(funnel: Funnel) -> go.Figure:
    """Sent -> delivered -> read -> answered: each stage's count in its bar, and beside
    its name the stage's rate as `core.rates` defines it, with its base ("71 % of
    delivered"), as the tiles say it (a narrow bar has no room for a sentence)."""
    frame = funnel.frame()
    names = []
    for stage, key in zip(frame["stage"], frame["rate_key"], strict=True):
        name = _label(stage_name(stage))
        if isinstance(key, str):
            rate = rates.by_key(key)
            share = format_share(rate.value(funnel.counts()))
            name += "<br>" + _label(f"{share} {_(rate.base_words)}")
        names.append(name)
    fig = go.Figure(
        go.Funnel(
            y=names,
            x=frame["messages"],
            text=[f"{int(count):,}" for count in frame["messages"]],
            textinfo="text",
            textposition="inside",
            marker={"color": [PRIMARY, SECONDARY, READ, "#075E54"]},
            connector={"line": {"color": MUTED, "width": 1}},
            hovertemplate="%{x:,} " + _label(_("messages")) + "<extra></extra>",
        )
    )
    return _layout(fig)


def rates_figure(daily: pd.DataFrame, granularity: Granularity = "day") -> go.Figure:
    """Messages per slice (bars, every slice counted, zeros included) with the delivery,
    read and failure rates (lines, left axis; named with their base as `core.rates`
    defines them). A rate is drawn only where it is defined (its base is not zero); the
    line joins the slices where it is, so a few messages draw a line, not lone dots."""
    fig = go.Figure()
    counts = pd.to_numeric(daily["messages"], errors="coerce").fillna(0).astype(int)
    fig.add_bar(
        x=daily["bucket"],
        y=counts,
        name=_("Messages"),
        marker_color="#DCE6E3",
        yaxis="y2",
        customdata=_days(daily["bucket"]),
        hovertemplate="%{customdata}: %{y:,}<extra>" + _label(_("Messages")) + "</extra>",
    )
    for rate, color in ((rates.DELIVERED, PRIMARY), (rates.READ, READ), (rates.FAILED, FAIL)):
        name = _label(rate.label)
        fig.add_scatter(
            x=daily["bucket"],
            y=pd.to_numeric(daily[rate.key], errors="coerce"),
            name=name,
            mode="lines+markers",
            line={"color": color, "width": 2},
            marker={"size": 6},
            connectgaps=True,
            customdata=_days(daily["bucket"]),
            hovertemplate="%{customdata}: %{y:.0%}<extra>" + name + "</extra>",
        )
    fig.update_layout(
        xaxis=date_axis(list(daily["bucket"]), granularity),
        yaxis={
            "tickformat": ".0%",
            "tickmode": "linear",
            "tick0": 0,
            "dtick": 0.25,
            "range": [0, 1.05],
            "side": "left",
        },
        yaxis2={
            **count_axis(float(counts.max()) if len(counts) else 0.0),
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "title": {"text": _label(_("messages")), "font": {"size": 11}},
        },
    )
    return _layout(fig, height=340, legend=True)


def latency_figure(stats: LatencyStats, color: str = PRIMARY) -> go.Figure:
    """A histogram of how long messages took, on the human scale of the bins."""
    fig = go.Figure(
        go.Bar(
            x=stats.bins["label"],
            y=stats.bins["messages"],
            marker_color=color,
            hovertemplate="%{x}: %{y:,}<extra></extra>",
        )
    )
    _layout(fig, height=280)
    fig.update_xaxes(type="category", tickangle=-35)
    fig.update_yaxes(**count_axis(float(stats.bins["messages"].max() or 0)))
    return fig


def failures_figure(failures: pd.DataFrame, top: int = 8) -> go.Figure:
    """Failed messages by reason in plain words, largest at the top."""
    shown = failures.head(top).iloc[::-1]
    labels = [
        f"{reason} ({int(code)})" if pd.notna(code) else str(reason)
        for code, reason in zip(shown["code"], shown["reason"], strict=True)
    ]  # a reason may be Meta's own error title: escaped in _wrap
    fig = go.Figure(
        go.Bar(
            x=shown["messages"],
            y=[_wrap(label) for label in labels],
            orientation="h",
            marker_color=FAIL,
            customdata=shown["share"],
            hovertemplate="%{x:,} (%{customdata:.0%})<extra></extra>",
        )
    )
    _layout(fig, height=max(220, 48 * len(shown) + 40))
    largest = float(shown["messages"].max()) if len(shown) else 0.0
    fig.update_xaxes(**count_axis(largest))
    return fig


def acknowledgements_figure(acks: AckStats) -> go.Figure:
    """Delivered PO notices: confirmed, rejected, or not answered yet."""
    unanswered = max(0, acks.delivered - acks.acknowledged)
    other = max(0, acks.acknowledged - acks.confirmed - acks.rejected)
    slices = [
        (label, value, color)
        for label, value, color in (
            (_("Confirmed"), acks.confirmed, PRIMARY),
            (_("Rejected"), acks.rejected, FAIL),
            (_("Other answer"), other, READ),
            (_("No answer yet"), unanswered, "#E3E9E7"),
        )
        if value
    ]
    fig = go.Figure(
        go.Pie(
            labels=[s[0] for s in slices],
            values=[s[1] for s in slices],
            hole=0.6,
            sort=False,
            marker={"colors": [s[2] for s in slices]},
            textinfo="percent",
            hovertemplate="%{label}: %{value:,}<extra></extra>",
        )
    )
    return _layout(fig, height=280, legend=True)


def cost_figure(report: CostReport) -> go.Figure:
    """Cost per time slice, one bar series per currency."""
    fig = go.Figure()
    colors = [PRIMARY, READ, SECONDARY, "#075E54"]
    for i, currency in enumerate(report.currencies):
        part = report.by_bucket[report.by_bucket["currency"] == currency]
        shown = _label(currency)  # checked against ISO 4217 by the rate card already
        fig.add_bar(
            x=part["bucket"],
            y=[float(v) for v in part["cost"]],  # plotting only; totals stay Decimal
            name=shown,
            marker_color=colors[i % len(colors)],
            customdata=_days(part["bucket"]),
            hovertemplate="%{customdata}: %{y:,.2f} " + shown + "<extra></extra>",
        )
    fig.update_layout(barmode="group")
    _layout(fig, height=280, legend=len(report.currencies) > 1)
    labels = sorted(set(report.by_bucket["bucket"]))
    fig.update_xaxes(**date_axis(labels, report.granularity))
    fig.update_yaxes(rangemode="tozero")
    return fig


def format_money(amount: Decimal, currency: str) -> str:
    """An amount for a metric tile in the reader's locale: two decimals, or four below
    one cent; with its currency unless `currency` is empty (the tile's label names it)."""
    if currency:
        return formatting.format_money(amount, currency)
    return formatting.format_number(amount, 4 if 0 < abs(amount) < Decimal("0.01") else 2)


def format_share(value: float | None) -> str:
    """A ratio as a percentage in the reader's locale, or an em dash when undefined."""
    return formatting.format_share(value)


def format_duration(seconds: float | None) -> str:
    """Seconds on a human scale (s, min, h, d) with the locale's digits, or an em dash."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{formatting.format_number(round(seconds))} s"
    if seconds < 3600:
        return f"{formatting.format_number(round(seconds / 60))} min"
    if seconds < 86400:
        return f"{formatting.format_number(seconds / 3600, 1)} h"
    return f"{formatting.format_number(seconds / 86400, 1)} d"


def _label(text: str) -> str:
    """`text` shown as itself in a Plotly label: its HTML-like tags and entities escaped."""
    return html.escape(str(text), quote=False)


def _wrap(label: str, width: int = 48) -> str:
    """Break a long axis label over lines (plotly does not wrap on its own); the words are
    escaped (`_label`), the only markup is our own `<br>`."""
    words, lines, line = label.split(), [], ""
    for word in words:
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "<br>".join(_label(part) for part in lines)
