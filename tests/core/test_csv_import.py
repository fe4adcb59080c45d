"""Reading buyers' CSV uploads and checking each row for a PO notice batch."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import cores, csv_import
from core.csv_import import (
    PO_DOCUMENT_FIELD,
    PO_FIELDS,
    CsvError,
    CsvTable,
    RowCheck,
    guess_mapping,
    read_csv,
    validate_rows,
)
from core.i18n import set_locale
from core.keys import po_notice_key
from core.templates import TemplateDefinition
from tests.fixtures.templates import po_notification, positional_reminder

SAMPLES = Path("/work/shared/samples/csv")


@pytest.fixture
def po_text_header() -> TemplateDefinition:
    """po_notification with a static text header (no PDF needed per row)."""
    data = po_notification("es")
    data["components"][0] = {"type": "HEADER", "format": "TEXT", "text": "Nuevo pedido"}
    return TemplateDefinition.from_meta(data)


def check_file(data: bytes, defn: TemplateDefinition, **options: object) -> list[RowCheck]:
    table = read_csv(data)
    mapping = guess_mapping(table.headers, list(PO_FIELDS))
    return validate_rows(table, mapping, defn, region="ES", **options)  # type: ignore[arg-type]


# The shared sample files -----------------------------------------------------------------


def test_valid_sample(po_text_header: TemplateDefinition) -> None:
    table = read_csv((SAMPLES / "po_batch_valid.csv").read_bytes())
    assert table.headers == ["supplier_name", "phone", *PO_FIELDS[2:]]
    assert (table.encoding, table.delimiter, table.row_numbers) == ("utf-8", ",", [2, 3, 4, 5, 6])
    assert table.rows[2]["supplier_name"] == "Azúcares del Sur, S.A."  # quoted comma kept
    checks = check_file((SAMPLES / "po_batch_valid.csv").read_bytes(), po_text_header)
    by_row = {check.row_number: check for check in checks}
    assert [c.phone_e164 for c in checks[:4]] == [
        "+34612345678",
        "+34612555111",
        "+34622333444",
        "+351912345678",
    ]
    assert by_row[2].ok and by_row[3].ok
    # Row 5 asks for Portuguese; this template has only Spanish: refused with the reason.
    assert by_row[5].errors == [
        "The template has no approved version in pt (the row's language; approved: es). "
        "Approve one, or choose to send such rows in es"
    ]
    assert by_row[2].preview == (
        "Hola Harinas Martín S.L., le enviamos el pedido PO-2026-0042 por un total de "
        "1.234,50 €. Confirme si puede servirlo."
    )
    assert by_row[2].idempotency_key == po_notice_key(
        "PO-2026-0042", "+34612345678", "po_notification"
    )
    assert by_row[2].params is not None
    assert by_row[2].params["total_amount"] == {
        "type": "currency",
        "amount": "1234.50",
        "currency": "EUR",
    }
    assert by_row[2].params["buttons"] == {"0": "ack:PO-2026-0042", "1": "reject:PO-2026-0042"}
    # "2.750" is never guessed.
    assert by_row[4].errors == [
        "Amount: ambiguous: 2.750 may mean 2750 or 2.75; write 2750.00 or 2,75, "
        "or choose the decimal separator"
    ]
    # +44 7700 900xxx is Ofcom's range reserved for drama: not a real number.
    assert by_row[6].errors == [
        "+44 7700 900123 is not a valid phone number in United Kingdom",
        "The template has no approved version in en (the row's language; approved: es). "
        "Approve one, or choose to send such rows in es",
    ]


def test_valid_sample_with_the_decimal_separator_chosen(po_text_header: TemplateDefinition) -> None:
    data = (SAMPLES / "po_batch_valid.csv").read_bytes()
    dot = {c.row_number: c for c in check_file(data, po_text_header, decimal=".")}
    assert dot[4].ok and dot[4].params is not None
    assert Decimal(dot[4].params["total_amount"]["amount"]) == Decimal("2.75")
    assert dot[2].ok  # 1234.50 still reads right with "."


def test_sample_with_errors(po_text_header: TemplateDefinition) -> None:
    checks = check_file((SAMPLES / "po_batch_with_errors.csv").read_bytes(), po_text_header)
    assert [c.row_number for c in checks] == [2, 3, 4, 5, 6, 7, 8]
    errors = {c.row_number: c.errors for c in checks}
    assert errors[2] == []
    assert errors[3] == ["The phone number is missing"]
    assert errors[4] == ["+34 612 is too short for Spain"]
    assert errors[5] == [
        "The supplier name contains a line break; WhatsApp refuses line breaks in parameters"
    ]
    assert errors[6] == ["Amount: 'abc' is not an amount (write it like 1234.50)"]
    assert errors[7] == ["Same PO, phone and template as row 2: not sent twice"]
    assert len(errors[8]) == 1 and "spreadsheet formula" in errors[8][0]
    assert [c.ok for c in checks] == [True] + [False] * 6


# Encodings, delimiters, BOM ---------------------------------------------------------------


def spanish_excel_file(encoding: str, bom: bool = False) -> bytes:
    text = (
        "Proveedor;Teléfono;Nº Pedido;Importe;Moneda\r\n"
        "Harinas Martín;612 34 56 78;PO-1;1.234,50;EUR\r\n"
        '"Azúcares; del Sur";622 333 444;PO-2;2.750,00;EUR\r\n'
        "\r\n"
        "Ñandú S.A.;633 222 111;PO-3;€ 99,90;eur\r\n"
    )
    data = text.encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [("utf-8", False, "utf-8"), ("utf-8", True, "utf-8-sig"), ("cp1252", False, "cp1252")],
)
def test_semicolon_decimal_comma_files(
    po_text_header: TemplateDefinition, encoding: str, bom: bool, expected: str
) -> None:
    data = spanish_excel_file(encoding, bom)
    table = read_csv(data)
    assert table.encoding == expected and table.delimiter == ";"
    assert table.headers == ["Proveedor", "Teléfono", "Nº Pedido", "Importe", "Moneda"]
    assert table.row_numbers == [2, 3, 5]  # the blank row 4 is skipped, numbers kept
    assert table.rows[2]["Proveedor"] == "Ñandú S.A."
    mapping = guess_mapping(table.headers, list(PO_FIELDS))
    assert mapping == {
        "phone": "Teléfono",
        "supplier_name": "Proveedor",
        "po_number": "Nº Pedido",
        "total_amount": "Importe",
        "currency": "Moneda",
        "language": None,
    }
    checks = validate_rows(table, mapping, po_text_header, region="ES")
    assert [c.errors for c in checks] == [[], [], []]
    amounts = [c.params["total_amount"]["amount"] for c in checks if c.params]
    assert [Decimal(a) for a in amounts] == [
        Decimal("1234.50"),
        Decimal("2750.00"),
        Decimal("99.90"),
    ]
    assert checks[1].values["supplier_name"] == "Azúcares; del Sur"


def test_tab_separated_utf16_from_excel_unicode_text() -> None:
    data = "name\tphone\r\nAna\t612345678\r\n".encode("utf-16")
    table = read_csv(data)
    assert (table.encoding, table.delimiter) == ("utf-16", "\t")
    assert table.rows == [{"name": "Ana", "phone": "612345678"}]


def test_quoted_newline_stays_in_its_cell() -> None:
    table = read_csv(b'a,b\n"line 1\nline 2",x\ny,z\n')
    assert table.rows == [{"a": "line 1\nline 2", "b": "x"}, {"a": "y", "b": "z"}]
    assert table.row_numbers == [2, 3]  # records, not lines: as a spreadsheet opens it


# Refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "The file is empty"),
        (b"\xef\xbb\xbf  \r\n\r\n", "The file is empty"),
        (b"phone\n612345678\n", "Only one column found"),
        (b"name;phone,mobile\nAna;1,2\n", "both commas and semicolons"),
        (b"name,,phone\nAna,x,1\n", "Column 2 has no name"),
        (b"Phone,name,PHONE\n1,2,3\n", "Columns 1 and 3 are both named 'PHONE'"),
        (b"Tel\xc3\xa9fono,telefono\n1,2\n", "both named"),
        (b"a,b\x00c\n1,2\n", "not a text file"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Excel workbook"),
        (b'a,b\n"unclosed,1\n2,3\n', "malformed near line"),
        (b'a,b\n"x"y,1\n', "malformed near line"),
        (b"a,b\n" + b"x" * 40_000 + b",1\n", "far too long"),
        (b'a,b\n"' + b"x" * 200_000 + b'",1\n', "far too long"),
        (b"\xef\xbb\xbfa,b\n\xff\xfe,1\n", "says it is UTF-8"),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(CsvError, match=reason):
        read_csv(data)


def test_size_and_row_limits() -> None:
    big = b"a,b\n" + b"1,2\n" * 2000
    with pytest.raises(CsvError, match="the limit is 4 KB"):
        read_csv(big, max_bytes=4096)
    with pytest.raises(CsvError, match="more than 1,000 rows"):
        read_csv(big, max_rows=1000)
    assert len(read_csv(big, max_rows=2000).rows) == 2000


def test_header_only_file_has_no_rows(po_text_header: TemplateDefinition) -> None:
    table = read_csv(b"a,b\r\n")
    assert table.rows == [] and table.headers == ["a", "b"]
    assert check_file(b"supplier_name,phone,po_number,total_amount\n", po_text_header) == []
    assert read_csv(b"\r\n\n;;\na;b\n1;2\n").rows == [{"a": "1", "b": "2"}]  # blanks above


def test_data_rows_break_a_tie_between_delimiters() -> None:
    table = read_csv(b"name;phone,mobile\nAna;612345678\nBea;622333444\n")
    assert table.delimiter == ";" and table.headers == ["name", "phone,mobile"]


def test_trailing_empty_columns_from_spreadsheets_are_dropped() -> None:
    table = read_csv(b"a;b;;\n1;2;;\n3;4;;\n")
    assert table.headers == ["a", "b"] and table.rows == [
        {"a": "1", "b": "2"},
        {"a": "3", "b": "4"},
    ]
    with pytest.raises(CsvError, match="Column 3 has no name"):
        read_csv(b"a;b;\n1;2;x\n")


def test_ragged_rows_are_reported_per_row(po_text_header: TemplateDefinition) -> None:
    data = (
        "supplier_name,phone,po_number,total_amount,currency\n"
        "Ana,612345678,PO-1,10.00,EUR\n"
        "Azúcares del Sur, S.A.,622333444,PO-2,10.00,EUR\n"
        "Bea,633222111\n"
    ).encode()
    table = read_csv(data)
    assert set(table.row_errors) == {3, 4}
    assert "put that value in quotes" in table.row_errors[3]
    assert table.row_errors[4] == "Row 4 has 2 cells but the header has 5"
    checks = validate_rows(table, guess_mapping(table.headers, list(PO_FIELDS)), po_text_header)
    assert checks[0].ok
    assert checks[1].errors[0] == table.row_errors[3]
    assert (
        checks[2].errors[0] == table.row_errors[4]
        and "The PO number is missing" in checks[2].errors
    )


def test_latin1_bytes_outside_cp1252_still_decode() -> None:
    table = read_csv(b"a,b\n\x81x,1\n")  # 0x81 is undefined in cp1252
    assert table.encoding == "latin-1" and table.rows[0]["a"] == "\x81x"


def test_not_bytes() -> None:
    with pytest.raises(CsvError, match="not a file"):
        read_csv("a,b\n1,2")  # type: ignore[arg-type]


# Mapping ----------------------------------------------------------------------------------


def test_guess_mapping_synonyms_case_and_accents() -> None:
    headers = ["PROVEEDOR", "Móvil", "Pedido", "Total", "Divisa", "Idioma", "Notas"]
    assert guess_mapping(headers, list(PO_FIELDS)) == {
        "phone": "Móvil",
        "supplier_name": "PROVEEDOR",
        "po_number": "Pedido",
        "total_amount": "Total",
        "currency": "Divisa",
        "language": "Idioma",
    }


def test_guess_mapping_words_inside_longer_names_and_no_reuse() -> None:
    headers = ["Teléfono móvil", "Nombre del proveedor", "Número de pedido", "Importe total (€)"]
    mapping = guess_mapping(headers, list(PO_FIELDS))
    assert mapping["phone"] == "Teléfono móvil"
    assert mapping["supplier_name"] == "Nombre del proveedor"
    assert mapping["po_number"] == "Número de pedido"
    assert mapping["total_amount"] == "Importe total (€)"
    assert mapping["currency"] is None and mapping["language"] is None
    assert guess_mapping(["phone"], ["phone", "telefono"]) == {"phone": "phone", "telefono": None}


# Other templates --------------------------------------------------------------------------


def test_rows_for_a_template_that_is_not_a_po_notice() -> None:
    defn = TemplateDefinition.from_meta(positional_reminder())
    data = (
        b"tel,pedido,dia,lugar\n"
        b"612345678,PO-1,lunes,Almacen\n"
        b"612345678,PO-1,lunes,Almacen\n"
        b"612345678,PO-2,,Almacen\n"
    )
    table = read_csv(data)
    mapping = {"phone": "tel", "1": "pedido", "2": "dia", "3": "lugar"}
    checks = validate_rows(table, mapping, defn, region="ES")
    assert checks[0].ok and checks[0].params == {"1": "PO-1", "2": "lunes", "3": "Almacen"}
    assert (
        checks[0].preview == "Recordatorio: el pedido PO-1 llega el lunes a Almacen. Pedido PO-1."
    )
    assert checks[0].idempotency_key and checks[0].idempotency_key.startswith("content:")
    assert checks[1].errors == ["Same PO, phone and template as row 2: not sent twice"]
    assert checks[2].errors == ["Parameter {{2}} is empty"]


def test_missing_currency_column_uses_the_default_or_is_an_error(
    po_text_header: TemplateDefinition,
) -> None:
    table = read_csv(b"supplier_name,phone,po_number,total_amount\nAna,612345678,PO-1,10.00\n")
    mapping = guess_mapping(table.headers, list(PO_FIELDS))
    assert validate_rows(table, mapping, po_text_header)[0].errors == [
        "Currency: The currency is missing (use an ISO code such as EUR)"
    ]
    assert validate_rows(table, mapping, po_text_header, default_currency="EUR")[0].ok


@pytest.mark.parametrize(
    ("cell", "formula"),
    [
        ("=1+1", True),
        ("@SUM(A1)", True),
        ("+cmd|' /C calc'!A0", True),
        ("-2+3", True),
        ("\t=1+1", True),  # stripped, then seen
        ("Ana", False),
    ],
)
def test_formula_cells_are_refused(
    po_text_header: TemplateDefinition, cell: str, formula: bool
) -> None:
    table = CsvTable(
        headers=["supplier_name", "phone", "po_number", "total_amount", "currency"],
        rows=[
            {
                "supplier_name": cell.strip(),
                "phone": "+34 612 34 56 78",
                "po_number": "PO-1",
                "total_amount": "10.00",
                "currency": "EUR",
            }
        ],
        row_numbers=[1],
        encoding="utf-8",
        delimiter=",",
    )
    (check,) = validate_rows(table, guess_mapping(table.headers, list(PO_FIELDS)), po_text_header)
    assert any("spreadsheet formula" in error for error in check.errors) is formula
    assert check.phone_e164 == "+34612345678"  # "+34 …" is a phone, not a formula


def test_negative_amount_is_explained_not_called_a_formula(
    po_text_header: TemplateDefinition,
) -> None:
    table = read_csv(
        b"supplier_name,phone,po_number,total_amount,currency\nAna,612345678,PO-1,-5,EUR\n"
    )
    (check,) = validate_rows(table, guess_mapping(table.headers, list(PO_FIELDS)), po_text_header)
    assert check.errors == ["Amount: -5 is negative; a PO total must be zero or more"]


def test_po_template_with_a_pdf_header_needs_the_link_column(po_defn: TemplateDefinition) -> None:
    data = (
        b"proveedor,telefono,pedido,importe,moneda,pdf\n"
        b"Ana,612345678,PO-1,10.00,EUR,https://erp.example/PO-1.pdf\n"
        b"Bea,622333444,PO-2,10.00,EUR,\n"
    )
    table = read_csv(data)
    mapping = guess_mapping(table.headers, [*PO_FIELDS, PO_DOCUMENT_FIELD])
    assert mapping[PO_DOCUMENT_FIELD] == "pdf"
    with_link, without = validate_rows(table, mapping, po_defn, region="ES")
    assert with_link.ok and with_link.params is not None
    assert with_link.params["header"] == {
        "type": "document",
        "link": "https://erp.example/PO-1.pdf",
    }
    assert without.errors == [
        "The template po_notification shows the PO as a PDF: give the document's link"
    ]


def test_media_header_of_another_template_from_a_link_cell() -> None:
    data = positional_reminder(name="po_document")
    data["components"] = [
        {"type": "HEADER", "format": "DOCUMENT"},
        {"type": "BODY", "text": "Adjuntamos el pedido {{1}} para el {{2}}."},
    ]
    defn = TemplateDefinition.from_meta(data)
    table = read_csv(
        b"tel,po,fecha,pdf\n612345678,PO-1,lunes,https://x.example/PO-1.pdf\n"
        b"612345678,PO-2,martes,http://x.example/PO-2.pdf\n"
    )
    mapping = {"phone": "tel", "1": "po", "2": "fecha", "header": "pdf"}
    good, bad = validate_rows(table, mapping, defn, region="ES")
    assert good.ok and good.params is not None
    assert good.params["header"] == {"type": "document", "link": "https://x.example/PO-1.pdf"}
    assert bad.errors == ["The header must be an https:// link to the document"]


# Unicode hygiene (the rule every template parameter passes) -------------------------------


def hostile_file(name: str, po_number: str = "PO-H1") -> bytes:
    header = "supplier_name;phone;po_number;total_amount;currency\n"
    text = f"{header}{name};612345678;{po_number};10,00;EUR\n"
    return b"\xef\xbb\xbf" + text.encode("utf-8")


def test_direction_and_zero_width_characters_in_a_row_are_refused_by_name_and_position(
    po_text_header: TemplateDefinition,
) -> None:
    (check,) = check_file(hostile_file("A\u202eLIAME\u200b"), po_text_header)
    assert check.errors == [
        "The supplier name contains a right-to-left override (U+202E) at position 2: invisible "
        "characters that change how a text reads are refused; type the text again without it"
    ]
    (check,) = check_file(hostile_file("Ana", po_number="PO\u200b1"), po_text_header)
    assert len(check.errors) == 1  # not again for the quick-reply payloads made of it
    assert check.errors[0].startswith(
        "The PO number contains a zero-width space (U+200B) at position 3"
    )


def test_non_breaking_spaces_in_a_row_are_sent_as_one_space(
    po_text_header: TemplateDefinition,
) -> None:
    (check,) = check_file(hostile_file("Harinas\u00a0\u00a0Martín\u202fS.L."), po_text_header)
    assert check.ok, check.errors
    assert check.preview is not None and "Harinas Martín S.L." in check.preview


def test_a_formula_is_reported_once_in_the_rows_words(po_text_header: TemplateDefinition) -> None:
    (check,) = check_file(hostile_file("Ana", po_number="=1+2"), po_text_header)
    assert check.errors == [
        "The PO number starts with '=' like a spreadsheet formula; it is refused rather than "
        "sent. Keep only the text in that cell."
    ]  # not again for the parameter nor for the quick-reply payloads made of it
    defn = TemplateDefinition.from_meta(positional_reminder())
    table = read_csv(b"tel,pedido,dia,lugar\n612345678,PO-1,@lunes,Almacen \xe2\x80\x8b\n")
    mapping = {"phone": "tel", "1": "pedido", "2": "dia", "3": "lugar"}
    (check,) = validate_rows(table, mapping, defn, region="ES")
    assert len(check.errors) == 2
    assert "starts with '@' like a spreadsheet formula" in check.errors[0]
    assert check.errors[1].startswith("Parameter {{3}} contains a zero-width space (U+200B)")


@pytest.mark.parametrize(
    "body",
    [
        {"to": "34612345678", "text": 'Núñez € 😀 \u2028 </script> "q" \\ \x7f'},
        {"amount_1000": 10**15, "list": [1, "a", {"b": None, "c": True}]},
        {"big": 2**64},  # beyond orjson's integers
        {"lone": "\ud800"},  # a lone surrogate: orjson refuses it
        {1: "a key that is not text"},
    ],
)
def test_request_bodies_are_json_that_reads_back_as_written(body: dict) -> None:
    import json

    from core.csv_import import _json

    text = _json(body)
    assert json.loads(text) == json.loads(json.dumps(body))
    assert ", " not in text and ": " not in text  # compact
    # the very text json.dumps writes: ASCII, non-ASCII as \u escapes (one byte a
    # character in memory, for every row of a plan)
    assert text == json.dumps(body, separators=(",", ":"))
    assert text.isascii()


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=40), max_size=4))
def test_request_bodies_are_the_text_json_dumps_writes(body: dict[str, str]) -> None:
    """Any text, control characters, DEL, astral characters and surrogates included."""
    import json

    from core.csv_import import _json

    assert _json(body) == json.dumps(body, separators=(",", ":"))


# A big file's rows are checked in worker processes ------------------------------------------


def test_rows_checked_in_worker_processes_are_checked_exactly_as_here(
    po_text_header: TemplateDefinition, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every kind of row (valid, refused for each reason, in another language, hostile,
    ragged, a duplicate of a row in the other worker's half) gets the same check, in
    the same order and in the reader's language, as when the whole file is checked here."""
    lines = (SAMPLES / "po_batch_valid.csv").read_text().splitlines()
    lines += (SAMPLES / "po_batch_with_errors.csv").read_text().splitlines()[1:]
    lines += [
        "A\u202eLIAME,612345678,PO-H1,10.00,EUR,es",
        "Harinas\u00a0Martín,612345679,PO-H2,10.00,EUR,es-ES",
        "Ragged,612345670,PO-H3,10.00,EUR,es,one more cell",
        "Bad language,612345671,PO-H4,10.00,EUR,<b>x</b>",
        "Harinas Martín S.L.,+34 612 34 56 78,PO-2026-0042,1234.50,EUR,es",  # row 2 again
    ]
    data = ("\n".join(lines) + "\n").encode()
    pt = TemplateDefinition.from_meta({**po_notification("es"), "language": "pt_BR"})
    options = {"versions": {"pt_BR": pt}, "supplier_languages": lambda phones: {}}
    set_locale("es")
    here = check_file(data, po_text_header, **options)
    cores.shutdown()
    monkeypatch.setattr(cores, "workers", lambda: 2)
    monkeypatch.setattr(csv_import, "SPREAD_FROM", 1)
    spread = cores.spread
    parts_sent: list[int] = []

    def counted(work: Any, parts: Any) -> Any:
        parts_sent.append(len(parts))
        return spread(work, parts)

    monkeypatch.setattr(cores, "spread", counted)
    try:
        # Workers not started: a file too small to wait for them is checked here...
        assert check_file(data, po_text_header, **options) == here
        assert parts_sent == [1, 1] and cores.pids() == []
        cores.warm(wait=True)  # ... and in two halves once they are up
        there = check_file(data, po_text_header, **options)
        assert parts_sent[2:] == [2, 2]  # the phones, then the rows
        assert set(cores.pids()) - {os.getpid()}
    finally:
        cores.shutdown()
        set_locale(None)
    assert there == here
    assert len(here) == 17 and sum(check.ok for check in here) == 4
    assert here[-1].errors == [
        "Misma OC, teléfono y plantilla que la fila 2: no se envía dos veces"
    ]  # a duplicate of a row the other worker checked
    assert here[6].errors == ["Falta el número de teléfono"]  # by a worker, in Spanish
