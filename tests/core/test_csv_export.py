"""CSV results for Excel: BOM, one record per row, and no formula injection."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from core.csv_export import results_csv, safe_cell
from core.csv_import import read_csv


def parse(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


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


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+34612345678", "'+34612345678"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Ana = Bea", "Ana = Bea"),
        (42, "42"),
        (None, ""),
        (True, "yes"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05+00:00"),
    ],
)
def test_cells_are_neutralised(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_formula_in_results_file_is_text_when_read_back() -> None:
    data = results_csv([{"name": "=cmd|' /C calc'!A0"}], ["name"])
    assert parse(data)[1] == ["'=cmd|' /C calc'!A0"]


def test_hostile_header_names_are_neutralised_too() -> None:
    assert parse(results_csv([], ["=evil"]))[0] == ["'=evil"]
