"""The supplier directory: list, add, edit, opt in or out, and import from CSV.

Every change is an admin's (role checked in each function) and stays inside the admin's
home tenant. Phones are normalised to E.164 (`core.phones`), one supplier per number and
tenant. A CSV import reads the file with `core.csv_import` (encodings, delimiters,
formula-looking cells), checks every row, reports the bad ones with reasons, and writes
nothing unless asked to apply the good rows; rows that match an existing number update
that supplier instead of adding a duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, or_
from sqlmodel import Session, col, select

from core.auth import Action, require, write_tenant
from core.consent import consent_state, grant, withdraw
from core.consent.policy import ConsentStateName
from core.csv_import import CsvError, CsvTable, guess_mapping, read_csv
from core.db import session_scope
from core.i18n import _
from core.models.suppliers import Supplier
from core.models.types import utcnow
from core.namesakes import Namesake, find_namesakes
from core.paging import ResultPage
from core.phones import InvalidPhoneNumber, display_phone, normalize_phone, wa_digits
from core.users import UserInfo

MAX_NAME = 200
MAX_REF = 64
MAX_PAGE_SIZE = 500
#: Languages a supplier may be addressed in (template language codes).
LANGUAGE_CODES = ("es", "en", "pt_PT", "pt_BR", "fr", "de", "it", "ca")
#: The fields of a supplier import, in the order the mapping form shows them.
IMPORT_FIELDS = ("supplier_name", "phone", "language", "supplier_ref", "opted_in")
REQUIRED_FIELDS = ("supplier_name", "phone")
_YES = {"yes", "y", "si", "sí", "s", "true", "1", "x", "ok", "opt-in", "opted in"}
_NO = {"no", "n", "false", "0", "opt-out", "opted out"}
#: An import's consent cell left empty: a new supplier has none, a known one keeps its own.
_BLANK = ""
_FORMULA = ("=", "+", "-", "@")


class SupplierError(ValueError):
    """A supplier change that cannot be made; the message says why in plain words."""


@dataclass(frozen=True)
class SupplierInput:
    """What a person types for a supplier (checked by `check_supplier`)."""

    name: str
    phone: str
    language: str = "es"
    external_ref: str | None = None
    opted_in: bool | None = True  # None: leave consent as it is (an import's empty cell)


@dataclass(frozen=True)
class SupplierView:
    """A supplier as the directory shows it."""

    id: int
    name: str
    phone_e164: str
    phone_display: str
    language: str
    external_ref: str | None
    opted_in: bool
    opted_in_at: datetime | None
    is_active: bool
    last_inbound_at: datetime | None
    is_demo: bool
    consent: ConsentStateName = "unknown"  # consenting, opted_out or unknown
    consent_source: str | None = None
    consent_by: str | None = None
    opted_out_at: datetime | None = None
    opt_out_source: str | None = None
    opt_out_by: str | None = None


#: One page of SupplierView rows.
SupplierPage = ResultPage[SupplierView]


@dataclass(frozen=True)
class ImportRow:
    """One data row of an import: the checked supplier, or why it was refused."""

    row_number: int
    supplier: SupplierInput | None
    phone_e164: str | None
    problems: tuple[str, ...] = ()
    updates_existing: bool = False

    @property
    def ok(self) -> bool:
        """True when the row can be imported."""
        return not self.problems


@dataclass(frozen=True)
class ImportPlan:
    """Every row of a file checked against the mapping and the directory."""

    rows: list[ImportRow]
    mapping: dict[str, str | None]
    encoding: str
    delimiter: str
    problems: tuple[str, ...] = ()  # about the whole file (a required column not mapped)
    #: Rows that would add a supplier named like another one: asked about before importing.
    namesakes: list[Namesake] = field(default_factory=list)

    @property
    def good(self) -> list[ImportRow]:
        """The rows that can be imported."""
        return [r for r in self.rows if r.ok]

    @property
    def bad(self) -> list[ImportRow]:
        """The rows refused, each with its reasons."""
        return [r for r in self.rows if not r.ok]


@dataclass(frozen=True)
class ImportResult:
    """What applying an import changed."""

    added: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def check_supplier(data: SupplierInput, region: str | None = None) -> tuple[SupplierInput, str]:
    """The cleaned input and its E.164 phone, or SupplierError listing every problem."""
    problems: list[str] = []
    name = " ".join((data.name or "").split())
    if not name:
        problems.append(_("The name is empty"))
    elif len(name) > MAX_NAME:
        problems.append(_("The name is longer than {n} characters").format(n=MAX_NAME))
    elif name.startswith(_FORMULA):
        problems.append(_("The name starts like a spreadsheet formula (=, +, - or @)"))
    phone = ""
    try:
        phone = normalize_phone(data.phone, region)
    except InvalidPhoneNumber as exc:
        problems.append(str(exc))
    language = (data.language or "").strip()
    if language not in LANGUAGE_CODES:
        choices = ", ".join(LANGUAGE_CODES)
        problems.append(
            _("Unknown language {language}: use one of {choices}").format(
                language=repr(language[:20]), choices=choices
            )
        )
    ref = (data.external_ref or "").strip() or None
    if ref is not None and len(ref) > MAX_REF:
        problems.append(_("The reference is longer than {n} characters").format(n=MAX_REF))
    if problems:
        raise SupplierError("; ".join(problems))
    consent = None if data.opted_in is None else bool(data.opted_in)
    return SupplierInput(name, phone, language, ref, consent), phone


def list_suppliers(
    engine: Engine,
    tenant_id: str,
    *,
    query: str = "",
    include_inactive: bool = False,
    page: int = 1,
    page_size: int = 100,
) -> SupplierPage:
    """The tenant's suppliers by name, filtered by name, phone digits or reference."""
    page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    page = max(1, int(page))
    conditions = [col(Supplier.tenant_id) == tenant_id]
    if not include_inactive:
        conditions.append(col(Supplier.is_active).is_(True))
    text = (query or "").strip()[:100]
    if text:
        needle = f"%{_escape(text.lower())}%"
        options = [
            func.lower(col(Supplier.name)).like(needle, escape="\\"),
            func.lower(col(Supplier.external_ref)).like(needle, escape="\\"),
        ]
        digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
        if digits:
            options.append(col(Supplier.phone_e164).like(f"%{digits}%"))
        conditions.append(or_(*options))
    with Session(engine) as session:
        counted = select(func.count()).select_from(Supplier).where(*conditions)
        total = int(session.exec(counted).one())
        rows = session.exec(
            select(Supplier)
            .where(*conditions)
            .order_by(func.lower(col(Supplier.name)), col(Supplier.id))
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
    return SupplierPage([_view(r) for r in rows], total, page, page_size)


def get_supplier(engine: Engine, tenant_id: str, supplier_id: int) -> SupplierView | None:
    """One supplier of the tenant, or None."""
    with Session(engine) as session:
        row = session.get(Supplier, int(supplier_id))
        return _view(row) if row is not None and row.tenant_id == tenant_id else None


def add_supplier(engine: Engine, user: UserInfo, data: SupplierInput) -> SupplierView:
    """Add a supplier to the admin's tenant; SupplierError if invalid or the number exists."""
    tenant = write_tenant(require(user, Action.MANAGE_SUPPLIERS))
    clean, phone = check_supplier(data)
    with session_scope(engine) as session:
        existing = _by_phone(session, tenant, phone)
        if existing is not None:
            raise SupplierError(
                _("{phone} already belongs to {name}").format(
                    phone=display_phone(phone), name=existing.name
                )
            )
        row = _new_row(tenant, clean, phone)
        session.add(row)
        session.flush()
        _record_consent(session, row, clean.opted_in, "admin", user.username)
        return _view(row)


def update_supplier(
    engine: Engine, user: UserInfo, supplier_id: int, data: SupplierInput, *, active: bool = True
) -> SupplierView:
    """Change a supplier of the admin's tenant (name, phone, language, reference, consent)."""
    tenant = write_tenant(require(user, Action.MANAGE_SUPPLIERS))
    clean, phone = check_supplier(data)
    with session_scope(engine) as session:
        row = session.get(Supplier, int(supplier_id))
        if row is None or row.tenant_id != tenant:
            raise SupplierError(_("No such supplier"))
        other = _by_phone(session, tenant, phone)
        if other is not None and other.id != row.id:
            raise SupplierError(
                _("{phone} already belongs to {name}").format(
                    phone=display_phone(phone), name=other.name
                )
            )
        _apply(row, clean, phone)
        row.is_active = active
        session.add(row)
        session.flush()
        _record_consent(session, row, clean.opted_in, "admin", user.username)
        return _view(row)


def set_opt_in(engine: Engine, user: UserInfo, supplier_id: int, opted_in: bool) -> SupplierView:
    """Record a supplier's consent to WhatsApp notices (or its withdrawal: an opt-out),
    by this admin, now; kept in the supplier's consent history."""
    tenant = write_tenant(require(user, Action.MANAGE_SUPPLIERS))
    with session_scope(engine) as session:
        row = session.get(Supplier, int(supplier_id))
        if row is None or row.tenant_id != tenant:
            raise SupplierError(_("No such supplier"))
        _record_consent(session, row, opted_in, "admin", user.username, explicit=True)
        session.flush()
        return _view(row)


def read_import(data: bytes) -> tuple[CsvTable, dict[str, str | None]]:
    """The file's table and a proposed column mapping; CsvError when unreadable."""
    table = read_csv(data)
    return table, guess_mapping(table.headers, IMPORT_FIELDS)


def plan_import(
    engine: Engine,
    tenant_id: str,
    table: CsvTable,
    mapping: Mapping[str, str | None],
    *,
    region: str | None = None,
) -> ImportPlan:
    """Check every row against the mapping and the directory, writing nothing."""
    chosen = {k: v for k, v in mapping.items() if k in IMPORT_FIELDS}
    problems = [f"Choose the column holding the {f.replace('_', ' ')}"
                for f in REQUIRED_FIELDS if not chosen.get(f)]  # fmt: skip
    unknown = [v for v in chosen.values() if v and v not in table.headers]
    if unknown:
        problems.append(_("The file has no column {name}").format(name=repr(unknown[0][:60])))
    if problems:
        return ImportPlan([], dict(chosen), table.encoding, table.delimiter, tuple(problems))
    with Session(engine) as session:
        existing = {
            s.phone_e164
            for s in session.exec(select(Supplier).where(col(Supplier.tenant_id) == tenant_id))
        }
    seen: dict[str, int] = {}
    rows: list[ImportRow] = []
    for number, cells in zip(table.row_numbers, table.rows, strict=True):
        rows.append(_plan_row(number, cells, chosen, table, existing, seen, region))
    new = [r for r in rows if r.ok and not r.updates_existing]
    with Session(engine) as session:
        namesakes = find_namesakes(
            session,
            tenant_id,
            [
                (r.row_number, r.supplier.name, r.phone_e164)
                for r in new
                if r.supplier and r.phone_e164
            ],
        )
    return ImportPlan(rows, dict(chosen), table.encoding, table.delimiter, (), namesakes)


def apply_import(
    engine: Engine, user: UserInfo, plan: ImportPlan, *, allow_namesakes: bool = False
) -> ImportResult:
    """Write the plan's good rows in one transaction: new numbers added, known ones updated.

    A plan that would add suppliers named like others (`plan.namesakes`) is refused
    unless `allow_namesakes` (the admin confirmed they are different suppliers).
    """
    tenant = write_tenant(require(user, Action.MANAGE_SUPPLIERS))
    if plan.problems:
        raise SupplierError("; ".join(plan.problems))
    if plan.namesakes and not allow_namesakes:
        raise SupplierError(
            _(
                "Rows {rows} would add a supplier with the name of another one: confirm first"
            ).format(rows=", ".join(str(n.row_number) for n in plan.namesakes[:20]))
        )
    added = updated = 0
    with session_scope(engine) as session:
        for item in plan.good:
            assert item.supplier is not None and item.phone_e164 is not None
            row = _by_phone(session, tenant, item.phone_e164)
            if row is None:
                row = _new_row(tenant, item.supplier, item.phone_e164)
                session.add(row)
                added += 1
            else:
                _apply(row, item.supplier, item.phone_e164)
                row.is_active = True
                session.add(row)
                updated += 1
            session.flush()
            _record_consent(session, row, item.supplier.opted_in, "import", user.username)
    return ImportResult(added=added, updated=updated, skipped=len(plan.bad))


# --- helpers -------------------------------------------------------------------------


def _plan_row(
    number: int,
    cells: Mapping[str, str],
    mapping: Mapping[str, str | None],
    table: CsvTable,
    existing: set[str],
    seen: dict[str, int],
    region: str | None,
) -> ImportRow:
    problems: list[str] = []
    if number in table.row_errors:
        problems.append(table.row_errors[number])

    def cell(name: str) -> str:
        column = mapping.get(name)
        return (cells.get(column, "") if column else "").strip()

    consent = cell("opted_in").lower() if mapping.get("opted_in") else _BLANK
    if consent != _BLANK and consent not in _YES and consent not in _NO:
        problems.append(
            _("Consent {value} is not yes or no").format(value=repr(consent[:20]))
        )
    data = SupplierInput(
        name=cell("supplier_name"),
        phone=cell("phone"),
        language=cell("language") or "es",
        external_ref=cell("supplier_ref") or None,
        opted_in=None if consent == _BLANK else consent in _YES,
    )
    clean: SupplierInput | None = None
    phone: str | None = None
    try:
        clean, phone = check_supplier(data, region)
    except SupplierError as exc:
        problems.extend(str(exc).split("; "))
    if phone is not None:
        if phone in seen:
            problems.append(_("The same number as row {row}").format(row=seen[phone]))
        else:
            seen[phone] = number
    if problems:
        return ImportRow(number, None, phone, tuple(problems))
    return ImportRow(number, clean, phone, (), updates_existing=phone in existing)


def _by_phone(session: Session, tenant: str, phone: str) -> Supplier | None:
    return session.exec(
        select(Supplier).where(
            col(Supplier.tenant_id) == tenant, col(Supplier.phone_e164) == phone
        )
    ).first()


def _new_row(tenant: str, data: SupplierInput, phone: str) -> Supplier:
    now = utcnow()
    return Supplier(
        tenant_id=tenant,
        name=data.name,
        phone_e164=phone,
        wa_id=wa_digits(phone),
        language=data.language,
        external_ref=data.external_ref,
        opted_in=False,  # consent is recorded by _record_consent, with who and how
        created_at=now,
        updated_at=now,
    )


def _apply(row: Supplier, data: SupplierInput, phone: str) -> None:
    if row.phone_e164 != phone:
        row.wa_id = wa_digits(phone)  # Meta's id for the new number is learned on reply
    row.name, row.phone_e164, row.language = data.name, phone, data.language
    row.external_ref = data.external_ref
    row.updated_at = utcnow()


def _record_consent(
    session: Session,
    row: Supplier,
    opted_in: bool | None,
    source: str,
    by: str,
    *,
    explicit: bool = False,
) -> None:
    """Consent as the admin set it: granted (an admin's lifts an opt-out; an import's
    does not), or withdrawn (an opt-out) when it was there, or always when `explicit`
    (the admin recorded an opt-out); None changes nothing."""
    if opted_in is None:
        return
    if opted_in:
        grant(session, row, source=source, by=by)
    elif explicit or consent_state(row) == "consenting":
        withdraw(session, row, source=source, by=by)


def _view(row: Supplier) -> SupplierView:
    assert row.id is not None
    try:
        shown = display_phone(row.phone_e164)
    except InvalidPhoneNumber:
        shown = row.phone_e164
    return SupplierView(
        id=row.id,
        name=row.name,
        phone_e164=row.phone_e164,
        phone_display=shown,
        language=row.language,
        external_ref=row.external_ref,
        opted_in=row.opted_in,
        opted_in_at=row.opted_in_at,
        is_active=row.is_active,
        last_inbound_at=row.last_inbound_at,
        is_demo=(row.external_ref or "").startswith("DEMO-"),
        consent=consent_state(row),
        consent_source=row.consent_source,
        consent_by=row.consent_by,
        opted_out_at=row.opted_out_at,
        opt_out_source=row.opt_out_source,
        opt_out_by=row.opt_out_by,
    )


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


__all__ = [
    "IMPORT_FIELDS",
    "LANGUAGE_CODES",
    "CsvError",
    "ImportPlan",
    "ImportResult",
    "ImportRow",
    "SupplierError",
    "SupplierInput",
    "SupplierPage",
    "SupplierView",
    "add_supplier",
    "apply_import",
    "check_supplier",
    "get_supplier",
    "list_suppliers",
    "plan_import",
    "read_import",
    "set_opt_in",
    "update_supplier",
]
