"""CSV files wanotify hands back to buyers (batch results) for their spreadsheet.

Three rules, so a file is safe and readable in any locale's Excel, LibreOffice or Sheets:

- **Every field is quoted** (`csv.QUOTE_ALL`), one record per input row: separators,
  quotes and line breaks inside a value never split it, whichever separator the program
  opening the file assumes.
- **Nothing a spreadsheet could run survives.** A cell gets a leading apostrophe (OWASP's
  advice against CSV injection) when it, or any fragment of it after a `;`, `,`, tab or
  line break, starts (after spaces and quotes) with `=`, `+`, `-` or `@`, or when it starts
  with a tab or carriage return. The fragments matter because a program that splits on
  another separator than ours (Excel in a Spanish locale splits on `;`) would make
  `Evil;=1+2` two cells, the second a live formula. The apostrophe is all that changes:
  the text stays readable, and a spreadsheet shows it as text.
- **The upload's own dialect by default** (`ExportDialect.of_upload`): a semicolon file
  gets a semicolon result, a tab file a tab result, so Excel opens it in columns where
  the buyer's own file opened in columns. The byte order mark: a file uploaded with one
  gets one. A UTF-8 file uploaded without one gets none as long as the result is plain
  ASCII; when the result holds accents it gets one, because Excel reads BOM-less UTF-8
  as the ANSI code page ("MartÃ­n") while LibreOffice, Sheets and Numbers accept the
  BOM; the results file is for people in spreadsheets, not for parsers. A Windows-1252
  upload (Excel's "CSV" in western locales) gets UTF-8 with a BOM: Excel reads it right
  and nothing is lost (our own columns, such as Meta's error texts, may hold characters
  Windows-1252 lacks). A UTF-16 upload (Excel's "Unicode text") gets UTF-16 back.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

#: First characters that make a spreadsheet evaluate a cell.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
DELIMITERS = (",", ";", "\t")
#: The start of a fragment of a cell (as a program splitting on any separator or line
#: would cut it) that begins, after spaces and quotes, with a formula character.
_RUNNABLE_FRAGMENT = re.compile(r"(^|[,;\t\r\n])(?=(?:[^\S\t\r\n]|\")*[=+\-@])")

Encoding = Literal["utf-8", "utf-16"]


@dataclass(frozen=True)
class ExportDialect:
    """How a results file is written: its separator, its byte order mark, its encoding.

    `bom=None` means "only when needed": a BOM when the file holds anything beyond ASCII.
    """

    delimiter: str = ","
    bom: bool | None = True
    encoding: Encoding = "utf-8"

    def __post_init__(self) -> None:
        if self.delimiter not in DELIMITERS:
            raise ValueError(f"a results file is separated by , ; or a tab, not {self.delimiter!r}")
        if self.encoding not in ("utf-8", "utf-16"):
            raise ValueError(f"a results file is UTF-8 or UTF-16, not {self.encoding!r}")

    @classmethod
    def of_upload(cls, encoding: str, delimiter: str) -> ExportDialect:
        """The dialect to answer an upload read as `encoding` with `delimiter` (see the
        module docstring for the byte order mark policy)."""
        delimiter = delimiter if delimiter in DELIMITERS else ","
        if encoding == "utf-16":
            return cls(delimiter, bom=True, encoding="utf-16")
        if encoding == "utf-8":
            return cls(delimiter, bom=None)
        return cls(delimiter, bom=True)  # utf-8-sig, cp1252, latin-1

    def to_json(self) -> dict[str, Any]:
        """The dialect as stored with a batch."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> ExportDialect | None:
        """A stored dialect, or None when `data` is not one (never raises)."""
        if not isinstance(data, Mapping):
            return None
        try:
            return cls(
                delimiter=data["delimiter"],
                bom=data["bom"] if data.get("bom") in (True, False, None) else True,
                encoding=data.get("encoding", "utf-8"),
            )
        except (KeyError, TypeError, ValueError):
            return None


#: Comma-separated UTF-8 with a BOM: for batches whose upload's dialect is not known.
DEFAULT_DIALECT = ExportDialect()


def results_csv(
    rows: Iterable[Mapping[str, Any]],
    columns: list[str],
    dialect: ExportDialect = DEFAULT_DIALECT,
) -> bytes:
    """`rows` as CSV bytes with a header of `columns` (missing values are empty cells),
    every field quoted and neutralised, written in `dialect`."""
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, delimiter=dialect.delimiter, quoting=csv.QUOTE_ALL, lineterminator="\r\n"
    )
    writer.writerow([safe_cell(column) for column in columns])
    for row in rows:
        writer.writerow([safe_cell(row.get(column)) for column in columns])
    text = buffer.getvalue()
    if dialect.encoding == "utf-16":
        return text.encode("utf-16")  # with its BOM: the only way readers know the order
    bom = dialect.bom if dialect.bom is not None else not text.isascii()
    return ((BOM if bom else "") + text).encode("utf-8")


def safe_cell(value: Any) -> str:
    """The text of one cell, with a leading apostrophe if a spreadsheet could run it or
    any part of it (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        text = value.isoformat()
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    else:
        text = str(value)
    text = _RUNNABLE_FRAGMENT.sub(r"\1'", text)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text
