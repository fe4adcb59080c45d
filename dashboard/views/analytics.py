"""Analytics: did the notices arrive, were they read and answered, what failed, what it cost.

Every figure comes from `core.stats.report` (aggregated in SQL) and is cached for a
minute per filter; this module only draws filters, tiles and charts.
"""

from __future__ import annotations

from datetime import date, timedelta

import streamlit as st

from core import rates, stats
from core.auth import Action, PermissionDenied, require, scope_tenants, visible_tenants
from core.db import get_engine
from core.demo import demo_message_count
from core.users import UserInfo
from dashboard import charts, runtime
from dashboard.widgets import md_escape, viewer_today, viewer_zone

CACHE_SECONDS = 60
DEFAULT_DAYS = 30


@st.cache_data(ttl=CACHE_SECONDS, show_spinner="Crunching the numbers…")
def _report(
    url: str,
    tenants: tuple[str, ...],
    start: date,
    end: date,
    tz: str,
    templates: tuple[str, ...],
    suppliers: tuple[int, ...],
) -> stats.AnalyticsReport:
    flt = stats.StatsFilter(tenants, start, end, tz, templates, suppliers)
    return stats.report(get_engine(url), flt)


@st.cache_data(ttl=CACHE_SECONDS * 5, show_spinner=False)
def _options(url: str, tenants: tuple[str, ...]) -> tuple[list[str], list[tuple[int, str]]]:
    engine = get_engine(url)
    return stats.template_options(engine, tenants), stats.supplier_options(engine, tenants)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _demo_rows(url: str, tenants: tuple[str, ...]) -> int:
    return demo_message_count(get_engine(url), tenants)


def render(user: UserInfo) -> None:
    """Draw the analytics page for `user` (managers and admins)."""
    try:
        require(user, Action.VIEW_ANALYTICS)
    except PermissionDenied as exc:
        st.error(str(exc))
        return
    url = runtime.settings().database_url
    st.title("Analytics")
    st.caption("Delivery, reading, answers, failures and cost of the notices sent to suppliers")
    tz = viewer_zone()
    flt = _filters(user, url, tz)
    if flt is None:
        return
    if _demo_rows(url, flt.tenant_ids):
        st.info(
            "**Demo data.** These figures include the sandbox's demo messages and "
            "suppliers (ERP references DEMO-…), seeded so the charts are not empty. A "
            "fresh database in live mode has none.",
            icon=":material/science:",
        )
    data = _report(url, *_key(flt))
    if data.empty:
        _empty_state(flt)
        return
    _tiles(data)
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.subheader("Funnel")
        st.plotly_chart(charts.funnel_figure(data.funnel), key="funnel")
        st.caption(
            f"{data.funnel.failed:,} failed · {data.funnel.queued:,} still queued or "
            "waiting for a person"
        )
    with right:
        unit = {"day": "Daily", "week": "Weekly", "month": "Monthly"}[data.granularity]
        st.subheader(f"{unit} rates")
        st.plotly_chart(charts.rates_figure(data.daily, data.granularity), key="rates")
    _latency(data)
    fail_col, ack_col = st.columns([3, 2], gap="large")
    with fail_col:
        st.subheader("Failures by reason")
        if data.failures.empty:
            st.success("No failed messages in this range.")
        else:
            st.plotly_chart(charts.failures_figure(data.failures), key="failures")
    with ack_col:
        _acknowledgements(data.acknowledgements)
    _cost(data.cost)
    _suppliers(data)


def _key(
    flt: stats.StatsFilter,
) -> tuple[tuple[str, ...], date, date, str, tuple[str, ...], tuple[int, ...]]:
    return (flt.tenant_ids, flt.start, flt.end, flt.tz, flt.template_names, flt.supplier_ids)


def _filters(user: UserInfo, url: str, tz: str) -> stats.StatsFilter | None:
    """The filter bar; None (with a message shown) while the choice is incomplete."""
    today = viewer_today()
    visible = visible_tenants(user)
    cols = st.columns([2, 2, 2, 2] if len(visible) > 1 else [2, 3, 3])
    with cols[0]:
        picked = st.date_input(
            "Dates",
            value=(today - timedelta(days=DEFAULT_DAYS - 1), today),
            max_value=today + timedelta(days=1),
            format="DD/MM/YYYY",
            key="analytics_dates",
        )
    requested: list[str] = []
    if len(visible) > 1:
        with cols[3]:
            requested = st.multiselect(
                "Tenants", visible, placeholder="All my tenants", key="analytics_tenants"
            )
    try:
        tenants = scope_tenants(user, requested)
    except PermissionDenied as exc:
        st.error(md_escape(exc))
        return None
    templates, suppliers = _options(url, tenants)
    names = dict(suppliers)
    with cols[1]:
        chosen_templates = st.multiselect(
            "Templates", templates, placeholder="All templates", key="analytics_templates"
        )
    with cols[2]:
        chosen_suppliers = st.multiselect(
            "Suppliers",
            list(names),
            format_func=lambda sid: names.get(sid, f"#{sid}"),
            placeholder="All suppliers",
            key="analytics_suppliers",
        )
    if not isinstance(picked, tuple) or len(picked) != 2:
        st.info("Pick the last day of the range too.")
        return None
    start, end = picked
    try:
        return stats.StatsFilter(
            tenant_ids=tenants,
            start=start,
            end=end,
            tz=tz,
            template_names=tuple(t for t in chosen_templates if t in templates),
            supplier_ids=tuple(int(s) for s in chosen_suppliers if s in names),
        )
    except stats.StatsFilterError as exc:
        st.warning(md_escape(exc))
        return None


def _empty_state(flt: stats.StatsFilter) -> None:
    with st.container(border=True):
        st.markdown("### No messages in this range yet")
        st.markdown(
            f"Nothing was sent between **{flt.start:%d %b %Y}** and **{flt.end:%d %b %Y}**"
            + (" for the chosen templates or suppliers" if flt.template_names
               or flt.supplier_ids else "")
            + ".\n\n"
            "- Widen the dates or clear the filters above.\n"
            "- Buyers send PO notices from **Send PO notice** or **Bulk send (CSV)**; "
            "ERP events arrive on their own.\n"
            "- Figures appear here as soon as Meta reports the first statuses."
        )  # fmt: skip


def _tiles(data: stats.AnalyticsReport) -> None:
    f = data.funnel
    cost = data.cost
    tiles = st.columns(6)
    tiles[0].metric("Messages", f"{f.total:,}", border=True)
    for tile, rate in zip(tiles[1:4], (rates.DELIVERED, rates.READ, rates.ANSWERED),
                          strict=True):  # fmt: skip
        tile.metric(rate.label, charts.format_share(rate.value(f.counts())), help=rate.help,
                    border=True)  # fmt: skip
    tiles[4].metric(
        "Failed", f"{f.failed:,}",
        help="Messages Meta refused or could not deliver", border=True,
    )  # fmt: skip
    label = "Cost"
    if len(cost.totals) == 1:
        (currency, amount), = cost.totals.items()
        label, shown = f"Cost ({currency})", charts.format_money(amount, "").strip()
    elif cost.totals:
        shown = " + ".join(charts.format_money(v, c) for c, v in sorted(cost.totals.items()))
    else:
        shown = "—"
    tiles[5].metric(
        label, shown,
        help="Delivered messages priced with the rate card (Settings)"
        + ("; estimated with example rates" if cost.uses_example_rates else ""),
        border=True,
    )  # fmt: skip


def _latency(data: stats.AnalyticsReport) -> None:
    left, right = st.columns(2, gap="large")
    for col, lat, title, color in (
        (left, data.to_deliver, "Time to deliver", charts.PRIMARY),
        (right, data.to_read, "Time to read", charts.READ),
    ):
        with col:
            st.subheader(title)
            if lat.count == 0:
                st.caption("No message reached this stage in the range.")
                continue
            st.caption(
                f"Median {charts.format_duration(lat.p50_seconds)} · 90% within "
                f"{charts.format_duration(lat.p90_seconds)} · {lat.count:,} messages"
            )
            st.plotly_chart(charts.latency_figure(lat, color), key=f"latency_{lat.stage}")


def _acknowledgements(acks: stats.AckStats) -> None:
    st.subheader("PO acknowledgements")
    if acks.notices == 0:
        st.caption("No PO notices in this range.")
        return
    st.caption(
        f"{charts.format_share(acks.rate)} of {acks.delivered:,} delivered PO notices were "
        f"answered with a button: {acks.confirmed:,} confirmed, {acks.rejected:,} rejected."
    )
    st.plotly_chart(charts.acknowledgements_figure(acks), key="acks")


def _cost(cost: stats.CostReport) -> None:
    st.subheader("Cost")
    if cost.uses_example_rates:
        st.warning(
            "Estimated with the **example rate card**: an administrator should enter the "
            "rates of your markets from Meta's current price list (Settings → Rate card).",
            icon=":material/euro:",
        )
    notes = [f"{cost.charged_messages:,} charged messages"]
    if cost.free_messages:
        notes.append(f"{cost.free_messages:,} free (inside a customer-service window)")
    if cost.unpriced_messages:
        notes.append(f"{cost.unpriced_messages:,} with no rate in the card")
    if cost.unreported_messages:
        notes.append(f"{cost.unreported_messages:,} without pricing from Meta yet")
    st.caption(" · ".join(notes))
    if not cost.currencies:
        st.caption("No priced messages in this range.")
        return
    chart, table = st.columns([3, 2], gap="large")
    with chart:
        st.plotly_chart(charts.cost_figure(cost), key="cost")
    with table:
        amounts = zip(cost.by_category["cost"], cost.by_category["currency"], strict=True)
        frame = cost.by_category.assign(
            cost=[charts.format_money(v, c) for v, c in amounts]
        )[["category", "messages", "cost"]]
        st.dataframe(
            frame,
            hide_index=True,
            column_config={
                "category": st.column_config.TextColumn("Category"),
                "messages": st.column_config.NumberColumn("Messages", format="%d"),
                "cost": st.column_config.TextColumn("Cost"),
            },
        )


def _suppliers(data: stats.AnalyticsReport) -> None:
    st.subheader("Suppliers")
    table = data.suppliers.drop(columns=["supplier_id"])
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "supplier": st.column_config.TextColumn("Supplier"),
            "messages": st.column_config.NumberColumn("Messages", format="%d"),
            "delivered": st.column_config.NumberColumn("Delivered", format="%d"),
            "read": st.column_config.NumberColumn("Read", format="%d"),
            "failed": st.column_config.NumberColumn("Failed", format="%d"),
            "replied": st.column_config.NumberColumn("Answered", format="%d"),
            **{
                rate.key: st.column_config.ProgressColumn(
                    rate.label, help=rate.help, min_value=0, max_value=1, format="percent"
                )
                for rate in (rates.DELIVERED, rates.READ, rates.ANSWERED)
            },
            "last_sent_at": st.column_config.DatetimeColumn("Last sent", format="distance"),
        },
    )
    if len(table) >= 200:
        st.caption("The 200 suppliers with the most messages; filter to see others.")
