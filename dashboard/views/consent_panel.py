"""Analytics' consent panel: opt-outs (and how they came), suppliers without recorded
consent, and queued templates refused because the supplier opted out since."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from core.consent.policy import source_label
from core.consent.stats import consent_summary
from core.formatting import format_number
from core.i18n import _
from core.stats import StatsFilter


def render_consent_panel(engine: Engine, flt: StatsFilter) -> None:
    """Draw the consent counts for the analytics filter's tenants and days."""
    summary = consent_summary(engine, flt.tenant_ids, flt.start, flt.end, flt.tz)
    st.subheader(_("Consent"))
    a, b, c, d = st.columns(4)
    a.metric(_("Opted out (now)"), format_number(summary.opted_out))
    b.metric(_("Opt-outs in this range"), format_number(summary.opt_outs_in_range))
    c.metric(_("Without recorded consent (now)"), format_number(summary.without_consent))
    d.metric(_("Refused: opted out after queuing"), format_number(summary.refused_in_range))
    if summary.opted_out_by_source:
        st.caption(
            _("Opted out by: {sources}").format(
                sources="; ".join(
                    f"{source_label(source)}: {format_number(n)}"
                    for source, n in sorted(summary.opted_out_by_source.items())
                )
            )
        )
