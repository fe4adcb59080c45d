"""Templates page, "New template" (AppTest): problems under their fields while typing,
a submission to the real sandbox, and Meta's refusal shown as text."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from core.sandbox import SandboxServer
from core.templates import get_template
from tests.dashboard.pages import dashboard_env, page, person, texts

__all__ = ["dashboard_env"]

MODULE = "dashboard.views.templates"
KEY = "tpl_new_"


def fill(at: object, **values: str) -> None:
    for name, value in values.items():
        widget = at.text_area(key=KEY + name) if name in ("body", "buttons") else None  # type: ignore[attr-defined]
        if widget is None:
            widget = at.text_input(key=KEY + name)  # type: ignore[attr-defined]
        widget.input(value)


def test_problems_show_under_their_fields_and_block_the_submission(
    dashboard_env: str, sandbox_env: SandboxServer
) -> None:
    at = page(MODULE, person("admin")).run()
    assert at.button(key=KEY + "submit").disabled  # nothing written yet, nothing flagged
    assert not [e for e in at.error]
    fill(at, name="PO Chaser", body="{{supplier_name}} debe confirmar el pedido {{po_number}}")
    at.run()
    shown = texts(at)
    assert "The name may use only lowercase letters, digits and underscores" in shown
    assert "The body may not start or end with a parameter" in shown
    assert "Give a sample value for {{supplier_name}}" in shown
    assert at.button(key=KEY + "submit").disabled
    keys = {t.key for t in at.text_input}
    assert {KEY + "example_supplier_name", KEY + "example_po_number"} <= keys


def test_a_valid_template_is_submitted_and_listed_as_pending(
    dashboard_env: str, engine: Engine, sandbox_env: SandboxServer
) -> None:
    sandbox_env.configure(template_review_s=60)
    at = page(MODULE, person("admin")).run()
    fill(
        at,
        name="po_chaser",
        header="Pedido {{po_number}}",
        body="Hola {{supplier_name}}, el pedido {{po_number}} sigue sin confirmar. <b>Gracias</b>.",
        footer="Compras",
        buttons="Confirmar\nRechazar",
    )
    at.run()
    fill(at, example_supplier_name="Harinas Martín", example_po_number="PO-1")
    at.run()
    assert not at.button(key=KEY + "submit").disabled
    assert any("HTML" in w.value for w in at.warning)  # a warning, not a blocker
    bubble = "".join(str(h.proto) for h in at.get("html"))
    assert "Harinas Martín" in bubble and "&lt;b&gt;Gracias&lt;/b&gt;" in bubble
    at.button(key=KEY + "submit").click().run()
    assert not at.exception
    assert "Submitted po_chaser (es) for review: Pending review" in texts(at)
    with Session(engine) as session:
        row = get_template(session, "default", "po_chaser", "es")
    assert row is not None and row.status == "PENDING" and row.parameter_format == "NAMED"


def test_metas_refusal_is_shown_in_its_words_as_text(
    dashboard_env: str, engine: Engine, sandbox_env: SandboxServer
) -> None:
    at = page(MODULE, person("admin")).run()
    fill(at, name="po_notification", body="Hola {{supplier_name}}, su pedido está listo hoy.")
    at.run()
    fill(at, example_supplier_name="Harinas")
    at.run()
    at.button(key=KEY + "submit").click().run()
    assert "Meta refused the template: There is already Spanish content" in texts(at)


def test_a_rejection_reads_in_words_with_metas_code(
    dashboard_env: str, sandbox_env: SandboxServer
) -> None:
    at = page(MODULE, person("admin")).run()
    at.button(key="templates_sync").click().run()
    at.selectbox(key="templates_preview").set_value("spring_promo · es").run()
    assert (
        "Rejected by Meta: promotional content outside a marketing template (PROMOTIONAL)"
        in texts(at)
    )
