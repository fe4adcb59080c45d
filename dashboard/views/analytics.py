"""Analytics: did the notices arrive, were they read and answered, what failed, what it cost.

Every figure comes from `core.stats.report` (aggregated in SQL) and is cached for a
minute per filter; this module only draws filters, tiles and charts.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import streamlit as st

from core import analytics_export, rates, stats
from core.auth import Action, PermissionDenied, require, scope_tenants, visible_tenants
from core.db import get_engine
from core.demo import demo_message_count
from core.formatting import format_day, format_number
from core.i18n import _, current_locale
from core.meta_words import category_words
from core.users import UserInfo
from dashboard import charts, runtime
from dashboard.views.consent_panel import render_consent_panel
from dashboard.widgets import ago, md_escape, paged, pager, viewer_today, viewer_zone

CACHE_SECONDS = 60
DEFAULT_DAYS = 30


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _report(
    url: str,
    tenants: tuple[str, ...],
    start: date,
    end: date,
    tz: str,
    templates: tuple[str, ...],
    suppliers: tuple[int, ...],
    locale: str,  # part of the cache key: failure reasons are worded in the reader's language
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
        st.error(md_escape(_(str(exc))))
        return
    url = runtime.settings().database_url
    st.title(_("Analytics"))
    st.caption(_("Delivery, reading, answers, failures and cost of the notices sent to "
                 "suppliers"))  # fmt: skip
    tz = viewer_zone()
    flt = _filters(user, url, tz)
    if flt is None:
        return
    if _demo_rows(url, flt.tenant_ids):
        st.info(
            _("**Demo data.** These figures include the sandbox's demo messages and "
              "suppliers (ERP references DEMO-…), seeded so the charts are not empty. A "
              "fresh database in live mode has none."),
            icon=":material/science:",
        )
    with st.spinner(_("Crunching the numbers…")):
        data = _report(url, *_key(flt), current_locale())
    if data.empty:
        _empty_state(flt)
        return
    _tiles(data)
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.subheader(_("Funnel"))
        st.plotly_chart(charts.funnel_figure(data.funnel), key="funnel")
        st.caption(
            _("{failed} failed · {queued} still queued or waiting for a person").format(
                failed=format_number(data.funnel.failed), queued=format_number(data.funnel.queued)
            )
        )
    with right:
        titles = {"day": _("Daily rates"), "week": _("Weekly rates"), "month": _("Monthly rates")}
        st.subheader(titles[data.granularity])
        st.plotly_chart(charts.rates_figure(data.daily, data.granularity), key="rates")
    _latency(data)
    fail_col, ack_col = st.columns([3, 2], gap="large")
    with fail_col:
        st.subheader(_("Failures by reason"))
        if data.failures.empty:
            st.success(_("No failed messages in this range."))
        else:
            st.plotly_chart(charts.failures_figure(data.failures), key="failures")
    with ack_col:
        _acknowledgements(data.acknowledgements)
    _cost(data.cost)
    _suppliers(data)
    render_consent_panel(runtime.engine(), flt)  # opt-outs and consent refusals


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
            _("Dates"),
            value=(today - timedelta(days=DEFAULT_DAYS - 1), today),
            max_value=today + timedelta(days=1),
            format="DD/MM/YYYY",
            key="analytics_dates",
        )
    requested: list[str] = []
    if len(visible) > 1:
        with cols[3]:
            requested = st.multiselect(
                _("Tenants"), visible, placeholder=_("All my tenants"), key="analytics_tenants"
            )
    try:
        tenants = scope_tenants(user, requested)
    except PermissionDenied as exc:
        st.error(md_escape(_(str(exc))))
        return None
    templates, suppliers = _options(url, tenants)
    names = dict(suppliers)
    with cols[1]:
        chosen_templates = st.multiselect(
            _("Templates"), templates, placeholder=_("All templates"), key="analytics_templates"
        )
    with cols[2]:
        chosen_suppliers = st.multiselect(
            _("Suppliers"),
            list(names),
            format_func=lambda sid: names.get(sid, f"#{sid}"),
            placeholder=_("All suppliers"),
            key="analytics_suppliers",
        )
    if not isinstance(picked, tuple) or len(picked) != 2:
        st.info(_("Pick the last day of the range too."))
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
        st.warning(md_escape(_(str(exc))))
        return None


def _empty_state(flt: stats.StatsFilter) -> None:
    with st.container(border=True):
        st.markdown("### " + _("No messages in this range yet"))
        nothing = (
            _("Nothing was sent between **{start}** and **{end}** for the chosen templates "
              "or suppliers.")
            if flt.template_names or flt.supplier_ids
            else _("Nothing was sent between **{start}** and **{end}**.")
        ).format(start=format_day(flt.start), end=format_day(flt.end))
        hints = (
            _("Widen the dates or clear the filters above."),
            _("Buyers send PO notices from **{send}** or **{bulk}**; ERP events arrive on "
              "their own.").format(send=_("Send PO notice"), bulk=_("Bulk send (CSV)")),
            _("Figures appear here as soon as Meta reports the first statuses."),
        )
        st.markdown(nothing + "\n\n" + "\n".join(f"- {hint}" for hint in hints))  # fmt: skip


def _tiles(data: stats.AnalyticsReport) -> None:
    f = data.funnel
    cost = data.cost
    tiles = st.columns(6)
    tiles[0].metric(_("Messages"), format_number(f.total), border=True)
    for tile, rate in zip(tiles[1:4], (rates.DELIVERED, rates.READ, rates.ANSWERED),
                          strict=True):  # fmt: skip
        # the name as the label, its base under the figure: both fit a narrow tile
        tile.metric(_(rate.name), charts.format_share(rate.value(f.counts())),
                    _(rate.base_words), help=rate.help, border=True, delta_color="off",
                    delta_arrow="off")  # fmt: skip
    tiles[4].metric(
        _("Failed"), format_number(f.failed),
        help=_("Messages Meta refused or could not deliver"), border=True,
    )  # fmt: skip
    label = _("Cost")
    if len(cost.totals) == 1:
        (currency, amount), = cost.totals.items()
        label = _("Cost ({currency})").format(currency=currency)
        shown = charts.format_money(amount, "").strip()
    elif cost.totals:
        shown = " + ".join(charts.format_money(v, c) for c, v in sorted(cost.totals.items()))
    else:
        shown = "—"
    tiles[5].metric(
        label, shown,
        help=_("Delivered messages priced with the rate card (Settings); estimated with "
               "example rates")
        if cost.uses_example_rates
        else _("Delivered messages priced with the rate card (Settings)"),
        border=True,
    )  # fmt: skip


def _latency(data: stats.AnalyticsReport) -> None:
    left, right = st.columns(2, gap="large")
    for col, lat, title, color in (
        (left, data.to_deliver, _("Time to deliver"), charts.PRIMARY),
        (right, data.to_read, _("Time to read"), charts.READ),
    ):
        with col:
            st.subheader(title)
            if lat.count == 0:
                st.caption(_("No message reached this stage in the range."))
                continue
            st.caption(
                _("Median {median} · 90% within {p90} · {n} messages").format(
                    median=charts.format_duration(lat.p50_seconds),
                    p90=charts.format_duration(lat.p90_seconds),
                    n=format_number(lat.count),
                )
            )
            st.plotly_chart(charts.latency_figure(lat, color), key=f"latency_{lat.stage}")


def _acknowledgements(acks: stats.AckStats) -> None:
    st.subheader(_("PO acknowledgements"))
    if acks.notices == 0:
        st.caption(_("No PO notices in this range."))
        return
    st.caption(
        _(
            "{share} of {delivered} delivered PO notices were answered with a button: "
            "{confirmed} confirmed, {rejected} rejected."
        ).format(
            share=charts.format_share(acks.rate),
            delivered=format_number(acks.delivered),
            confirmed=format_number(acks.confirmed),
            rejected=format_number(acks.rejected),
        )
    )
    st.plotly_chart(charts.acknowledgements_figure(acks), key="acks")


def _cost(cost: stats.CostReport) -> None:
    st.subheader(_("Cost"))
    if cost.uses_example_rates:
        st.warning(
            _("Estimated with the **example rate card**: an administrator should enter the "
              "rates of your markets from Meta's current price list (Settings → Rate card)."),
            icon=":material/euro:",
        )  # fmt: skip
    notes = [_("{n} charged messages").format(n=format_number(cost.charged_messages))]
    if cost.free_messages:
        notes.append(_("{n} free (inside a customer-service window)").format(
            n=format_number(cost.free_messages)))  # fmt: skip
    if cost.unpriced_messages:
        notes.append(_("{n} with no rate in the card").format(
            n=format_number(cost.unpriced_messages)))  # fmt: skip
    if cost.unreported_messages:
        notes.append(_("{n} without pricing from Meta yet").format(
            n=format_number(cost.unreported_messages)))  # fmt: skip
    st.caption(" · ".join(notes))
    if not cost.currencies:
        st.caption(_("No priced messages in this range."))
        return
    chart, table = st.columns([3, 2], gap="large")
    with chart:
        st.plotly_chart(charts.cost_figure(cost), key="cost")
    with table:
        amounts = zip(cost.by_category["cost"], cost.by_category["currency"], strict=True)
        frame = cost.by_category.assign(
            cost=[charts.format_money(v, c) for v, c in amounts],
            category=[category_words(c) for c in cost.by_category["category"]],
        )[["category", "messages", "cost"]]
        st.dataframe(
            frame,
            hide_index=True,
            column_config={
                "category": st.column_config.TextColumn(_("Category")),
                "messages": st.column_config.NumberColumn(_("Messages"), format="%d"),
                "cost": st.column_config.TextColumn(_("Cost")),
            },
        )


def _suppliers(data: stats.AnalyticsReport) -> None:
    st.subheader(_("Suppliers"))
    whole = data.suppliers
    shown = paged(list(range(len(whole))), "analytics_suppliers")
    part = whole.iloc[shown.rows]
    # Each rate beside the count it is made of, headed with its base (core.rates), so
    # the table reads like the tiles; every column fits 1,400 px.
    counted = {rates.DELIVERED: "delivered", rates.READ: "read", rates.ANSWERED: "replied"}
    table = pd.DataFrame(
        {
            "supplier": list(part["supplier"]),
            "messages": list(part["messages"]),
            **{
                rate.key: [
                    f"{format_number(int(n))} · "
                    f"{charts.format_share(None if pd.isna(v) else float(v))}"
                    for n, v in zip(part[column], part[rate.key], strict=True)
                ]
                for rate, column in counted.items()
            },
            "failed": list(part["failed"]),
            "last_sent_at": [ago(at) for at in part["last_sent_at"]],
        }
    )
    widths = {rates.DELIVERED: 150, rates.READ: 150, rates.ANSWERED: 165}
    st.dataframe(
        table,
        hide_index=True,
        height="content",
        key="analytics_suppliers_table",
        column_config={
            "supplier": st.column_config.TextColumn(_("Supplier"), width=200),
            "messages": st.column_config.NumberColumn(_("Messages"), format="%d", width=85),
            **{
                rate.key: st.column_config.TextColumn(rate.label, help=rate.help, width=w)
                for rate, w in widths.items()
            },
            "failed": st.column_config.NumberColumn(_("Failed"), format="%d", width=70),
            "last_sent_at": st.column_config.TextColumn(_("Last sent"), width=105),
        },
    )
    pager(shown, "analytics_suppliers")
    st.download_button(
        _("Download this table (CSV)"),
        data=analytics_export.supplier_table_csv(whole),
        file_name="suppliers.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        key="analytics_suppliers_csv",
    )
    if len(whole) >= 200:
        st.caption(_("The 200 suppliers with the most messages; filter to see others."))
