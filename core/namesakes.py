"""Suppliers an upload would add under a name another supplier already has.

Two suppliers may share a name, but more often a second one of the same name is the
same company at a new number, or a typo. So an upload (a bulk send or a directory
import) that would add such a supplier lists those rows and asks before it adds them:
the dashboard with a confirmation, the CLI with a flag.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, func, select

from core.db import one_of
from core.i18n import _
from core.models.suppliers import Supplier
from core.supplier_labels import supplier_label

__all__ = ["Namesake", "find_namesakes"]

#: Names per `IN (...)` lookup where the database's limit on parameters is not known:
#: well under SQLite's oldest variable limit (999).
_IN_CHUNK = 500
#: Names per lookup at most: no index has `lower(name)`, so each lookup reads every
#: supplier of the tenant; fewer, larger lookups read them fewer times (a 100,000-row
#: file: 10 instead of 200 reads of the directory).
_MAX_CHUNK = 10_000


@dataclass(frozen=True)
class Namesake:
    """A row that would add a supplier whose name another supplier already has."""

    row_number: int
    name: str
    phone_e164: str
    others: list[str]  # the suppliers of that name, labelled by `supplier_label`


def find_namesakes(
    session: Session, tenant_id: str, new: Iterable[tuple[int, str, str]]
) -> list[Namesake]:
    """Of the rows that would add a supplier, `(row number, name, E.164 phone)`, those
    whose name (without case or surrounding spaces) an existing supplier of the tenant
    at another number has, or another new one earlier in the same file.

    The directory is searched by `lower(name)` in a few queries; on SQLite `lower` folds
    ASCII letters only, so "LÁCTEOS" is not found for "Lácteos" there (PostgreSQL folds
    every letter).
    """
    rows = [(number, name.strip()[:200], phone) for number, name, phone in new]
    folded = sorted({name.casefold() for _n, name, _p in rows if name})
    existing: dict[str, list[Supplier]] = {}
    size = _chunk_size(session) if len(folded) > _IN_CHUNK else _IN_CHUNK
    for start in range(0, len(folded), size):
        chunk = folded[start : start + size]
        for supplier in session.exec(
            select(Supplier)
            .where(
                col(Supplier.tenant_id) == tenant_id,
                one_of(session, func.lower(col(Supplier.name)), chunk),
            )
            .order_by(col(Supplier.id))
        ).all():
            existing.setdefault(supplier.name.strip().casefold(), []).append(supplier)
    found: list[Namesake] = []
    earlier: dict[str, list[tuple[int, str, str]]] = {}  # labelled only when needed
    for number, name, phone in rows:
        if not name:
            continue
        key = name.casefold()
        others = [
            supplier_label(s.name, s.phone_e164, s.external_ref)
            for s in existing.get(key, [])
            if s.phone_e164 != phone
        ]
        others += [
            _("{label} (row {row} of this file)").format(
                label=supplier_label(first_name, first_phone), row=first_row
            )
            for first_row, first_name, first_phone in earlier.get(key, [])
        ]
        if others:
            found.append(Namesake(number, name, phone, others))
        earlier.setdefault(key, []).append((number, name, phone))
    return found


def _chunk_size(session: Session) -> int:
    """How many names one lookup may take: PostgreSQL gets them as one array parameter
    (`one_of`), SQLite as one parameter each, up to the connection's own limit."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return _MAX_CHUNK
    if dialect == "sqlite":
        raw = session.connection().connection.dbapi_connection
        if isinstance(raw, sqlite3.Connection):
            limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            return max(_IN_CHUNK, min(_MAX_CHUNK, limit - 10))  # tenant_id's too
    return _IN_CHUNK
