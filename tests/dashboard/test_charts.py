"""Every analytics chart stays readable from one message to ten thousand (issue 12 item 8).

One real SQLite file holds three tenants with 1, 10 and 10,000 messages spread over a
month with empty days between them; `core.stats.report` reads each, and every chart of
`dashboard.charts` is built from it. The figures are inspected as Plotly will draw
them: the tick positions an axis produces are worked out from its range, start and step,
and their labels must be whole numbers for counts, one per slice at most for dates, and
never repeated. Count traces have no gaps; rate lines join the slices where the rate is
defined and show nothing where it is not; the funnel and the tiles say the same rate.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pytest
from sqlalchemy import Engine, insert

from core import analytics_export, migrate, rates, stats
from core.db import get_engine
from core.models.messages import WhatsAppMessage
from core.pricing import ensure_default_rate_card
from dashboard import charts

pytestmark = pytest.mark.clock  # the data sits on fixed dates; also run a year ahead

START = date(2026, 10, 1)
END = date(2026, 10, 30)
SIZES = {"one": 1, "ten": 10, "many": 10_000}
_ids = itertools.count(1)


def _rows(tenant: str, n: int) -> Iterator[dict[str, Any]]:
    """`n` messages on some days of October (every 3rd day has none), with every fate."""
    days = [START + timedelta(days=d) for d in range(30) if d % 3 != 1]
    for i in range(n):
        day = days[(i * 7) % len(days)] if n > 1 else START + timedelta(days=10)
        at = datetime(day.year, day.month, day.day, 9, tzinfo=UTC) + timedelta(seconds=i % 3600)
        fate = i % 10
        failed = fate == 9
        delivered = None if failed or fate == 8 else at + timedelta(seconds=5 + i % 900)
        read = at + timedelta(minutes=3 + i % 600) if delivered and fate < 5 else None
        replied = read + timedelta(minutes=1) if read and fate < 2 else None
        status = "failed" if failed else "read" if read else "delivered" if delivered else "sent"
        yield {
            "id": f"{tenant}-{next(_ids):08d}",
            "tenant_id": tenant,
            "idempotency_key": f"charts:{tenant}:{i}",
            "recipient_phone": "+34612000001",
            "request_payload": {},
            "template_name": "po_notification",
            "status": status,
            "created_at": at,
            "updated_at": at,
            "accepted_at": None if failed else at + timedelta(seconds=1),
            "sent_at": None if failed else at + timedelta(seconds=2),
            "delivered_at": delivered,
            "read_at": read,
            "replied_at": replied,
            "failed_at": at + timedelta(seconds=1) if failed else None,
            "error_code": (131026, 132000, 131047)[i % 3] if failed else None,
            "po_number": f"PO-{i}",
            "recipient_country": "34",
            "pricing_category": "utility" if delivered else None,
            "pricing_type": "regular" if delivered else None,
        }


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One migrated SQLite file with the three tenants' messages (built once)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('charts') / 'charts.db'}"
    migrate.upgrade(url)
    db = get_engine(url)
    table = WhatsAppMessage.__table__  # type: ignore[attr-defined]
    with db.begin() as conn:
        for tenant, n in SIZES.items():
            rows = list(_rows(tenant, n))
            for chunk in range(0, len(rows), 2000):
                conn.execute(insert(table), rows[chunk : chunk + 2000])
    for tenant in SIZES:
        ensure_default_rate_card(db, tenant)
    yield db
    db.dispose()


@pytest.fixture(scope="module", params=list(SIZES))
def report(request: pytest.FixtureRequest, engine: Engine) -> stats.AnalyticsReport:
    flt = stats.StatsFilter((request.param,), START, END, "Europe/Madrid")
    data = stats.report(engine, flt)
    assert data.funnel.total == SIZES[request.param]
    return data


# --- how Plotly will place the ticks ------------------------------------------------------


def _linear_ticks(axis: Any) -> list[float]:
    low, high = axis.range
    step, start = float(axis.dtick), float(axis.tick0 or 0)
    first = math.ceil((low - start) / step - 1e-9)
    last = math.floor((high - start) / step + 1e-9)
    return [start + k * step for k in range(first, last + 1)]


def _date_ticks(axis: Any) -> list[datetime]:
    low, high = (pd.Timestamp(v).to_pydatetime() for v in axis.range)
    anchor = pd.Timestamp(axis.tick0).to_pydatetime()
    if isinstance(axis.dtick, str):
        assert axis.dtick.startswith("M")
        months = int(axis.dtick[1:])
        ticks, k = [], -240
        while k < 240:
            month = anchor.month - 1 + k * months
            at = anchor.replace(year=anchor.year + month // 12, month=month % 12 + 1)
            if low <= at <= high:
                ticks.append(at)
            k += 1
        return ticks
    step = timedelta(milliseconds=float(axis.dtick))
    first = math.ceil((low - anchor) / step)
    last = math.floor((high - anchor) / step)
    return [anchor + k * step for k in range(first, last + 1)]


def assert_count_axis(axis: Any, largest: float) -> None:
    """Whole-number ticks from zero, each label once, covering the largest value."""
    assert axis.tickformat == ",d"
    assert axis.rangemode == "tozero"
    assert axis.tickmode == "linear"
    assert float(axis.dtick) >= 1 and float(axis.dtick).is_integer()
    assert axis.range[0] == 0 and axis.range[1] >= largest
    ticks = _linear_ticks(axis)
    assert 2 <= len(ticks) <= charts.MAX_COUNT_TICKS + 1
    labels = [f"{int(t):,}" for t in ticks]
    assert all(float(t).is_integer() for t in ticks)
    assert len(set(labels)) == len(labels), labels


def assert_date_axis(axis: Any, slices: int) -> None:
    """At most one tick per slice and at most MAX_DATE_TICKS, none labelled twice."""
    assert axis.type == "date" and axis.tickmode == "linear"
    ticks = _date_ticks(axis)
    assert 1 <= len(ticks) <= min(slices, charts.MAX_DATE_TICKS)
    fmt = axis.tickformat
    labels = [t.strftime(fmt) for t in ticks]
    assert len(set(labels)) == len(labels), labels
    if not isinstance(axis.dtick, str):
        assert float(axis.dtick) >= 86_400_000  # never two ticks within one day


# --- the charts ---------------------------------------------------------------------------


def test_the_rates_chart_counts_in_whole_numbers_and_joins_its_lines(
    report: stats.AnalyticsReport,
) -> None:
    fig = charts.rates_figure(report.daily, report.granularity)
    daily = report.daily
    assert_date_axis(fig.layout.xaxis, len(daily))
    assert_count_axis(fig.layout.yaxis2, float(daily["messages"].max()))
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert len(bars) == 1
    counts = pd.Series(bars[0].y, dtype="float")
    assert len(counts) == len(daily) and not counts.isna().any()  # every day, zeros too
    assert counts.sum() == report.funnel.total
    lines = [t for t in fig.data if isinstance(t, go.Scatter)]
    assert [t.name for t in lines] == [r.label for r in (rates.DELIVERED, rates.READ,
                                                         rates.FAILED)]  # fmt: skip
    for trace, rate in zip(lines, (rates.DELIVERED, rates.READ, rates.FAILED), strict=True):
        assert "lines" in trace.mode and "markers" in trace.mode
        assert trace.connectgaps is True
        values = pd.Series(trace.y, dtype="float")
        defined = daily[rate.base] > 0
        assert values[defined.to_numpy()].notna().all()  # drawn wherever defined
        assert values[~defined.to_numpy()].isna().all()  # never a made-up 0 %
    assert fig.layout.yaxis.tickformat == ".0%"
    percent = [f"{t:.0%}" for t in _linear_ticks(fig.layout.yaxis)]
    assert len(set(percent)) == len(percent)


def test_the_latency_charts_count_in_whole_numbers(report: stats.AnalyticsReport) -> None:
    for lat in (report.to_deliver, report.to_read):
        fig = charts.latency_figure(lat)
        assert_count_axis(fig.layout.yaxis, float(lat.bins["messages"].max()))
        assert not pd.Series(fig.data[0].y, dtype="float").isna().any()
        labels = list(fig.data[0].x)
        assert len(set(labels)) == len(labels)


def test_the_failures_chart_counts_in_whole_numbers(report: stats.AnalyticsReport) -> None:
    if report.failures.empty:
        assert report.funnel.failed == 0
        return
    fig = charts.failures_figure(report.failures)
    assert_count_axis(fig.layout.xaxis, float(report.failures["messages"].max()))
    labels = list(fig.data[0].y)
    assert len(set(labels)) == len(labels)


def test_the_cost_chart_has_one_tick_per_slice_at_most(report: stats.AnalyticsReport) -> None:
    fig = charts.cost_figure(report.cost)
    assert report.cost.currencies  # the default rate card prices the delivered ones
    slices = len(set(report.cost.by_bucket["bucket"]))
    assert_date_axis(fig.layout.xaxis, slices)
    assert fig.layout.yaxis.rangemode == "tozero"


def test_the_funnel_says_each_rate_with_the_base_the_tiles_use(
    report: stats.AnalyticsReport,
) -> None:
    fig = charts.funnel_figure(report.funnel)
    trace = fig.data[0]
    counts = report.funnel.counts()
    names = [label.split("<br>")[0] for label in trace.y]
    assert names == ["Sent", "Delivered", "Read", "Answered"]
    assert list(trace.x) == [counts[k] for k in ("sent", "delivered", "read", "replied")]
    assert list(trace.text) == [f"{n:,}" for n in trace.x]
    for label, rate in zip(trace.y[1:], (rates.DELIVERED, rates.READ, rates.ANSWERED),
                           strict=True):  # fmt: skip
        share = charts.format_share(rate.value(counts))
        assert label.endswith(f"<br>{share} {rate.base_words}")
    assert "percent" not in (trace.textinfo or "")  # no share of another base


def test_the_acknowledgements_chart_shows_every_delivered_notice(
    report: stats.AnalyticsReport,
) -> None:
    acks = report.acknowledgements
    if acks.delivered == 0:
        return
    fig = charts.acknowledgements_figure(acks)
    assert sum(fig.data[0].values) == acks.delivered


@pytest.mark.parametrize("largest", [0, 1, 2, 3, 7, 10, 49, 999, 10_000, 1_000_000])
def test_a_count_axis_has_whole_ticks_at_any_size(largest: int) -> None:
    axis = go.layout.YAxis(**charts.count_axis(largest))
    assert_count_axis(axis, largest)


@pytest.mark.parametrize("unit,slices", [("day", 1), ("day", 2), ("day", 92), ("week", 1),
                                         ("week", 60), ("month", 1), ("month", 120)])  # fmt: skip
def test_a_date_axis_never_repeats_a_label(unit: stats.Granularity, slices: int) -> None:
    day = date(2026, 1, 7)
    labels = [day]
    for _ in range(slices - 1):
        labels.append(stats._next_label(labels[-1], unit))
    axis = go.layout.XAxis(**charts.date_axis(labels, unit))
    assert_date_axis(axis, slices)


def test_the_share_of_a_rate_is_undefined_without_its_base() -> None:
    assert rates.READ.value({"read": 0, "delivered": 0}) is None
    assert rates.READ.value({"read": 3, "delivered": 4}) == 0.75
    assert rates.READ.label == "Read, of delivered"
    assert rates.ANSWERED.label == "Answered, of delivered"
    with pytest.raises(KeyError):
        rates.READ.value({"read": 1})


def test_the_tiles_and_the_supplier_table_use_the_same_rates(
    report: stats.AnalyticsReport, tmp_path: Path
) -> None:
    table = report.suppliers
    whole = {k: int(table[k].sum()) for k in ("delivered", "read", "replied")}
    assert sum(table["messages"]) == report.funnel.total
    # one supplier row (bare numbers): its rates are the page's rates
    if len(table) == 1:
        row = table.iloc[0]
        counts = report.funnel.counts()
        assert row["read_rate"] == pytest.approx(rates.READ.value(counts))
        assert row["reply_rate"] == pytest.approx(rates.ANSWERED.value(counts))
        assert row["delivery_rate"] == pytest.approx(rates.DELIVERED.value(counts))
    assert whole["read"] == report.funnel.read


def test_the_supplier_export_heads_each_rate_with_its_base_and_agrees_with_the_page(
    report: stats.AnalyticsReport,
) -> None:
    data = analytics_export.supplier_table_csv(report.suppliers).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(data)))
    assert len(rows) == len(report.suppliers)
    header = "Read, of delivered (%)"
    assert header in rows[0] and "Answered, of delivered (%)" in rows[0]
    for row, (_, record) in zip(rows, report.suppliers.iterrows(), strict=True):
        counts = {"read": int(row["Read"]), "delivered": int(row["Delivered"])}
        expected = rates.READ.value(counts)
        if expected is None:
            assert row[header] == ""
        else:
            assert abs(float(row[header]) - expected * 100) <= 0.05
        assert int(row["Messages"]) == record["messages"]


def test_an_exported_supplier_name_cannot_run_in_a_spreadsheet() -> None:
    table = pd.DataFrame(
        {"supplier": ['=HYPERLINK("http://evil.example")'], "messages": [1], "delivered": [0],
         "read": [0], "replied": [0], "failed": [1], "delivery_rate": [0.0],
         "read_rate": [None], "reply_rate": [None]}
    )  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(
        analytics_export.supplier_table_csv(table).decode("utf-8-sig"))))  # fmt: skip
    assert rows[0]["Supplier"].startswith("'=")
    assert rows[0]["Read, of delivered (%)"] == ""  # undefined, not 0 %
    assert rows[0]["Delivered, of sent (%)"] == "0.0"
