"""The send page (AppTest) on a real SQLite file: pick, preview, flag, send once, follow."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, func, select

from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.templates import upsert_templates
from tests.dashboard.pages import dashboard_env, page, person, texts

__all__ = ["dashboard_env"]

MODULE = "dashboard.views.send"


def _templates(engine: Engine, tenant: str = "default") -> None:
    upsert_templates(
        engine, tenant, [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    )


def _messages(engine: Engine) -> list[WhatsAppMessage]:
    with Session(engine) as session:
        return list(session.exec(select(WhatsAppMessage)).all())


def _fill(at, **values: str):  # type: ignore[no-untyped-def]
    for key, value in values.items():
        at.text_input(key=f"send_{key}").set_value(value)
    return at.run()


def test_a_fresh_install_explains_where_templates_come_from(
    dashboard_env: str, engine: Engine
) -> None:
    at = page(MODULE, person("buyer")).run()
    assert not at.exception
    assert "No approved PO notice template yet" in texts(at)
    assert len(at.button) == 0


def test_the_preview_follows_the_form_and_the_send_happens_once(
    dashboard_env: str, engine: Engine
) -> None:
    _templates(engine)
    at = page(MODULE, person("buyer", name="ana")).run()
    assert not at.exception
    assert at.selectbox(key="send_template").value == "po_notification"
    assert at.selectbox(key="send_language").value == "es"
    assert at.button(key="send_go").disabled
    at = _fill(at, name="Harinas Martín", phone="612 34 56 78", po="PO-7", amount="1.234,50")
    html = "".join(str(element.proto) for element in at.get("html"))
    assert "PO-7" in html and "1.234,50" in html and "Confirmar pedido" in html
    assert "no recorded consent" in texts(at) and at.button(key="send_go").disabled
    at = at.checkbox(key="send_consent").check().run()  # the buyer confirms the opt-in
    assert "Ready to send to +34612345678" in texts(at)
    assert not at.button(key="send_go").disabled
    at.button(key="send_go").click().run()
    assert "PO PO-7 queued for +34612345678." in texts(at)
    assert "Ready to send to +34612345678" not in texts(at)  # the preview says it went out
    assert "Sent to +34612345678: its status is below" in texts(at)
    at.button(key="send_go").click().run()  # a second click, or a rerun
    assert "nothing was sent twice" in texts(at)
    (message,) = _messages(engine)
    assert message.po_number == "PO-7" and message.created_by == "ana"
    assert message.template_language == "es" and message.status == "pending"
    assert "pending" in texts(at)  # the live status panel


def test_problems_are_listed_and_the_button_stays_disabled(
    dashboard_env: str, engine: Engine
) -> None:
    _templates(engine)
    at = page(MODULE, person("buyer")).run()
    at = _fill(at, name="=cmd|' /C calc'!A0", phone="+1 555", po="PO-8", amount="2.750")
    shown = texts(at)
    assert "Fix before sending" in shown
    assert "ambiguous" in shown and "+1 555" in shown
    assert at.button(key="send_go").disabled
    at.radio(key="send_decimal").set_value(",").run()
    assert "ambiguous" not in texts(at)
    assert _messages(engine) == []


def test_picking_a_supplier_fills_the_form_and_the_language(
    dashboard_env: str, engine: Engine
) -> None:
    _templates(engine)
    uk = Supplier(tenant_id="default", name="Acme UK", phone_e164="+447700900123", language="en")
    with Session(engine) as session:
        session.add(uk)
        session.add(Supplier(tenant_id="other", name="Acme Hidden", phone_e164="+34612000111"))
        session.commit()
        session.refresh(uk)
    at = page(MODULE, person("buyer")).run()
    at.text_input(key="send_query").set_value("acme").run()
    options = at.selectbox(key="send_supplier").options
    assert any("Acme UK" in option for option in options)
    assert not any("Hidden" in option for option in options)  # another tenant's supplier
    at.selectbox(key="send_supplier").set_value(uk.id).run()
    assert at.text_input(key="send_name").value == "Acme UK"
    assert at.text_input(key="send_phone").value == "+447700900123"
    assert at.selectbox(key="send_language").value == "en"
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Supplier)).one() == 2


def test_an_opted_out_supplier_is_refused_with_the_reason_and_no_checkbox(
    dashboard_env: str, engine: Engine
) -> None:
    _templates(engine)
    from core.consent import withdraw

    with Session(engine) as session:
        out = Supplier(tenant_id="default", name="Baja SL", phone_e164="+34612990002")
        session.add(out)
        session.flush()
        withdraw(session, out, source="admin", by="root")
        session.commit()
    at = page(MODULE, person("buyer")).run()
    at = _fill(at, name="Baja SL", phone="612 99 00 02", po="PO-X", amount="10")
    shown = texts(at)
    assert "Baja SL opted out of WhatsApp messages" in shown
    assert "an admin in the supplier directory" in shown
    assert not [c for c in at.checkbox if c.key == "send_consent"]
    assert at.button(key="send_go").disabled and _messages(engine) == []


def test_a_tenant_with_several_numbers_picks_the_one_to_send_from(
    dashboard_env: str, engine: Engine
) -> None:
    from core.numbers.admin import add_number
    from core.settings import get_settings

    _templates(engine)
    at = page(MODULE, person("buyer")).run()
    assert not [s for s in at.selectbox if s.key == "send_from"]  # one number: no choice
    add_number(engine, get_settings(), tenant_id="default", phone_number_id="2000001",
               access_token=None, display_name="Norte <b>SL</b>",
               display_number="+34 910 00 00 01")  # fmt: skip
    add_number(engine, get_settings(), tenant_id="other", phone_number_id="2000009",
               access_token=None)  # fmt: skip
    at = page(MODULE, person("buyer")).run()
    picker = at.selectbox(key="send_from")
    env_id = get_settings().phone_number_id
    assert picker.options == [
        f"Environment number · {env_id} (default)",
        "Norte <b>SL</b> · +34 910 00 00 01",
    ]
    assert picker.value == env_id  # the default preselected; another tenant's not offered
    picker.set_value("2000001").run()
    at = _fill(at, name="Harinas", phone="612 34 56 78", po="PO-7", amount="10")
    at = at.checkbox(key="send_consent").check().run()
    at.button(key="send_go").click().run()
    assert not at.exception
    (message,) = _messages(engine)
    assert message.phone_number_id == "2000001"
