"""Consent on the admin pages (AppTest, real SQLite): the suppliers page shows an opt-out,
its source and the supplier's own words in the history; Settings → Consent changes the
tenant's rule; analytics counts opt-outs."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from core.consent import allows_unrecorded, withdraw
from core.models.suppliers import Supplier
from core.supplier_directory import SupplierInput, add_supplier
from tests.dashboard.pages import dashboard_env, page, person, texts

__all__ = ["dashboard_env"]

ADMIN = person("admin", name="root")


def test_the_suppliers_page_shows_an_opt_out_its_source_and_the_words(
    dashboard_env: str, engine: Engine
) -> None:
    view = add_supplier(engine, ADMIN, SupplierInput("Baja SL", "+34612990003", opted_in=True))
    with Session(engine) as session:
        row = session.get(Supplier, view.id)
        assert row is not None
        withdraw(session, row, source="reply", by="+34612990003", evidence="<b>BAJA</b>",
                 at=datetime(2026, 11, 2, 10, 0, tzinfo=UTC))  # fmt: skip
        session.commit()
    at = page("dashboard.views.suppliers", ADMIN)
    at.session_state["suppliers_selected"] = view.id
    at.run()
    assert not at.exception
    (table,) = at.dataframe[:1]
    assert list(table.value["Consent"]) == ["opted out"]
    shown = texts(at)
    assert "a reply with a stop word" in shown and "(+34612990003)" in shown
    history = at.dataframe[1].value
    assert list(history.iloc[:, 1]) == ["opted out", "consent given"]
    assert list(history.iloc[:, 4]) == ["<b>BAJA</b>", ""]  # the words, as text


def test_settings_consent_tab_changes_the_tenants_rule(dashboard_env: str, engine: Engine) -> None:
    at = page("dashboard.views.settings", ADMIN).run()
    assert not at.exception
    radio = at.radio(key="settings_consent_allow")
    assert radio.value is False
    radio.set_value(True).run()
    assert allows_unrecorded(Session(engine), "default")
    assert "stop" in " ".join(t.value for t in at.text)


def test_analytics_names_each_opt_out_source_with_its_count(
    dashboard_env: str, engine: Engine
) -> None:
    view = add_supplier(engine, ADMIN, SupplierInput("Stop SL", "+34612990004", opted_in=True))
    with Session(engine) as session:
        row = session.get(Supplier, view.id)
        assert row is not None
        withdraw(session, row, source="reply", by="+34612990004", evidence="STOP",
                 at=datetime(2026, 11, 2, 10, 0, tzinfo=UTC))  # fmt: skip
        session.commit()
    at = AppTest.from_function(_consent_panel, args=(engine.url.render_as_string(False),))
    at.run()
    assert not at.exception
    assert "Opted out by: a reply with a stop word: 1" in texts(at)  # not "…word 1"


def _consent_panel(url: str) -> None:
    from datetime import date

    from core.db import get_engine
    from core.stats import StatsFilter
    from dashboard.views.consent_panel import render_consent_panel

    flt = StatsFilter(("default",), date(2026, 11, 1), date(2026, 11, 30))
    render_consent_panel(get_engine(url), flt)
