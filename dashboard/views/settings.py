"""Settings (admins): the rate card costs are computed with, the users overview, and the
configuration with every secret masked."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pandas as pd
import streamlit as st

from core.auth import Action, PermissionDenied, can
from core.config_summary import describe_settings, effective_summary
from core.pricing import (
    CATEGORIES,
    PRICING_TYPES,
    RateCardError,
    delete_rate_as,
    list_rates,
    set_rate_as,
)
from core.users import UserInfo, list_users
from dashboard import runtime
from dashboard.widgets import md_escape, viewer_today


def render(user: UserInfo) -> None:
    """Draw the settings page for `user` (admins)."""
    if not can(user, Action.MANAGE_SETTINGS):
        st.error(f"The {user.role.value} role may not manage settings")
        return
    st.title("Settings")
    rates, users, config = st.tabs(["Rate card", "Users", "Configuration"])
    with rates:
        _rate_card(user)
    with users:
        _users(user)
    with config:
        _configuration()


def _rate_card(user: UserInfo) -> None:
    engine = runtime.engine()
    st.caption("What one delivered message costs, by market (country calling code, or * for "
               "any), category and Meta's pricing type. A new rate applies from its start "
               "date; the previous one ends there. Meta changes prices on the first day of a "
               "quarter.")  # fmt: skip
    card = list_rates(engine, user.tenant_id)
    if any(r.is_example for r in card):
        st.warning("The card still holds **example rates**: costs are shown as estimates until "
                   "you enter your markets' rates from Meta's price list.",
                   icon=":material/euro:")  # fmt: skip
    if card:
        frame = pd.DataFrame(
            {
                "id": [r.id for r in card],
                "Market": [_market(r.market) for r in card],
                "Category": [r.category for r in card],
                "Type": [r.pricing_type for r in card],
                "Rate": [f"{r.rate:.6f}".rstrip("0").rstrip(".") for r in card],
                "Currency": [r.currency for r in card],
                "From": [r.effective_from for r in card],
                "Until": [r.effective_to for r in card],
                "Note": [r.note or ("example rate" if r.is_example else "") for r in card],
            }
        )
        st.dataframe(
            frame.drop(columns=["id"]),
            hide_index=True,
            column_config={
                "From": st.column_config.DatetimeColumn("From", format="DD/MM/YYYY HH:mm"),
                "Until": st.column_config.DatetimeColumn("Until", format="DD/MM/YYYY HH:mm"),
            },
        )
    else:
        st.info("No rates yet: costs show as unpriced until you add some.")
    left, right = st.columns([3, 2], gap="large")
    with left, st.form("rate_add", clear_on_submit=False):
        st.markdown("**Add or change a rate**")
        c1, c2, c3 = st.columns(3)
        market = c1.text_input("Market", value="34", help="Calling code such as 34, or * for any")
        category = c2.selectbox("Category", [*CATEGORIES, "*"], index=CATEGORIES.index("utility"))
        ptype = c3.selectbox("Pricing type", list(PRICING_TYPES))
        c4, c5, c6 = st.columns(3)
        rate = c4.text_input("Rate per message", placeholder="0.0200")
        currency = c5.text_input("Currency", value="EUR", max_chars=3)
        start = c6.date_input("From (00:00 UTC)", value=_next_quarter(), format="DD/MM/YYYY")
        note = st.text_input("Note (optional)", max_chars=255)
        submitted = st.form_submit_button("Save rate", type="primary")
    if submitted:
        try:
            saved = set_rate_as(
                engine, user, market=market, category=str(category), rate=rate,
                currency=currency, pricing_type=str(ptype), note=note or None,
                effective_from=datetime.combine(start, time(0), tzinfo=UTC),
            )  # fmt: skip
        except (RateCardError, PermissionDenied) as exc:  # may quote what was typed
            st.error(md_escape(exc))
        else:
            st.toast(md_escape(f"Saved: {saved.rate} {saved.currency} from "
                               f"{saved.effective_from:%d/%m/%Y}"))  # fmt: skip
            st.rerun()
    with right:
        if card:
            st.markdown("**Remove a rate**")
            labels = {
                f"{_market(r.market)} · {r.category} · {r.pricing_type} · {r.rate} "
                f"{r.currency} from {r.effective_from:%d/%m/%Y}": r.id
                for r in card
            }
            chosen = st.selectbox("Rate", list(labels), key="rate_delete_choice")
            if st.button("Remove", key="rate_delete") and chosen in labels:
                try:
                    delete_rate_as(engine, user, labels[chosen])
                except PermissionDenied as exc:
                    st.error(md_escape(exc))
                else:
                    st.rerun()


def _market(market: str) -> str:
    return "any" if market == "*" else f"+{market}"


def _next_quarter(today: date | None = None) -> date:
    day = today or viewer_today()
    month = ((day.month - 1) // 3 + 1) * 3 + 1
    return date(day.year + (month > 12), (month - 1) % 12 + 1, 1)


def _users(user: UserInfo) -> None:
    st.caption("Users and roles are managed from a terminal: `wanotify users add NAME --role "
               "buyer|manager|admin`, `wanotify users remove NAME`.")  # fmt: skip
    people = list_users(runtime.engine(), user.tenant_id)
    st.dataframe(
        pd.DataFrame(
            {
                "User": [u.username for u in people],
                "Name": [u.display_name for u in people],
                "Role": [u.role.value for u in people],
                "Tenants": [", ".join(u.tenants) for u in people],
                "Active": [u.is_active for u in people],
                "Demo": [u.is_demo for u in people],
                "Last login": [u.last_login_at for u in people],
            }
        ),
        hide_index=True,
        column_config={
            "Last login": st.column_config.DatetimeColumn("Last login", format="distance"),
        },
    )


def _configuration() -> None:
    cfg = runtime.settings()
    st.caption("Read from the environment and `.env`. Secrets are never shown here: only "
               "whether they are set.")  # fmt: skip
    st.markdown("**In effect**")
    st.dataframe(
        pd.DataFrame([(i.variable, i.value) for i in effective_summary(cfg)],
                     columns=["Setting", "Value"]),
        hide_index=True,
    )  # fmt: skip
    st.markdown("**Environment variables**")
    st.dataframe(
        pd.DataFrame([(i.variable, i.value) for i in describe_settings(cfg)],
                     columns=["Variable", "Value"]),
        hide_index=True,
    )  # fmt: skip

