"""Settings (admins): the rate card costs are computed with, the users overview, the
configuration with every secret masked, consent rules and the tenant's WhatsApp numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pandas as pd
import streamlit as st

from core.auth import Action, PermissionDenied, can
from core.config_summary import describe_settings, effective_summary, shown_value
from core.formatting import format_day, format_number
from core.i18n import _
from core.meta_words import category_words, pricing_type_words
from core.pricing import (
    CATEGORIES,
    EXAMPLE_NOTE,
    PRICING_TYPES,
    RateCardError,
    card_currency,
    delete_rate_as,
    list_rates,
    set_rate_as,
)
from core.users import UserInfo, list_users
from dashboard import runtime
from dashboard.views.consent_settings import render_consent_tab
from dashboard.views.followup_settings import render_followup_tab
from dashboard.views.numbers_settings import render_numbers_tab
from dashboard.widgets import ago, local_time, md_escape, paged, pager, viewer_today


def render(user: UserInfo) -> None:
    """Draw the settings page for `user` (admins)."""
    if not can(user, Action.MANAGE_SETTINGS):
        st.error(_("The {role} role may not {action}").format(
            role=_(user.role.value), action=_("manage settings")))  # fmt: skip
        return
    st.title(_("Settings"))
    rates, users, config, consent, numbers, followup = st.tabs(
        [_("Rate card"), _("Users"), _("Configuration"), _("Consent"), _("Numbers"),
         _("Follow-up")]
    )  # fmt: skip
    with followup:
        render_followup_tab(user)
    with numbers:
        render_numbers_tab(user)
    with consent:
        render_consent_tab(user)
    with rates:
        _rate_card(user)
    with users:
        _users(user)
    with config:
        _configuration()


def _rate_card(user: UserInfo) -> None:
    engine = runtime.engine()
    st.caption(_("What one delivered message costs, by market (country calling code, or * for "
                 "any), category and Meta's pricing type. A new rate applies from its start "
                 "date; the previous one ends there. Meta changes prices on the first day of "
                 "a quarter."))  # fmt: skip
    card = list_rates(engine, user.tenant_id)
    if any(r.is_example for r in card):
        st.warning(_("The card still holds **example rates**: costs are shown as estimates "
                     "until you enter your markets' rates from Meta's price list."),
                   icon=":material/euro:")  # fmt: skip
    if card:
        shown = paged(card, "rate_card")
        rows = shown.rows
        frame = pd.DataFrame(
            {
                "market": [_market(r.market) for r in rows],
                "category": [_category(r.category) for r in rows],
                "type": [pricing_type_words(r.pricing_type) for r in rows],
                "rate": [format_number(r.rate, upto=6) for r in rows],
                "currency": [r.currency for r in rows],
                "from": [local_time(r.effective_from) for r in rows],
                # an open end is said in words, never "None"
                "until": [_until(r.effective_to) for r in rows],
                # the seeded example's stored English note reads in the reader's language
                "note": [
                    _("example rate") if r.is_example and r.note in (None, EXAMPLE_NOTE)
                    else r.note or ""
                    for r in rows
                ],
            }
        )
        st.dataframe(
            frame,
            hide_index=True,
            height="content",
            key="rate_card_table",
            column_config={
                "market": st.column_config.TextColumn(_("Market"), width=90),
                "category": st.column_config.TextColumn(_("Category"), width=180),
                "type": st.column_config.TextColumn(_("Type"), width=90),
                "rate": st.column_config.TextColumn(_("Rate"), width=70),
                "currency": st.column_config.TextColumn(_("Currency"), width=75),
                "from": st.column_config.TextColumn(_("From"), width=150),
                "until": st.column_config.TextColumn(_("Until"), width=150),
                "note": st.column_config.TextColumn(_("Note"), width=130),
            },
        )
        pager(shown, "rate_card")
    else:
        st.info(_("No rates yet: costs show as unpriced until you add some."))
    left, right = st.columns([3, 2], gap="large")
    with left, st.form("rate_add", clear_on_submit=False):
        st.markdown("**" + _("Add or change a rate") + "**")
        c1, c2, c3 = st.columns(3)
        market = c1.text_input(
            _("Market"), value="34", help=_("Calling code such as 34, or * for any")
        )
        category = c2.selectbox(
            _("Category"), [*CATEGORIES, "*"], index=CATEGORIES.index("utility"),
            format_func=_category,
        )  # fmt: skip
        ptype = c3.selectbox(_("Pricing type"), list(PRICING_TYPES), format_func=pricing_type_words)
        c4, c5, c6 = st.columns(3)
        rate = c4.text_input(_("Rate per message"), placeholder="0.0200")
        currency = c5.text_input(_("Currency"), value=card_currency(card), max_chars=3)
        start = c6.date_input(_("From (00:00 UTC)"), value=_next_quarter(), format="DD/MM/YYYY")
        note = st.text_input(_("Note (optional)"), max_chars=255)
        submitted = st.form_submit_button(_("Save rate"), type="primary")
    if submitted:
        try:
            saved = set_rate_as(
                engine, user, market=market, category=str(category), rate=rate,
                currency=currency, pricing_type=str(ptype), note=note or None,
                effective_from=datetime.combine(start, time(0), tzinfo=UTC),
            )  # fmt: skip
        except (RateCardError, PermissionDenied) as exc:  # may quote what was typed
            st.error(md_escape(_(str(exc))))
        else:
            st.toast(md_escape(_("Saved: {rate} {currency} from {day}").format(
                rate=saved.rate, currency=saved.currency,
                day=format_day(saved.effective_from.date()))))  # fmt: skip
            st.rerun()
    with right:
        if card:
            st.markdown("**" + _("Remove a rate") + "**")
            labels = {
                f"{_market(r.market)} · {_category(r.category)} · "
                f"{pricing_type_words(r.pricing_type)} · "
                f"{format_number(r.rate, upto=6)} {r.currency} · "
                f"{format_day(r.effective_from.date())}": r.id
                for r in card
            }
            chosen = st.selectbox(_("Rate"), list(labels), key="rate_delete_choice")
            if st.button(_("Remove"), key="rate_delete") and chosen in labels:
                try:
                    delete_rate_as(engine, user, labels[chosen])
                except PermissionDenied as exc:
                    st.error(md_escape(_(str(exc))))
                else:
                    st.rerun()


def _until(end: datetime | None) -> str:
    """A rate's end: its time, or that it is still in force (never "None")."""
    return local_time(end) if end is not None else _("in force")


def _market(market: str) -> str:
    return _("any") if market == "*" else f"+{market}"


def _category(category: str) -> str:
    return _("any") if category == "*" else category_words(category)


def _next_quarter(today: date | None = None) -> date:
    day = today or viewer_today()
    month = ((day.month - 1) // 3 + 1) * 3 + 1
    return date(day.year + (month > 12), (month - 1) % 12 + 1, 1)


def _users(user: UserInfo) -> None:
    st.caption(_("Users and roles are managed from a terminal:") + " `wanotify users add NAME "
               "--role buyer|manager|admin`, `wanotify users remove NAME`.")  # fmt: skip
    shown = paged(list_users(runtime.engine(), user.tenant_id), "users")
    people = shown.rows
    st.dataframe(
        pd.DataFrame(
            {
                "User": [u.username for u in people],
                "Name": [u.display_name for u in people],
                "Role": [_(u.role.value) for u in people],
                "Tenants": [", ".join(u.tenants) for u in people],
                "Active": [u.is_active for u in people],
                "Demo": [u.is_demo for u in people],
                "Last login": [ago(u.last_login_at) for u in people],
            }
        ),
        hide_index=True,
        height="content",
        key="users_table",
        column_config={
            "User": st.column_config.TextColumn(_("User")),
            "Name": st.column_config.TextColumn(_("Name")),
            "Role": st.column_config.TextColumn(_("Role")),
            "Tenants": st.column_config.TextColumn(_("Tenants")),
            "Active": st.column_config.CheckboxColumn(_("Active")),
            "Demo": st.column_config.CheckboxColumn(_("Demo")),
            "Last login": st.column_config.TextColumn(_("Last login")),
        },
    )
    pager(shown, "users")


def _configuration() -> None:
    cfg = runtime.settings()
    st.caption(_("Read from the environment and `.env`. Secrets are never shown here: only "
                 "whether they are set."))  # fmt: skip
    for title, items, name, key, label in (
        (_("In effect"), effective_summary(cfg), _("Setting"), "config_effective", _),
        (_("Environment variables"), describe_settings(cfg), _("Variable"), "config_env", str),
    ):
        st.markdown(f"**{title}**")
        shown = paged(items, key)
        st.dataframe(
            pd.DataFrame({"name": [label(i.variable) for i in shown.rows],
                          "value": [shown_value(i.value) for i in shown.rows]}),
            hide_index=True,
            height="content",
            key=f"{key}_table",
            column_config={
                "name": st.column_config.TextColumn(name, width=330),
                "value": st.column_config.TextColumn(_("Value"), width=600),
            },
        )  # fmt: skip
        pager(shown, key)

