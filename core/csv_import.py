"""CSV files buyers upload: read them safely, map their columns, check every row.

Spreadsheets and ERPs export CSV in many dialects: UTF-8 with or without a BOM or
Windows-1252, commas, semicolons (Spanish Excel) or tabs, quoted commas and line
breaks, trailing empty columns, blank lines. `read_csv` accepts all of that and refuses,
with a reason a buyer understands, what it cannot read for certain: binary files, Excel
workbooks, an ambiguous delimiter, blank or duplicate column names, oversized files.

`validate_rows` turns each row into a checked send (E.164 phone, template parameters,
preview, idempotency key) or a list of problems. It never guesses: an amount like
"2.750" or a cell that looks like a spreadsheet formula is refused, not interpreted.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import Any

import orjson

from core import cores
from core.heap import fewer_collections
from core.i18n import N_, _, current_locale, set_locale
from core.keys import content_key, po_notice_key
from core.money import DecimalMark, InvalidAmount, normalize_currency, parse_amount
from core.phones import InvalidPhoneNumber, normalize_phone, wa_digits
from core.row_languages import RowLanguage, row_language
from core.settings import get_settings
from core.templates import (
    TemplateDefinition,
    TemplateParams,
    build_po_notice_params,
    is_po_notice_template,
)
from core.templates.fill import fill
from core.templates.payload import payload_of
from core.templates.po import PO_FIELDS as PO_PARAMS
from core.templates.preview import body_of
from core.templates.validate import content_problems, unsendable_problems
from core.templates.values import FORMULA_STARTS, HEADER_KEY, looks_like_formula

__all__ = [
    "PO_DOCUMENT_FIELD",
    "PO_FIELDS",
    "CsvError",
    "CsvTable",
    "InvalidAmount",
    "RowCheck",
    "guess_mapping",
    "parse_amount",
    "read_csv",
    "spreadsheet_row",
    "validate_rows",
]

MAX_BYTES = 40 * 1024 * 1024  # 100,000 rows of 400 bytes
MAX_ROWS = 100_000
MAX_CELL_CHARS = 32_768
DELIMITERS = (",", ";", "\t")
#: The fields of a PO notice row, in the order a mapping form shows them.
PO_FIELDS = ("phone", "supplier_name", "po_number", "total_amount", "currency", "language")
#: Needed only by PO notice templates whose header is the PO's PDF.
PO_DOCUMENT_FIELD = "document_link"
#: First characters of a cell that may look like a formula (`looks_like_formula`).
_FORMULA_FIRST = frozenset(FORMULA_STARTS)
#: Fields that describe the row, never template parameters.
ROW_ONLY_FIELDS = frozenset({"phone", "language"})


class CsvError(ValueError):
    """A file that cannot be read as a table; the message says why and what to do."""


@dataclass(frozen=True)
class CsvTable:
    """The rows of a CSV file, cells as text keyed by header, with how it was read.

    `row_numbers[i]` is the spreadsheet row of `rows[i]` (`spreadsheet_row`: the header
    is row 1 when it is the first line, so the first data row is row 2; blank lines
    are counted but not returned). `row_errors` maps a row number to what was wrong
    with its shape (too many or too few cells).
    """

    headers: list[str]
    rows: list[dict[str, str]]
    row_numbers: list[int]
    encoding: str
    delimiter: str
    row_errors: dict[int, str] = field(default_factory=dict)


def read_csv(data: bytes, *, max_bytes: int = MAX_BYTES, max_rows: int = MAX_ROWS) -> CsvTable:
    """Read an uploaded CSV file; CsvError with a plain reason when it cannot be read."""
    if not isinstance(data, bytes | bytearray):
        raise CsvError(_("The upload is not a file"))
    if len(data) > max_bytes:
        raise CsvError(
            _("The file is {size}; the limit is {limit}. Split it into smaller files.").format(
                size=_size(len(data)), limit=_size(max_bytes)
            )
        )
    text, encoding = _decode(bytes(data))
    if not text.strip():
        raise CsvError(_("The file is empty"))
    lines = _first_lines(text, 52)
    delimiter = _delimiter(lines if any(x.strip() for x in lines) else text.splitlines())
    records = _records(text, delimiter)  # one record at a time: no list of them all
    above = 0
    header: list[str] | None = None
    for header in records:
        if any(cell.strip() for cell in header):
            break
        above += 1  # blank lines above the header
    if header is None:
        raise CsvError(_("The file is empty"))
    # Rows are kept as their cells first: a trailing unnamed column is dropped only when
    # it is empty in every row, which is known once all are read.
    kept: list[list[str]] = []
    counts: list[int] = []  # each row's cells as written, trailing empty ones included
    numbers: list[int] = []
    widest = 0  # the most cells up to a row's last non-empty one
    for index, record in enumerate(records, start=above + 1):
        cells = [cell.strip() for cell in record]
        if not any(cells):
            continue  # blank line (or a row of empty cells)
        if len(kept) >= max_rows:
            raise CsvError(
                _("The file has more than {n} rows; split it into smaller files").format(
                    n=f"{max_rows:,}"
                )
            )
        counts.append(len(cells))
        while cells and cells[-1] == "":
            cells.pop()  # empty trailing cells: what a missing cell reads as anyway
        widest = max(widest, len(cells))
        kept.append(cells)
        numbers.append(spreadsheet_row(index))
    headers, width = _headers(header, widest)
    rows: list[dict[str, str]] = []
    errors: dict[int, str] = {}
    for position, (number, cells) in enumerate(zip(numbers, kept, strict=True)):
        record_width = counts[position]
        if len(cells) > width:
            errors[number] = _(
                "Row {row} has {cells} cells but the header has {width} (a {separator} inside "
                "a value? put that value in quotes)"
            ).format(row=number, cells=record_width, width=width, separator=_one(delimiter))
        elif record_width < width:
            errors[number] = _("Row {row} has {cells} cells but the header has {width}").format(
                row=number, cells=record_width, width=width
            )
        cells += [""] * (width - len(cells))
        rows.append(
            dict(zip(headers, cells if len(cells) == width else cells[:width], strict=True))
        )
        kept[position] = []  # each row's cells live once: as its list or as its dict
    return CsvTable(headers, rows, numbers, encoding, delimiter, errors)


def spreadsheet_row(record_index: int) -> int:
    """The row number a spreadsheet shows for the CSV record at `record_index` (0-based,
    counting blank records): the header line is row 1, the first data row is row 2.

    Records, not physical lines: a quoted cell spanning several lines is one
    spreadsheet row, as Excel and LibreOffice open it. Every list, message and result
    file numbers rows this way, so a buyer finds the row where the number says.
    """
    return record_index + 1


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" export
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise CsvError(_("The file claims to be UTF-16 but is not readable as such")) from None
    if data.startswith(b"PK\x03\x04"):
        raise CsvError(_("This is an Excel workbook (.xlsx), not CSV: save it as CSV first"))
    if b"\x00" in data:
        raise CsvError(_("This is not a text file (it contains binary data): export it as CSV"))
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            raise CsvError(_("The file says it is UTF-8 but contains invalid bytes")) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:  # Windows' "ANSI" code page: what Excel writes for "CSV (comma delimited)"
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _delimiter(lines: list[str]) -> str:
    """The delimiter of the header line: the one candidate that splits it into columns.

    When several split it (a header such as `name;phone,mobile`), the data rows decide
    only if exactly one candidate gives every row the header's width; otherwise the
    file is refused rather than guessed.
    """
    header = next((line for line in lines if line.strip()), "")
    widths = {d: len(_split(header, d)) for d in DELIMITERS}
    candidates = [d for d in DELIMITERS if widths[d] > 1]
    if not candidates:
        raise CsvError(
            _(
                "Only one column found: separate columns with commas, semicolons or tabs and "
                "keep the column names in the first line"
            )
        )
    if len(candidates) == 1:
        return candidates[0]
    sample = [line for line in lines[1:51] if line.strip()]
    consistent = [d for d in candidates if all(len(_split(x, d)) == widths[d] for x in sample)]
    if sample and len(consistent) == 1:
        return consistent[0]
    names = _(" and ").join(_delimiter_name(d) for d in candidates)
    raise CsvError(
        _(
            "The header line contains both {names}: it is unclear which one separates the "
            "columns. Export the file again with a single separator."
        ).format(names=names)
    )


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return [line]


def _first_lines(text: str, count: int) -> list[str]:
    """The first `count` lines of `text` (what the delimiter is judged on), without
    splitting the whole file into lines."""
    end = 0
    for _line in range(count):
        end = text.find("\n", end) + 1
        if end == 0:
            return text.splitlines()
    return text[:end].splitlines()


def _records(text: str, delimiter: str) -> Iterator[list[str]]:
    """The file's records one at a time; CsvError when one cannot be read."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for record in reader:
            if max(map(len, record), default=0) > MAX_CELL_CHARS:
                raise CsvError(
                    _("A cell near line {line} is far too long").format(line=reader.line_num)
                )
            yield record
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise CsvError(
                _("A cell near line {line} is far too long").format(line=reader.line_num)
            ) from None
        raise CsvError(
            _(
                "The file is malformed near line {line}: a quote is not closed or is followed "
                "by text ({error})"
            ).format(line=reader.line_num, error=exc)
        ) from None


def _headers(record: list[str], widest: int) -> tuple[list[str], int]:
    """The column names (BOM and spaces stripped) and the table width.

    Trailing unnamed columns that are empty in every row (spreadsheets add them; no row
    has a non-empty cell beyond `widest`) are dropped; any other unnamed column, or two
    columns with one name, is refused.
    """
    names = [cell.strip().lstrip("\ufeff").strip() for cell in record]
    while names and not names[-1] and widest < len(names):
        names.pop()
    if len(names) < 2:
        raise CsvError(_("The header line names fewer than two columns"))
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if not name:
            raise CsvError(_("Column {n} has no name in the header line").format(n=position))
        folded = _fold(name) or name
        if folded in seen:
            raise CsvError(
                _("Columns {a} and {b} are both named {name}").format(
                    a=seen[folded], b=position, name=repr(name)
                )
            )
        seen[folded] = position
    return names, len(names)


def _delimiter_name(delimiter: str) -> str:
    return {",": _("commas"), ";": _("semicolons"), "\t": _("tabs")}[delimiter]


def _one(delimiter: str) -> str:
    """One separator character by name ("a comma inside a value")."""
    return {",": _("comma"), ";": _("semicolon"), "\t": _("tab")}[delimiter]


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MB" if count >= 1024 * 1024 else f"{count / 1024:.0f} KB"


# Column mapping -------------------------------------------------------------------------

#: Names (folded: lower case, no accents, words joined by "_") a column may have per field.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "phone": (
        "phone", "phone_number", "telephone", "tel", "telefono", "movil", "mobile", "cell",
        "celular", "whatsapp", "telefone", "telemovel", "numero_de_telefono",
    ),
    "supplier_name": (
        "supplier_name", "supplier", "vendor", "vendor_name", "proveedor", "nombre_proveedor",
        "nombre", "name", "razon_social", "empresa", "company", "fornecedor",
    ),
    "po_number": (
        "po_number", "po", "purchase_order", "order", "order_number", "pedido",
        "numero_pedido", "n_pedido", "orden_de_compra", "orden_compra", "oc", "encomenda",
    ),
    "total_amount": (
        "total_amount", "amount", "total", "importe", "importe_total", "monto", "valor",
        "value", "valor_total", "price",
    ),
    "currency": ("currency", "moneda", "divisa", "curr", "moeda", "currency_code"),
    "language": ("language", "lang", "idioma", "lengua", "locale", "lingua"),
    "document_link": (
        "document_link", "pdf", "pdf_link", "pdf_url", "document", "documento", "enlace",
        "enlace_pdf", "url", "link",
    ),
}  # fmt: skip


def guess_mapping(headers: Sequence[str], wanted: Sequence[str]) -> dict[str, str | None]:
    """For each wanted field, the header that most likely holds it (None when no header
    fits). A header serves one field at most; exact names beat names containing a
    synonym as a word ("Teléfono móvil" → phone). The result is a proposal for the buyer
    to confirm, not a decision.
    """
    folded = {header: _fold(header) for header in headers}
    mapping: dict[str, str | None] = {}
    used: set[str] = set()
    for strict in (True, False):
        for want in wanted:
            if mapping.get(want) is not None:
                continue
            mapping[want] = None
            names = (*SYNONYMS.get(want, ()), _fold(want))
            for name in names:
                match = next(
                    (h for h in headers if h not in used and _matches(folded[h], name, strict)),
                    None,
                )
                if match is not None:
                    mapping[want] = match
                    used.add(match)
                    break
    return {want: mapping.get(want) for want in wanted}


def _matches(header: str, name: str, strict: bool) -> bool:
    if strict:
        return header == name
    return f"_{name}_" in f"_{header}_"


def _fold(text: str) -> str:
    """Lower case, accents removed, runs of non-letters as one "_": "Nº Pedido" → "n_pedido"."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "_".join(re.findall(r"[a-z0-9]+", plain))


# Row checks -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)  # slots: a 100,000-row plan keeps 100,000 of them
class RowCheck:
    """One input row, checked: what would be sent, or every reason it cannot be."""

    row_number: int
    values: dict[str, str]  # the mapped cells, as read
    phone_e164: str | None
    params: TemplateParams | None
    preview: str | None  # the message body the supplier would read
    idempotency_key: str | None
    errors: list[str]
    warnings: list[str] = field(default_factory=list)
    language: str | None = None  # the template version it is sent in (None if refused)
    #: The Cloud API request body of a row the check found sendable, as JSON text (compact:
    #: a 100,000-row plan keeps one per row): built from the same resolved values as the
    #: preview, so queuing the row does not resolve its template a second time.
    payload: str | None = None

    @property
    def ok(self) -> bool:
        """True when the row can be queued."""
        return not self.errors


def validate_rows(
    table: CsvTable,
    mapping: Mapping[str, str | None],
    defn: TemplateDefinition,
    *,
    region: str | None = None,
    decimal: DecimalMark = "auto",
    default_currency: str | None = None,
    versions: Mapping[str, TemplateDefinition] | None = None,
    supplier_languages: Callable[[Sequence[str]], Mapping[str, str]] | None = None,
    fallback_to_default: bool = False,
) -> list[RowCheck]:
    """Check every row of `table` for a send of `defn`; one RowCheck per row, in order.

    Each row is checked against the version of the template in its own language
    (`core.row_languages.row_language`: its language cell, else its supplier's, else
    `defn`'s): `versions` maps a language to the template's sendable version in it
    (`defn` alone when not given), and `supplier_languages` answers, for the rows'
    E.164 numbers, the languages the directory keeps (called once). A row whose
    language has no version is refused, or checked against `defn` with a warning when
    `fallback_to_default`.

    `mapping` maps fields to headers: for a PO notice template (see
    `is_po_notice_template`) the fields of PO_FIELDS (plus PO_DOCUMENT_FIELD when the
    template's header is a PDF); for any other template, "phone" plus the template's
    parameter names, and "header" (a text, or the https link of a media header).
    `default_currency` stands in
    for a missing currency column. Duplicates within the file (the same idempotency
    key) are errors; duplicates of earlier sends are the outbox's job.
    """
    by_language = dict(versions or {})
    by_language.setdefault(defn.language, defn)
    cells = [
        {want: row.get(header, "") for want, header in mapping.items() if header}
        for row in table.rows
    ]
    phones = _read_phones([values.get("phone", "") for values in cells], region)
    known = [phone for phone, _problem in phones if phone is not None]
    kept = dict(supplier_languages(known)) if supplier_languages is not None and known else {}
    decisions, chosen_for = _decide_languages(
        cells, phones, kept, defn, by_language, fallback_to_default
    )
    checked = _check_rows(
        _RowsToCheck(
            current_locale(),
            list(table.row_numbers),
            cells,
            phones,
            decisions,
            chosen_for,
            decimal,
            default_currency,
        )
    )
    first_row_of: dict[str, int] = {}
    checks = []
    for check in checked:
        number = check.row_number
        key = check.idempotency_key
        twice = key is not None and key in first_row_of
        if key is not None and not twice:
            first_row_of[key] = number
        if twice or number in table.row_errors:  # else the check stands as it is
            errors = [table.row_errors[number]] if number in table.row_errors else []
            errors += check.errors
            if twice:
                assert key is not None
                errors.append(
                    _("Same PO, phone and template as row {row}: not sent twice").format(
                        row=first_row_of[key]
                    )
                )
            check = replace(check, errors=errors)
        checks.append(check)
    return checks


#: How a row's language was decided, its template version, and whether that version
#: is a PO notice: one per distinct (language cell, supplier's language) of a file.
_Decision = tuple[RowLanguage, TemplateDefinition, bool]
#: Rows from which a file's checks are spread over worker processes (`core.cores`)
#: that are ready (the dashboard starts them with its bulk page): below it, sending
#: them the rows costs more than it saves...
SPREAD_FROM = 20_000
#: ... and from which it is worth starting them first (about a second; a command).
SPREAD_COLD_FROM = 50_000


def _decide_languages(
    cells: list[dict[str, str]],
    phones: list[tuple[str | None, str | None]],
    kept: Mapping[str, str],
    defn: TemplateDefinition,
    by_language: Mapping[str, TemplateDefinition],
    fallback_to_default: bool,
) -> tuple[list[_Decision], list[int]]:
    """Each row's language (`core.row_languages.row_language`: its cell, else the
    language `kept` for its supplier's number, else `defn`'s) and the template version
    it is checked against: the distinct decisions, and each row's index among them.

    A file repeats a few languages: each (cell, supplier's language) is decided once,
    here, in the caller's process (its reasons read in the reader's language of the
    moment); the rows themselves may be checked in worker processes.
    """
    decided: dict[tuple[str | None, str | None], int] = {}
    decisions: list[_Decision] = []
    chosen_for: list[int] = []
    for values, (phone, _problem) in zip(cells, phones, strict=True):
        asked = (values.get("language"), kept.get(phone or ""))
        index = decided.get(asked)
        if index is None:
            chosen = row_language(
                *asked, defn.language, by_language, fallback_to_default=fallback_to_default
            )
            version = by_language.get(chosen.code or "", defn)
            index = decided[asked] = len(decisions)
            decisions.append((chosen, version, is_po_notice_template(version)))
        chosen_for.append(index)
    return decisions, chosen_for


def _slices(count: int) -> list[slice]:
    """The slices `count` rows (or numbers) are checked in: one per worker process for a
    big file, else one, here (none for no rows)."""
    parts = 1
    if count >= SPREAD_COLD_FROM or (count >= SPREAD_FROM and cores.ready()):
        parts = cores.workers()
    size = max(1, -(-count // parts))
    return [slice(start, start + size) for start in range(0, count, size)]


@dataclass(frozen=True)
class _RowsToCheck:
    """Rows to check and all the rules they are checked by: a worker process checks
    a slice of them (`core.cores.spread`) without reading anything else."""

    locale: str
    numbers: list[int]
    cells: list[dict[str, str]]
    phones: list[tuple[str | None, str | None]]
    decisions: list[_Decision]
    chosen_for: list[int]  # each row's decision, by its index in `decisions`
    decimal: DecimalMark
    default_currency: str | None

    def sliced(self, rows: slice) -> _RowsToCheck:
        """These rows with the same rules."""
        return replace(
            self,
            numbers=self.numbers[rows],
            cells=self.cells[rows],
            phones=self.phones[rows],
            chosen_for=self.chosen_for[rows],
        )


def _check_rows(rows: _RowsToCheck) -> list[RowCheck]:
    """Each row checked (`_check_row`), in order: a big file's slices in worker
    processes, one per core, a small file's here."""
    slices = [rows.sliced(part) for part in _slices(len(rows.numbers))]
    checked = chain.from_iterable(cores.spread(_check_slice, slices))
    return [
        RowCheck(number, values, *rest)
        for values, (number, *rest) in zip(rows.cells, checked, strict=True)
    ]


#: A RowCheck without its values (the caller has them) as a worker sends it back: a
#: plain tuple pickles in a fraction of the time of a slotted dataclass.
_CheckAnswer = tuple[Any, ...]


@fewer_collections()  # in a worker process as here: thousands of rows' small containers
def _check_slice(rows: _RowsToCheck) -> list[_CheckAnswer]:
    _read_as(rows.locale)
    checks = []
    for number, values, phoned, index in zip(
        rows.numbers, rows.cells, rows.phones, rows.chosen_for, strict=True
    ):
        language, version, po_notice = rows.decisions[index]
        check = _check_row(
            number, values, phoned, version, language, po_notice, rows.decimal,
            rows.default_currency,
        )  # fmt: skip
        checks.append(
            (check.row_number, check.phone_e164, check.params, check.preview,
             check.idempotency_key, check.errors, check.warnings, check.language,
             check.payload)
        )  # fmt: skip
    return checks


def _read_as(locale: str) -> None:
    """Write reasons in `locale`, the caller's: a worker process starts in the default."""
    if current_locale() != locale:
        set_locale(locale)


def _read_phones(raws: list[str], region: str | None) -> list[tuple[str | None, str | None]]:
    """Each raw phone cell's E.164 number, or None and why it cannot be read (a
    supplier's number is read once, however many rows repeat it): a big file's distinct
    numbers are read in worker processes, one slice per core."""
    distinct = list(dict.fromkeys(raws))
    region = region or get_settings().whatsapp_default_region
    slices = [(current_locale(), region, distinct[part]) for part in _slices(len(distinct))]
    read = dict(
        zip(distinct, chain.from_iterable(cores.spread(_read_phone_slice, slices)), strict=True)
    )
    return [read[raw] for raw in raws]


def _read_phone_slice(
    part: tuple[str, str, list[str]],
) -> list[tuple[str | None, str | None]]:
    locale, region, raws = part
    _read_as(locale)
    return [_phone(raw, region) for raw in raws]


def _check_row(
    number: int,
    values: dict[str, str],
    phoned: tuple[str | None, str | None],
    defn: TemplateDefinition,
    language: RowLanguage,
    po_notice: bool,
    decimal: DecimalMark,
    default_currency: str | None,
) -> RowCheck:
    formulas = [
        name
        for name, value in values.items()
        if value[:1] in _FORMULA_FIRST and looks_like_formula(value)  # the first: a set look
    ]
    errors = [
        _(
            "The {field} starts with {char} like a spreadsheet formula; it is refused rather "
            "than sent. Keep only the text in that cell."
        ).format(field=_field(name), char=repr(values[name][0]))
        for name in formulas
    ]
    phone, phone_problem = phoned
    if phone_problem is not None:
        errors.append(phone_problem)
    if language.error is not None and "language" not in formulas:
        errors.append(language.error)
    params: TemplateParams | None
    if po_notice:
        params = _po_params(values, defn, decimal, default_currency, errors)
    else:
        params = {name: value for name, value in values.items() if name not in ROW_ONLY_FIELDS}
        if defn.has_media_header and defn.header_format and params.get(HEADER_KEY):
            params[HEADER_KEY] = {"type": defn.header_format.lower(), "link": params[HEADER_KEY]}
    filled = fill(defn, params) if params is not None else None  # resolved once per row
    preview = body_of(defn, filled) if filled is not None else None
    if filled is not None:
        said = set(formulas)  # one reason per cell: a PO number is also a header and payloads
        for problem in unsendable_problems(defn) + content_problems(defn, filled, preview):
            source = _source_field(defn, problem.param, po_notice)
            if source in said:
                continue
            said.add(source)
            named = po_notice and source in PO_PARAMS
            errors.append(
                _("The {field} {reason}").format(field=_field(source), reason=problem.reason)
                if named
                else problem.message
            )
    warnings = [language.warning] if language.warning else []
    key = None
    if phone is not None and po_notice and values.get("po_number", "").strip():
        key = po_notice_key(values["po_number"], phone, defn.name)
    elif phone is not None and params is not None and not po_notice:
        key = content_key(phone, {"template": defn.key, "params": params})
    payload = None
    if filled is not None and phone is not None and not errors:
        payload = _json(payload_of(defn, wa_digits(phone), filled))
    return RowCheck(
        number, values, phone, params, preview, key, errors, warnings, language.code, payload
    )


#: What `json.dumps` writes as a `\\u` escape and orjson as it is: beyond ASCII, and DEL.
_UNESCAPED = re.compile(r"[^\x00-\x7e]")


def _json(body: dict[str, Any]) -> str:
    """A request body as compact JSON text: the very text `json.dumps(body,
    separators=(",", ":"))` writes, ASCII with `\\u` escapes.

    orjson writes it several times faster (a 100,000-row file writes 100,000 bodies),
    and the few characters it leaves as they are are escaped after. ASCII text is also
    what a plan of 100,000 rows can afford to keep: one "€" in a body makes Python keep
    the whole string at two bytes per character. What orjson refuses (a lone surrogate,
    an integer beyond 64 bits, a key that is not text) is written by `json.dumps`.
    """
    try:
        text = orjson.dumps(body).decode()
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":"))
    return _UNESCAPED.sub(_escape, text)


def _escape(found: re.Match[str]) -> str:
    """A character as `json.dumps` escapes it: `\\uXXXX`, or a surrogate pair beyond the
    Basic Multilingual Plane."""
    code = ord(found.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}"


def _phone(raw: str, region: str | None) -> tuple[str | None, str | None]:
    """The row's E.164 number, or None and why it cannot be read."""
    if not raw.strip():
        return None, _("The phone number is missing")
    try:
        return normalize_phone(raw, region), None
    except InvalidPhoneNumber as exc:
        return None, str(exc)


def _po_params(
    values: dict[str, str],
    defn: TemplateDefinition,
    decimal: DecimalMark,
    default_currency: str | None,
    errors: list[str],
) -> TemplateParams | None:
    """The PO notice parameters of a row, or None with the reasons added to `errors`."""
    missing = [name for name in ("supplier_name", "po_number") if not values.get(name, "").strip()]
    errors.extend(_("The {field} is missing").format(field=_field(name)) for name in missing)
    amount = currency = None
    try:
        amount = parse_amount(values.get("total_amount", ""), decimal)
    except InvalidAmount as exc:
        errors.append(_("Amount: {reason}").format(reason=exc))
    try:
        currency = normalize_currency(values.get("currency", "").strip() or default_currency)
    except InvalidAmount as exc:
        errors.append(_("Currency: {reason}").format(reason=exc))
    if missing or amount is None or currency is None:
        return None
    try:
        return build_po_notice_params(
            defn,
            values["supplier_name"],
            values["po_number"].strip(),
            amount,
            currency,
            document_link=values.get(PO_DOCUMENT_FIELD, "").strip() or None,
        )
    except ValueError as exc:  # e.g. the template wants the PO's PDF and no link was mapped
        errors.append(str(exc))
        return None


def _source_field(defn: TemplateDefinition, param: str, po_notice: bool) -> str:
    """The row's field a parameter's value came from: for a PO notice, "1" and
    "supplier_name" are the supplier name, and a text header and the quick-reply payloads
    (`ack:<po>`) are the PO number; otherwise the parameter's own name."""
    if not po_notice:
        return param
    if param.isdigit() and 1 <= int(param) <= len(PO_PARAMS):
        return PO_PARAMS[int(param) - 1]
    if (param == HEADER_KEY and defn.header_format == "TEXT") or param.startswith("buttons."):
        return "po_number"
    return param


def _field(name: str) -> str:
    known = {
        "phone": N_("phone number"),
        "supplier_name": N_("supplier name"),
        "po_number": N_("PO number"),
        "total_amount": N_("amount"),
    }.get(name)
    return _(known) if known else name
