"""CSV files wanotify hands back to buyers (batch results, message lists) for Excel.

UTF-8 with a BOM so Excel shows accents right, one record per input row (line breaks
inside values are quoted, never split), and every cell that a spreadsheet would run as a
formula neutralised with a leading apostrophe (OWASP's advice against CSV injection):
supplier names and replies come from outside and end up in a buyer's Excel.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

#: First characters that make a spreadsheet evaluate a cell.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def results_csv(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> bytes:
    """`rows` as CSV bytes with a header of `columns` (missing values are empty cells)."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(column) for column in columns])
    for row in rows:
        writer.writerow([safe_cell(row.get(column)) for column in columns])
    return buffer.getvalue().encode("utf-8")


def safe_cell(value: Any) -> str:
    """The text of one cell, with a leading apostrophe if a spreadsheet would run it."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        text = value.isoformat()
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text
