"""`core.templates.rules` and `core.templates.draft`: a new template checked against
Meta's rules (every problem, with its field's path), and the JSON Meta takes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from core.i18n import set_locale
from core.templates.draft import TemplateDraft, build_template
from core.templates.rules import RuleProblem, blocking, check_template

BODY = "Hola {{supplier_name}}, el pedido {{po_number}} sigue pendiente. Confírmelo, por favor."


def draft(**changes: Any) -> TemplateDraft:
    values: dict[str, Any] = {
        "name": "po_reminder_es",
        "language": "es",
        "category": "UTILITY",
        "body": BODY,
        "examples": {"supplier_name": "Harinas Martín", "po_number": "PO-2026-0042"},
        "header": "Pedido {{po_number}}",
        "footer": "Departamento de Compras",
        "quick_replies": ("Confirmar", "Rechazar"),
    }
    values.update(changes)
    return TemplateDraft(**values)


def paths(problems: list[RuleProblem], *, only_blocking: bool = True) -> set[str]:
    return {p.path for p in (blocking(problems) if only_blocking else problems)}


def test_the_builder_writes_metas_create_json_with_named_parameters() -> None:
    assert build_template(draft()) == {
        "name": "po_reminder_es",
        "language": "es",
        "category": "UTILITY",
        "parameter_format": "NAMED",
        "components": [
            {
                "type": "HEADER",
                "format": "TEXT",
                "text": "Pedido {{po_number}}",
                "example": {
                    "header_text_named_params": [
                        {"param_name": "po_number", "example": "PO-2026-0042"}
                    ]
                },
            },
            {
                "type": "BODY",
                "text": BODY,
                "example": {
                    "body_text_named_params": [
                        {"param_name": "supplier_name", "example": "Harinas Martín"},
                        {"param_name": "po_number", "example": "PO-2026-0042"},
                    ]
                },
            },
            {"type": "FOOTER", "text": "Departamento de Compras"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Confirmar"},
                    {"type": "QUICK_REPLY", "text": "Rechazar"},
                ],
            },
        ],
    }
    assert check_template(build_template(draft())) == []


def test_a_body_only_draft_has_no_empty_components() -> None:
    built = build_template(draft(header="  ", footer="", quick_replies=("", " ")))
    assert [c["type"] for c in built["components"]] == ["BODY"]
    plain = build_template(draft(body="Gracias por su entrega.", header="", examples={}))
    assert "example" not in plain["components"][0]


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"name": "PO Reminder"}, "name"),
        ({"name": "po-reminder"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "a" * 513}, "name"),
        ({"name": "recordatorio_ñ"}, "name"),
        ({"language": "es-ES"}, "language"),
        ({"language": ""}, "language"),
        ({"category": "TRANSACTIONAL"}, "category"),
        ({"header": "x" * 61}, "header.text"),
        ({"header": "{{a}} y {{b}}", "examples": {"a": "1", "b": "2"}}, "header.text"),
        ({"header": "Pedido\n{{po_number}}"}, "header.text"),
        ({"body": ""}, "body.text"),
        ({"body": "Hola " + "x" * 1020}, "body.text"),
        ({"body": "{{supplier_name}}, el pedido {{po_number}} sigue pendiente de confirmar."},
         "body.text"),
        ({"body": "El pedido {{po_number}} sigue pendiente, {{supplier_name}}."}, "body.text"),
        ({"body": "Hola {{supplier_name}} {{po_number}} sigue pendiente de confirmar."},
         "body.text"),
        ({"body": "Hola {{Supplier}}, el pedido sigue pendiente de confirmar."}, "body.text"),
        ({"body": "Hola {{1}}, el pedido sigue pendiente de confirmar."}, "body.text"),
        ({"body": "Hola {{supplier_name}, el pedido sigue pendiente."}, "body.text"),
        ({"examples": {"supplier_name": "Harinas"}}, "body.example.po_number"),
        ({"examples": {"supplier_name": "  ", "po_number": "PO-1"}},
         "body.example.supplier_name"),
        ({"examples": {"po_number": "PO-1", "supplier_name": "x" * 2000}},
         "body.example.supplier_name"),
        ({"footer": "f" * 61}, "footer.text"),
        ({"footer": "Ref {{po_number}}"}, "footer.text"),
        ({"quick_replies": ("x" * 26,)}, "buttons[0].text"),
        ({"quick_replies": ("Sí", "Sí")}, "buttons"),
        ({"quick_replies": tuple(f"Opción {i}" for i in range(11))}, "buttons"),
        ({"category": "AUTHENTICATION"}, "category"),
    ],
)  # fmt: skip
def test_each_rule_names_the_field_it_is_about(changes: dict[str, Any], path: str) -> None:
    problems = check_template(build_template(draft(**changes)))
    assert path in paths(problems), [str(p) for p in problems]


def test_every_problem_is_reported_at_once() -> None:
    bad = draft(
        name="Bad Name", language="xx-YY", category="promo", body="{{a}}{{b}}",
        examples={}, header="h" * 61, footer="{{f}}", quick_replies=("y" * 26,) * 11,
    )  # fmt: skip
    found = paths(check_template(build_template(bad)))
    assert {"name", "language", "category", "body.text", "body.example.a", "header.text",
            "footer.text", "buttons"} <= found  # fmt: skip


def test_a_sample_for_a_parameter_the_text_does_not_use_is_flagged() -> None:
    template = build_template(draft())
    body = template["components"][1]
    body["example"]["body_text_named_params"].append({"param_name": "extra", "example": "x"})
    assert "body.example.extra" in paths(check_template(template))


def test_dense_parameters_and_html_are_warnings_not_blockers() -> None:
    dense = draft(body="Hola {{a}}, {{b}} y {{c}} gracias.", header="",
                  examples={"a": "1", "b": "2", "c": "3"})  # fmt: skip
    problems = check_template(build_template(dense))
    assert blocking(problems) == [] and paths(problems, only_blocking=False) == {"body.text"}
    html = draft(body="Hola {{supplier_name}}, <b>el pedido</b> {{po_number}} *sigue* pendiente.")
    problems = check_template(build_template(html))
    assert blocking(problems) == []
    assert any("HTML" in p.text for p in problems)


@pytest.mark.parametrize(
    "body",
    [
        "Hola {{supplier_name}} 👋, su pedido {{po_number}} está listo para revisión.",
        "مرحبا {{supplier_name}}، طلبكم {{po_number}} جاهز للمراجعة الآن",
        "Hola {{supplier_name}}\n\nPedido: {{po_number}}\n\n_Gracias_ ~no~ ```code```.",
        "<script>alert(1)</script> Hola {{supplier_name}}, pedido {{po_number}} listo hoy.",
        "[link](javascript:alert(1)) Hola {{supplier_name}}, pedido {{po_number}} listo hoy.",
    ],
)
def test_unicode_markdown_and_markup_are_just_text(body: str) -> None:
    problems = check_template(build_template(draft(body=body)))
    assert blocking(problems) == [], [str(p) for p in problems]


@pytest.mark.parametrize(
    "hostile",
    [
        None, 42, "string", [], {"name": 5, "components": "nope"},
        {"components": [None, 7, {"type": ["BODY"]}, {"type": "BODY", "text": 9}]},
        {"components": [{"type": "BODY", "text": "{{" * 100_000}]},
        {"components": [{"type": "BODY", "text": "ok"}] * 50},
        {"components": [{"type": "BUTTONS", "buttons": [None, {"type": "URL"}, "x"]}]},
        {"name": "n" * 5_000_000, "language": "e" * 10_000, "category": {"x": 1}},
        {"parameter_format": "NAMED", "components": [
            {"type": "BODY", "text": "A {{" + "a" * 10**6 + "}} b",
             "example": {"body_text_named_params": "nope"}}]},
    ],
)  # fmt: skip
def test_hostile_input_gives_problems_not_exceptions(hostile: Any) -> None:
    problems = check_template(hostile)
    assert blocking(problems)
    assert all(len(p.text) < 300 and len(p.path) < 120 for p in problems)


def test_meta_json_with_url_phone_and_positional_parameters() -> None:
    template: dict[str, Any] = {
        "name": "payment_notice_2",
        "language": "en_US",
        "category": "utility",
        "components": [
            {"type": "BODY", "text": "We paid {{1}} for invoice {{2}} today.",
             "example": {"body_text": [["€10", "F-1"]]}},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Thanks"},
                {"type": "URL", "text": "See invoice", "url": "https://erp.example/i/{{1}}",
                 "example": ["https://erp.example/i/F-1"]},
                {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+34911234567"},
            ]},
        ],
    }  # fmt: skip
    assert check_template(template) == []
    gap = copy.deepcopy(template)
    gap["components"][0]["text"] = "We paid {{1}} for invoice {{3}} today."
    assert "body.text" in paths(check_template(gap))
    split = copy.deepcopy(template)
    buttons = split["components"][1]["buttons"]
    buttons.append({"type": "QUICK_REPLY", "text": "Later"})
    assert "buttons" in paths(check_template(split))  # quick replies not grouped
    url = copy.deepcopy(template)
    url["components"][1]["buttons"][1]["url"] = "https://erp.example/{{1}}/x"
    assert "buttons[1].url" in paths(check_template(url))


def test_messages_are_translated_and_keep_the_braces() -> None:
    problems = check_template(build_template(draft(examples={"supplier_name": "H"})))
    problem = problems[0]
    assert {p.path for p in problems} == {"header.example.po_number", "body.example.po_number"}
    assert problem.text == "Give a sample value for {{po_number}}"
    set_locale("es")
    try:
        assert "{{po_number}}" in problem.text
        assert problem.text != "Give a sample value for {{po_number}}"
    finally:
        set_locale(None)
