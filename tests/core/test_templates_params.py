"""Template parameters: preview, validation against Meta's rules, payloads and PO notices."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.templates import (
    TemplateDefinition,
    TemplateParamsError,
    build_components,
    build_po_notice_params,
    build_template_payload,
    is_po_notice_template,
    render_preview,
    validate_parameters,
)
from core.templates.values import HIDDEN_CHARS, ParamValueError, clean_text
from tests.fixtures.templates import po_notification, positional_reminder, text_header_with_buttons

PDF = {"type": "document", "link": "https://files.example.com/PO-1.pdf", "filename": "PO-1.pdf"}


def po_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "supplier_name": "Harinas Martín",
        "po_number": "PO-1",
        "total_amount": {"type": "currency", "amount": "1234.50", "currency": "EUR"},
        "header": dict(PDF),
        "buttons": {"0": "ack:PO-1", "1": "reject:PO-1"},
    }
    params.update(overrides)
    return params


def messages(defn: TemplateDefinition, params: Any) -> list[str]:
    return [problem.message for problem in validate_parameters(defn, params)]


# Preview --------------------------------------------------------------------------------


def test_preview_shows_what_the_supplier_sees(po_defn: TemplateDefinition) -> None:
    preview = render_preview(po_defn, po_params())
    assert preview.body == (
        "Hola Harinas Martín, le enviamos el pedido PO-1 por un total de 1.234,50 €. "
        "Confirme si puede servirlo."
    )
    assert preview.header is None
    assert preview.header_media == PDF
    assert preview.footer == "Compras"
    assert preview.buttons == ("Confirmar", "Rechazar")


def test_preview_formats_money_for_the_template_language() -> None:
    defn = TemplateDefinition.from_meta(po_notification("en"))
    assert "for a total of €1,234.50." in render_preview(defn, po_params()).body


def test_preview_keeps_unfilled_placeholders_visible(po_defn: TemplateDefinition) -> None:
    preview = render_preview(po_defn, {"supplier_name": "Ana"})
    assert "Hola Ana," in preview.body and "{{po_number}}" in preview.body


def test_preview_never_expands_placeholders_inside_values(po_defn: TemplateDefinition) -> None:
    body = render_preview(po_defn, po_params(supplier_name="{{po_number}}")).body
    assert body.startswith("Hola {{po_number}}, le enviamos el pedido PO-1")


def test_preview_of_positional_text_header() -> None:
    defn = TemplateDefinition.from_meta(text_header_with_buttons())
    preview = render_preview(defn, {"header": "PAY-7", "1": "€10.00", "2": "F-1"})
    assert preview.header == "Payment PAY-7"
    assert preview.body == "We paid €10.00 for invoice F-1."
    assert preview.buttons == ("See invoice", "Call us", "Copy reference")


def test_date_time_shows_its_fallback() -> None:
    defn = TemplateDefinition.from_meta(positional_reminder())
    params = {"1": "PO-1", "2": {"type": "date_time", "fallback_value": "lunes 12"}, "3": "Almacén"}
    assert render_preview(defn, params).body == (
        "Recordatorio: el pedido PO-1 llega el lunes 12 a Almacén. Pedido PO-1."
    )
    assert validate_parameters(defn, params) == []


# Validation -----------------------------------------------------------------------------


def test_valid_parameters_have_no_problems(po_defn: TemplateDefinition) -> None:
    assert validate_parameters(po_defn, po_params()) == []
    assert validate_parameters(po_defn, po_params(buttons=None)) == []  # payloads optional


def test_missing_and_extra_parameters(po_defn: TemplateDefinition) -> None:
    params = po_params(colour="red")
    del params["po_number"]
    problems = validate_parameters(po_defn, params)
    assert {(p.param, p.reason) for p in problems} == {
        ("po_number", "is missing"),
        ("colour", "is not a parameter of this template"),
    }


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("Línea 1\nLínea 2", "line break"),
        ("a\r\nb", "line break"),
        ("a\u2028b", "line break"),
        ("a\tb", "tab"),
        ("a     b", "more than 4 spaces"),
        ("a\x1bb", "control characters"),
        (None, "has no value"),
        (12.5, "must be text"),
        (True, "must be text"),
        (["x"], "must be text"),
        (Decimal("NaN"), "must be text"),
        ("x" * 100_000, "far too long"),
        ({"type": "emoji"}, "unknown value type"),
    ],
)
def test_bad_values_are_explained(po_defn: TemplateDefinition, value: Any, reason: str) -> None:
    problems = validate_parameters(po_defn, po_params(supplier_name=value))
    assert [p.param for p in problems] == ["supplier_name"]
    assert reason in problems[0].message


# Unicode hygiene and formula cells: one rule for every path (core.templates.values) ---------


@pytest.mark.parametrize(
    ("char", "name"), [(char, name) for char, name in HIDDEN_CHARS.items()], ids=repr
)
def test_every_direction_and_zero_width_character_is_refused_by_name_and_position(
    po_defn: TemplateDefinition, char: str, name: str
) -> None:
    problems = validate_parameters(po_defn, po_params(supplier_name=f"Harinas{char} Martín"))
    assert [(p.param, p.reason.split(":")[0]) for p in problems] == [
        ("supplier_name", f"contains {name} (U+{ord(char):04X}) at position 8")
    ]


@pytest.mark.parametrize(
    ("value", "first"),
    [
        ("A\u202eLIAME\u200b", "a right-to-left override (U+202E) at position 2"),
        ("\ufeffHarinas", "(U+FEFF) at position 1"),
        ("Harinas\u200b", "a zero-width space (U+200B) at position 8"),
        ("\u2066PO-1\u2069", "a left-to-right isolate (U+2066) at position 1"),
        ("\u061c12", "an Arabic letter mark (U+061C) at position 1"),
    ],
)
def test_hidden_characters_are_named_in_the_reason(
    po_defn: TemplateDefinition, value: str, first: str
) -> None:
    for key in ("supplier_name", "po_number"):
        (problem,) = validate_parameters(po_defn, po_params(**{key: value}))
        assert problem.param == key and first in problem.reason


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("Harinas\u00a0Martín", "Harinas Martín"),
        ("Harinas\u00a0\u00a0\u202f Martín", "Harinas Martín"),
        ("1\u2007234\u2009kg", "1 234 kg"),
        ("A\u3000\u3000B", "A B"),
        ("A \u00a0      B", "A B"),  # one run, not six spaces
        ("A    B", "A    B"),  # plain spaces are left to Meta's rule
    ],
)
def test_runs_of_odd_spaces_are_sent_as_one_space(
    po_defn: TemplateDefinition, value: str, sent: str
) -> None:
    assert validate_parameters(po_defn, po_params(supplier_name=value)) == []
    body = build_components(po_defn, po_params(supplier_name=value))[1]
    assert body["parameters"][0]["text"] == sent
    assert sent in render_preview(po_defn, po_params(supplier_name=value)).body


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ('=HYPERLINK("http://evil.example")', True),
        ("@SUM(A1)", True),
        ("+cmd|' /C calc'!A0", True),
        ("-2+3", True),
        (" =1+1", True),
        ("\u00a0=1+1", True),
        ("+34 612 345 678", False),  # a sign before a number is not a formula
        ("-5", False),
        ("PO-1 = OK", False),
    ],
)
def test_formula_cells_are_refused_on_every_path(
    po_defn: TemplateDefinition, value: str, refused: bool
) -> None:
    problems = validate_parameters(po_defn, po_params(po_number=value))
    assert any("spreadsheet formula" in p.reason for p in problems) is refused
    with pytest.raises(ParamValueError) if refused else contextlib.nullcontext():
        clean_text(value)


def test_four_spaces_and_numbers_are_fine(po_defn: TemplateDefinition) -> None:
    assert validate_parameters(po_defn, po_params(supplier_name="A    B", po_number=42)) == []
    assert validate_parameters(po_defn, po_params(po_number=Decimal("42"))) == []


@pytest.mark.parametrize(
    ("money", "reason"),
    [
        ({"type": "currency", "amount": "10", "currency": "XYZ"}, "not a currency code"),
        ({"type": "currency", "amount": "10"}, "currency is missing"),
        ({"type": "currency", "amount": "NaN", "currency": "EUR"}, "not an amount"),
        ({"type": "currency", "amount": Decimal("NaN"), "currency": "EUR"}, "finite"),
        ({"type": "currency", "amount": Decimal("-1"), "currency": "EUR"}, "negative"),
        ({"type": "currency", "amount": 10.5, "currency": "EUR"}, "float"),
        ({"type": "currency", "amount": "1.999", "currency": "EUR"}, "more decimals"),
        ({"type": "currency", "currency": "EUR"}, "must be a number"),
    ],
)
def test_currency_values(po_defn: TemplateDefinition, money: dict[str, Any], reason: str) -> None:
    problems = validate_parameters(po_defn, po_params(total_amount=money))
    assert len(problems) == 1 and problems[0].param == "total_amount"
    assert reason in problems[0].message


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "needs a document"),
        ("PO-1.pdf", "must be a document given by link"),
        ({"type": "document", "link": "http://files.example.com/PO-1.pdf"}, "https://"),
        ({"type": "document", "link": "https:///PO-1.pdf"}, "https://"),
        ({"type": "document", "link": "https://x.example/PO-1.docx"}, "PDF"),
        ({"type": "document", "link": "https://x.example/f", "filename": "a.doc"}, "PDF"),
        ({"type": "image", "link": "https://x.example/a.pdf"}, "must be a document"),
        ({"type": "document"}, "needs the link"),
        ({"type": "document", "link": "https://x.example/" + "a" * 3000 + ".pdf"}, "longer"),
    ],
)
def test_document_header(po_defn: TemplateDefinition, header: Any, reason: str) -> None:
    params = po_params(header=header)
    if header is None:
        del params["header"]
    problems = validate_parameters(po_defn, params)
    assert [p.param for p in problems] == ["header"]
    assert reason in problems[0].message


def test_document_link_without_pdf_suffix_is_fine_with_a_pdf_filename(
    po_defn: TemplateDefinition,
) -> None:
    header = {"type": "document", "link": "https://erp.example/doc?id=7", "filename": "PO-7.pdf"}
    assert validate_parameters(po_defn, po_params(header=header)) == []


def test_text_header_parameter_limit() -> None:
    defn = TemplateDefinition.from_meta(text_header_with_buttons())
    base = {"1": "€1", "2": "F", "buttons": {"0": "F-1", "2": "REF1"}}
    assert validate_parameters(defn, {**base, "header": "x" * 60}) == []
    problems = validate_parameters(defn, {**base, "header": "x" * 61})
    assert [(p.param, p.reason) for p in problems] == [
        ("header", "is 61 characters; WhatsApp allows 60")
    ]
    problems = validate_parameters(defn, base)
    assert [p.message for p in problems] == ["The header's parameter is missing"]


def test_button_values() -> None:
    defn = TemplateDefinition.from_meta(text_header_with_buttons())
    base = {"header": "P", "1": "€1", "2": "F"}
    problems = validate_parameters(defn, base)
    assert sorted(p.param for p in problems) == ["buttons.0", "buttons.2"]  # URL + copy code
    problems = validate_parameters(
        defn, {**base, "buttons": {"0": "F-1", "1": "x", "2": "CODE-1234567890123", "9": "y"}}
    )
    assert {p.param: p.reason for p in problems} == {
        "buttons.1": "takes no value",
        "buttons.2": "is longer than 15 characters",
        "buttons.9": "does not exist in this template",
    }
    problems = validate_parameters(defn, {**base, "buttons": ["F-1"]})
    assert [p.param for p in problems] == ["buttons"]


def test_quick_reply_payload_limit(po_defn: TemplateDefinition) -> None:
    assert validate_parameters(po_defn, po_params(buttons={"0": "a" * 128})) == []
    problems = validate_parameters(po_defn, po_params(buttons={"0": "a" * 129}))
    assert [p.param for p in problems] == ["buttons.0"]


def test_body_length_after_filling() -> None:
    defn = TemplateDefinition.from_meta(po_notification())
    fixed = (
        len(defn.body_text)
        - len("{{supplier_name}}")
        - len("{{po_number}}")
        - len("{{total_amount}}")
    )
    amount_text = len("1.234,50 €")
    room = 1024 - fixed - amount_text - len("PO-1")
    assert validate_parameters(defn, po_params(supplier_name="x" * room)) == []
    problems = validate_parameters(defn, po_params(supplier_name="x" * (room + 1)))
    assert [(p.param, p.reason) for p in problems] == [
        ("body", "is 1,025 characters once filled in; WhatsApp allows 1,024")
    ]


def test_body_alone_may_be_longer() -> None:
    defn = TemplateDefinition.from_meta(positional_reminder())
    long = "x" * 5000
    assert validate_parameters(defn, {"1": "P", "2": "lunes", "3": long}) == []
    problems = validate_parameters(defn, {"1": "P", "2": "l", "3": "y" * 32_768})
    assert [p.param for p in problems] == ["body"]


def test_unsendable_template_is_a_problem() -> None:
    defn = TemplateDefinition.from_meta(po_notification(status="PAUSED"))
    assert messages(defn, po_params()) == [
        "The template po_notification (es) is paused, not approved"
    ]


@pytest.mark.parametrize("params", [None, {}, "supplier_name=x", [("supplier_name", "x")]])
def test_hostile_parameter_containers(po_defn: TemplateDefinition, params: Any) -> None:
    problems = validate_parameters(po_defn, params)
    assert problems and all(p.message for p in problems)


def test_location_header_cannot_be_filled() -> None:
    data = positional_reminder()
    data["components"].insert(0, {"type": "HEADER", "format": "LOCATION"})
    defn = TemplateDefinition.from_meta(data)
    problems = validate_parameters(defn, {"1": "a", "2": "b", "3": "c"})
    assert [p.param for p in problems] == ["header"]


def test_static_header_takes_no_parameter() -> None:
    data = positional_reminder()
    data["components"].insert(0, {"type": "HEADER", "format": "TEXT", "text": "Aviso"})
    defn = TemplateDefinition.from_meta(data)
    problems = validate_parameters(defn, {"1": "a", "2": "b", "3": "c", "header": "x"})
    assert [p.param for p in problems] == ["header"]


# Payloads -------------------------------------------------------------------------------


def test_named_components_as_meta_expects(po_defn: TemplateDefinition) -> None:
    assert build_components(po_defn, po_params()) == [
        {
            "type": "header",
            "parameters": [
                {
                    "type": "document",
                    "document": {
                        "link": "https://files.example.com/PO-1.pdf",
                        "filename": "PO-1.pdf",
                    },
                }
            ],
        },
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Harinas Martín", "parameter_name": "supplier_name"},
                {"type": "text", "text": "PO-1", "parameter_name": "po_number"},
                {
                    "type": "currency",
                    "currency": {
                        "fallback_value": "1.234,50 €",
                        "code": "EUR",
                        "amount_1000": 1234500,
                    },
                    "parameter_name": "total_amount",
                },
            ],
        },
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "0",
            "parameters": [{"type": "payload", "payload": "ack:PO-1"}],
        },
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "1",
            "parameters": [{"type": "payload", "payload": "reject:PO-1"}],
        },
    ]


def test_positional_components_follow_placeholder_order() -> None:
    defn = TemplateDefinition.from_meta(text_header_with_buttons())
    params = {"2": "F-1", "1": "€10", "header": "P-7", "buttons": {"0": "F-1", "2": "REF1"}}
    components = build_components(defn, params)
    assert components == [
        {"type": "header", "parameters": [{"type": "text", "text": "P-7"}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "€10"}, {"type": "text", "text": "F-1"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "F-1"}],
        },
        {
            "type": "button",
            "sub_type": "copy_code",
            "index": "2",
            "parameters": [{"type": "coupon_code", "coupon_code": "REF1"}],
        },
    ]


def test_build_refuses_bad_parameters(po_defn: TemplateDefinition) -> None:
    with pytest.raises(TemplateParamsError) as caught:
        build_components(po_defn, po_params(supplier_name="a\nb", po_number=""))
    assert {p.param for p in caught.value.problems} == {"supplier_name", "po_number"}
    assert "line break" in str(caught.value)


def test_build_does_not_check_status() -> None:
    defn = TemplateDefinition.from_meta(po_notification(status="PAUSED"))
    assert build_components(defn, po_params())


def test_whole_payload(po_defn: TemplateDefinition) -> None:
    payload = build_template_payload(po_defn, "34612345678", po_params())
    assert payload["messaging_product"] == "whatsapp"
    assert payload["recipient_type"] == "individual"
    assert payload["to"] == "34612345678"
    assert payload["type"] == "template"
    assert payload["template"]["name"] == "po_notification"
    assert payload["template"]["language"] == {"code": "es"}
    assert payload["template"]["components"] == build_components(po_defn, po_params())
    assert "biz_opaque_callback_data" not in payload
    for bad in ["+34612345678", "34 612", "", "0612345678"]:
        with pytest.raises(ValueError, match="digits"):
            build_template_payload(po_defn, bad, po_params())


# PO notices -----------------------------------------------------------------------------


def test_po_notice_params_for_a_named_template(po_defn: TemplateDefinition) -> None:
    params = build_po_notice_params(
        po_defn,
        "Lácteos Ruiz",
        " PO-9 ",
        Decimal("318.00"),
        "EUR",
        document_link=PDF["link"],
        document_filename="PO-9.pdf",
    )
    assert params == {
        "supplier_name": "Lácteos Ruiz",
        "po_number": " PO-9 ",
        "total_amount": {"type": "currency", "amount": "318.00", "currency": "EUR"},
        "header": {"type": "document", "link": PDF["link"], "filename": "PO-9.pdf"},
        "buttons": {"0": "ack:PO-9", "1": "reject:PO-9"},
    }
    assert validate_parameters(po_defn, params) == []
    assert "318,00 €" in render_preview(po_defn, params).body


def test_po_notice_amount_is_written_as_plain_digits(po_defn: TemplateDefinition) -> None:
    params = build_po_notice_params(
        po_defn, "A", "PO-1", Decimal("1E+3"), "EUR", document_link=PDF["link"]
    )
    assert params["total_amount"]["amount"] == "1000"
    assert validate_parameters(po_defn, params) == []


def test_po_notice_needs_the_document_link(po_defn: TemplateDefinition) -> None:
    with pytest.raises(ValueError, match="give the document's link"):
        build_po_notice_params(po_defn, "A", "PO-1", Decimal("1"), "EUR")


def test_po_notice_on_a_text_header_template() -> None:
    data = po_notification()
    data["components"][0] = {"type": "HEADER", "format": "TEXT", "text": "Nuevo pedido"}
    defn = TemplateDefinition.from_meta(data)
    params = build_po_notice_params(defn, "A", "PO-1", Decimal("1"), "EUR")
    assert "header" not in params and validate_parameters(defn, params) == []


def test_po_notice_on_a_positional_template() -> None:
    data = positional_reminder(name="po_notification_v2")
    data["components"] = [{"type": "BODY", "text": "Hola {{1}}, pedido {{2}} por {{3}}."}]
    defn = TemplateDefinition.from_meta(data)
    assert is_po_notice_template(defn)
    params = build_po_notice_params(defn, "Ana", "PO-2", Decimal("5"), "USD")
    assert render_preview(defn, params).body == "Hola Ana, pedido PO-2 por 5,00 US$."  # es


def test_po_notice_refuses_templates_without_its_parameters() -> None:
    defn = TemplateDefinition.from_meta(positional_reminder())
    assert not is_po_notice_template(defn)
    with pytest.raises(ValueError, match="cannot carry a PO notice"):
        build_po_notice_params(defn, "A", "PO-1", Decimal("1"), "EUR")
    data = po_notification()
    data["components"][1]["text"] = "Hola {{supplier_name}}, pedido {{po_number}}."
    with pytest.raises(
        ValueError, match="a PO notice needs supplier_name, po_number, total_amount"
    ):
        build_po_notice_params(TemplateDefinition.from_meta(data), "A", "PO-1", Decimal("1"), "EUR")


def test_po_notice_refuses_more_than_two_quick_replies() -> None:
    data = po_notification()
    data["components"][3]["buttons"].append({"type": "QUICK_REPLY", "text": "Llamar"})
    defn = TemplateDefinition.from_meta(data)
    with pytest.raises(ValueError, match="3 quick replies"):
        build_po_notice_params(defn, "A", "PO-1", Decimal("1"), "EUR", document_link=PDF["link"])


def _checked(check: Any, value: object) -> str:
    """What a text check makes of `value`: the text, or the refusal's reason."""
    try:
        return f"text: {check(value)!r}"
    except ParamValueError as exc:
        return f"refused: {exc}"


#: Characters each rule of `check_text` looks at, and some it lets through.
_HOSTILE_TEXT = (
    " =+-@0123456789.,()/aZñ€\t\n\r\x00\x1f\x7f\x85\x9f\u00a0\u1680\u2000\u200a\u200b"
    "\u200e\u2028\u2029\u202e\u202f\u205f\u2060\u2066\u3000\ufeff\u061c\x1c"
)


@given(st.text(alphabet=_HOSTILE_TEXT, max_size=24))
def test_check_text_plain_path_agrees_with_the_full_path(value: str) -> None:
    # `check_text` returns a plain cell as it is without each rule's look; for any text
    # it must say what the rule-by-rule path says.
    from core.templates.values import _check_text, check_text

    assert _checked(check_text, value) == _checked(_check_text, value)


@pytest.mark.parametrize(
    "value",
    ["", " ", "     ", "a     b", "a    b", " =1", "=1", "+34 612", "-5", "- 5", "@x", "+", "a",
     " a ", "x" * 32_768, "x" * 32_769, "\u00a0=1", "ok\u2028", "Núñez", "ack:PO-1", None, 5,
     Decimal("1.5"), Decimal("NaN"), True, 1.5, b"x", ["x"]],
)  # fmt: skip
def test_check_text_plain_path_agrees_on_hostile_values(value: object) -> None:
    from core.templates.values import _check_text, check_text

    assert _checked(check_text, value) == _checked(_check_text, value)


def test_check_text_plain_path_leaves_no_space_to_strip() -> None:
    # The plain path strips only U+0020: every other space `str.strip` strips is outside it.
    import sys

    from core.templates.values import _PLAIN_TEXT

    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() and chr(c) != " "]
    assert spaces
    assert not [char for char in spaces if _PLAIN_TEXT.fullmatch(char)]


class _Text(str):
    """A str subclass: the plain path leaves it to the full one."""


def test_check_text_of_a_str_subclass() -> None:
    from core.templates.values import check_text

    assert check_text(_Text("ok")) == "ok"
    with pytest.raises(ParamValueError):
        check_text(_Text("=1"))


@given(
    st.text(alphabet="{} ab_1\\\\$", max_size=30),
    st.dictionaries(st.sampled_from(["a", "b", "1", "a_1"]), st.text(alphabet="{}a1", max_size=4)),
)
def test_preview_substitutes_as_one_regex_pass_does(text: str, values: dict[str, str]) -> None:
    # Placeholders are found once per text (`_parts`); each fill must equal one
    # `PLACEHOLDER.sub` pass, values never expanded again.
    from core.templates.definition import PLACEHOLDER
    from core.templates.preview import _substitute

    def replace(match: Any) -> str:
        value = values.get(match.group(1))
        return value if value is not None else str(match.group(0))

    assert _substitute(text, values) == PLACEHOLDER.sub(replace, text)
    assert _substitute("Hola {{ a }}, {{b}}{{a}}!", {"a": "{{b}}"}) == "Hola {{b}}, {{b}}{{b}}!"
