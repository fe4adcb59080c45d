"""Parsing Meta's template objects (and registry rows) into TemplateDefinition."""

from __future__ import annotations

from typing import Any

import pytest

from core.models import WhatsAppTemplate
from core.templates import TemplateDefinition, TemplateDefinitionError, placeholders
from tests.fixtures.templates import po_notification, positional_reminder, text_header_with_buttons


def test_named_po_notification() -> None:
    defn = TemplateDefinition.from_meta(po_notification("es"))
    assert (
        defn.name == "po_notification"
        and defn.language == "es"
        and defn.key == "po_notification:es"
    )
    assert defn.parameter_format == "NAMED"
    assert defn.body_params == ("supplier_name", "po_number", "total_amount")
    assert defn.parameter_count == 3
    assert defn.header_format == "DOCUMENT" and defn.has_media_header and defn.header_params == ()
    assert defn.footer_text == "Compras"
    assert [(b.index, b.type, b.text) for b in defn.buttons] == [
        (0, "QUICK_REPLY", "Confirmar"),
        (1, "QUICK_REPLY", "Rechazar"),
    ]
    assert defn.is_sendable and defn.unsendable_reason is None
    assert defn.meta_id == "1029384756473821"
    assert not defn.body_is_only_component


def test_positional_names_are_numbered_and_unique() -> None:
    defn = TemplateDefinition.from_meta(positional_reminder())
    assert defn.parameter_format == "POSITIONAL"
    assert defn.body_params == ("1", "2", "3")  # {{1}} appears twice, counted once
    assert defn.parameter_count == 3
    assert defn.body_is_only_component


def test_positional_order_is_numeric_not_textual() -> None:
    body = " ".join(f"{{{{{n}}}}}" for n in (10, 2, 1, 3, 4, 5, 6, 7, 8, 9))
    defn = TemplateDefinition.from_meta(
        positional_reminder(components=[{"type": "BODY", "text": body}])
    )
    assert defn.body_params == tuple(str(n) for n in range(1, 11))


def test_text_header_parameter_and_buttons() -> None:
    defn = TemplateDefinition.from_meta(text_header_with_buttons())
    assert defn.header_format == "TEXT" and defn.header_text == "Payment {{1}}"
    assert defn.header_params == ("1",)
    assert defn.body_params == ("1", "2")
    url, phone, code = defn.buttons
    assert url.has_url_parameter and url.takes_parameter
    assert not phone.takes_parameter
    assert code.takes_parameter and not code.has_url_parameter


def test_parameter_format_is_inferred_when_missing() -> None:
    data = po_notification()
    del data["parameter_format"]
    assert TemplateDefinition.from_meta(data).parameter_format == "NAMED"
    data = positional_reminder()
    del data["parameter_format"]
    assert TemplateDefinition.from_meta(data).parameter_format == "POSITIONAL"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("PAUSED", "paused"),
        ("REJECTED", "rejected"),
        ("PENDING", "pending"),
        ("DISABLED", "disabled"),
    ],
)
def test_only_approved_templates_are_sendable(status: str, reason: str) -> None:
    defn = TemplateDefinition.from_meta(po_notification(status=status))
    assert not defn.is_sendable
    assert reason in (defn.unsendable_reason or "")


def test_placeholders_tolerate_spaces_and_keep_first_appearance_order() -> None:
    assert placeholders("{{ b }} and {{a}} and {{b}}") == ("b", "a")
    assert placeholders("{{}} {{ }} {x} {{a-b}}") == ()
    assert placeholders(None) == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        ({"language": "es", "components": []}, "no name"),
        ({"name": "x", "components": [{"type": "BODY", "text": "hi"}]}, "no language"),
        ({"name": "x", "language": "es", "components": []}, "no BODY"),
        ({"name": "x", "language": "es", "components": "BODY"}, "must be a list"),
        ({"name": "x", "language": "es", "components": [1]}, "not an object"),
        ({"name": "x", "language": "es", "components": [{"text": "a"}]}, "has no type"),
        ({"name": {"a": 1}, "language": "es"}, "expected text"),
        (
            {"name": "x", "language": "es", "components": [{"type": "BODY", "text": 5}]},
            "expected text",
        ),
        (
            {
                "name": "x",
                "language": "es",
                "components": [{"type": "BODY", "text": "a"}, {"type": "BUTTONS", "buttons": [3]}],
            },
            "button 0 is not an object",
        ),
    ],
)
def test_malformed_definitions_are_refused(data: Any, message: str) -> None:
    with pytest.raises(TemplateDefinitionError, match=message):
        TemplateDefinition.from_meta(data)


def test_from_row_prefers_components_and_keeps_hold_and_activity() -> None:
    data = po_notification()
    row = WhatsAppTemplate(
        tenant_id="t",
        template_name="po_notification",
        template_key="po_notification:es",
        language="es",
        status="APPROVED",
        parameter_format="NAMED",
        body_text="stale copy",
        components=data["components"],
        held_reason="Meta paused it (132015)",
    )
    defn = TemplateDefinition.from_row(row)
    assert defn.body_params == ("supplier_name", "po_number", "total_amount")
    assert not defn.is_sendable and "132015" in (defn.unsendable_reason or "")
    row.held_reason = None
    row.is_active = False
    assert "no longer on the account" in (TemplateDefinition.from_row(row).unsendable_reason or "")


def test_from_row_without_components_uses_the_columns() -> None:
    row = WhatsAppTemplate(
        tenant_id="t",
        template_name="manual",
        template_key="manual:es",
        language="es",
        body_text="Pedido {{1}} de {{2}}",
        header_format="TEXT",
        header_text="Aviso {{1}}",
        footer_text="Pie",
        buttons=[{"type": "QUICK_REPLY", "text": "OK"}],
    )
    defn = TemplateDefinition.from_row(row)
    assert defn.body_params == ("1", "2")
    assert defn.header_params == ("1",)
    assert defn.footer_text == "Pie"
    assert defn.buttons[0].type == "QUICK_REPLY"
    assert defn.is_sendable
