"""Plotly figures for the analytics page, built from `core.stats` results.

Pure functions (data in, figure out) so they are tested without a browser. Every figure
shares one look: the theme's teal for the main series, muted greys for context, red for
failures, no chart junk. Plotly reads a little HTML in every label (`<a href>`, `<b>`,
`<br>`): text from outside (Meta's error titles) goes through `_label` first.
"""

from __future__ import annotations

import html
from decimal import Decimal

import pandas as pd
import plotly.graph_objects as go

from core.stats import AckStats, CostReport, Funnel, LatencyStats

PRIMARY = "#128C7E"
SECONDARY = "#25D366"
READ = "#34B7F1"
FAIL = "#D9534F"
MUTED = "#B8C4C2"
TEXT = "#1F2A2E"
_FONT = {"family": "sans-serif", "color": TEXT, "size": 13}


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
    )
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_yaxes(gridcolor="#E6ECEA", zeroline=False)
    return fig


def funnel_figure(funnel: Funnel) -> go.Figure:
    """Sent -> delivered -> read -> replied, each with its share of sent."""
    frame = funnel.frame()
    fig = go.Figure(
        go.Funnel(
            y=frame["stage"],
            x=frame["messages"],
            textinfo="value+percent initial",
            marker={"color": [PRIMARY, SECONDARY, READ, "#075E54"]},
            connector={"line": {"color": MUTED, "width": 1}},
            hovertemplate="%{y}: %{x:,} messages<extra></extra>",
        )
    )
    return _layout(fig)


def rates_figure(daily: pd.DataFrame) -> go.Figure:
    """Messages per slice (bars) with delivery, read and failure rates (lines, right axis)."""
    fig = go.Figure()
    fig.add_bar(
        x=daily["bucket"],
        y=daily["messages"],
        name="Messages",
        marker_color="#DCE6E3",
        yaxis="y2",
        hovertemplate="%{x|%d %b}: %{y:,} messages<extra></extra>",
    )
    for column, name, color in (
        ("delivery_rate", "Delivered / sent", PRIMARY),
        ("read_rate", "Read / delivered", READ),
        ("failure_rate", "Failed / all", FAIL),
    ):
        fig.add_scatter(
            x=daily["bucket"],
            y=pd.to_numeric(daily[column], errors="coerce"),
            name=name,
            mode="lines+markers",
            line={"color": color, "width": 2},
            marker={"size": 5},
            connectgaps=False,
            hovertemplate="%{x|%d %b}: %{y:.0%}<extra>" + name + "</extra>",
        )
    fig.update_layout(
        yaxis={"tickformat": ".0%", "range": [0, 1.05], "side": "left"},
        yaxis2={
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "rangemode": "tozero",
            "tickformat": ",d",
            "title": {"text": "messages", "font": {"size": 11}},
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
            hovertemplate="%{x}: %{y:,} messages<extra></extra>",
        )
    )
    fig.update_xaxes(type="category", tickangle=-35)
    return _layout(fig, height=280)


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
            hovertemplate="%{x:,} messages (%{customdata:.0%})<extra></extra>",
        )
    )
    return _layout(fig, height=max(220, 48 * len(shown) + 40))


def acknowledgements_figure(acks: AckStats) -> go.Figure:
    """Delivered PO notices: confirmed, rejected, or not answered yet."""
    unanswered = max(0, acks.delivered - acks.acknowledged)
    other = max(0, acks.acknowledged - acks.confirmed - acks.rejected)
    slices = [
        (label, value, color)
        for label, value, color in (
            ("Confirmed", acks.confirmed, PRIMARY),
            ("Rejected", acks.rejected, FAIL),
            ("Other answer", other, READ),
            ("No answer yet", unanswered, "#E3E9E7"),
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
            hovertemplate="%{x|%d %b}: %{y:,.2f} " + shown + "<extra></extra>",
        )
    fig.update_layout(barmode="group")
    return _layout(fig, height=280, legend=len(report.currencies) > 1)


def format_money(amount: Decimal, currency: str) -> str:
    """An amount for a metric tile: two decimals, or four below one cent."""
    places = Decimal("0.0001") if 0 < abs(amount) < Decimal("0.01") else Decimal("0.01")
    return f"{amount.quantize(places):,} {currency}"


def format_share(value: float | None) -> str:
    """A ratio as a percentage, or an em dash when it is undefined."""
    return "—" if value is None else f"{value:.0%}"


def format_duration(seconds: float | None) -> str:
    """Seconds on a human scale (s, min, h, d), or an em dash."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


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
