"""Recording consent: grant, withdraw (with who, when, how) and read the history.

The supplier row holds the current state, `consent_events` the proof. An opt-out is
lifted only by an admin (source `admin`): a send page checkbox, a CSV column, an ERP
flag or an import never re-grants consent to someone who said stop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, update
from sqlmodel import Session, col, select

from core import clock
from core.models.consent import ConsentEvent
from core.models.suppliers import Supplier

GRANTED = "granted"
WITHDRAWN = "withdrawn"
#: Sources allowed to lift an opt-out (a person deliberately editing the supplier).
LIFTS_OPT_OUT = frozenset({"admin"})
MAX_EVIDENCE = 1000
MAX_BY = 120

_SUPPLIERS = Supplier.__table__  # type: ignore[attr-defined]
_EVENTS = ConsentEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ConsentEventView:
    """One line of a supplier's consent history."""

    action: str
    source: str
    by: str | None
    evidence: str | None
    at: datetime


def grant(
    session: Session,
    supplier: Supplier,
    *,
    source: str,
    by: str | None = None,
    at: datetime | None = None,
    evidence: str | None = None,
) -> bool:
    """Record that `supplier` agreed to WhatsApp messages; False when nothing changed
    (already consenting, or opted out and `source` may not lift an opt-out)."""
    if supplier.opted_out_at is not None and source not in LIFTS_OPT_OUT:
        return False
    if supplier.opted_in and supplier.opted_out_at is None:
        return False
    when = at or clock.now()
    supplier.opted_in = True
    supplier.opted_in_at = when
    supplier.consent_source = source[:32]
    supplier.consent_by = (by or "")[:MAX_BY] or None
    supplier.opted_out_at = None
    supplier.opt_out_source = None
    supplier.opt_out_by = None
    supplier.updated_at = when
    session.add(supplier)
    session.flush()  # a new supplier needs its id for the event
    assert supplier.id is not None
    session.add(_event(supplier, GRANTED, source, by, when, evidence))
    return True


def withdraw(
    session: Session,
    supplier: Supplier,
    *,
    source: str,
    by: str | None = None,
    at: datetime | None = None,
    evidence: str | None = None,
) -> bool:
    """Record that `supplier` opted out; False when it already had."""
    if supplier.opted_out_at is not None:
        return False
    when = at or clock.now()
    supplier.opted_in = False
    supplier.opted_out_at = when
    supplier.opt_out_source = source[:32]
    supplier.opt_out_by = (by or "")[:MAX_BY] or None
    supplier.updated_at = when
    session.add(supplier)
    session.flush()
    session.add(_event(supplier, WITHDRAWN, source, by, when, evidence))
    return True


def withdraw_rows(
    conn: Connection,
    supplier_ids: Iterable[tuple[int, str]],
    *,
    source: str,
    by: str | None,
    at: datetime,
    evidence: str | None,
) -> int:
    """`withdraw` for (supplier id, tenant) pairs inside a Core transaction (the webhook
    applier's); suppliers already opted out are left as they are. How many changed."""
    changed = 0
    for supplier_id, tenant_id in supplier_ids:
        s = _SUPPLIERS.c
        result = conn.execute(
            update(_SUPPLIERS)
            .where(and_(s.id == supplier_id, s.opted_out_at.is_(None)))
            .values(
                opted_in=False,
                opted_out_at=at,
                opt_out_source=source,
                opt_out_by=(by or "")[:MAX_BY] or None,
                updated_at=at,
            )
        )
        if getattr(result, "rowcount", 0):
            changed += 1
            conn.execute(
                insert(_EVENTS).values(
                    tenant_id=tenant_id,
                    supplier_id=supplier_id,
                    action=WITHDRAWN,
                    source=source,
                    by=(by or "")[:MAX_BY] or None,
                    evidence=(evidence or "")[:MAX_EVIDENCE] or None,
                    at=at,
                )
            )
    return changed


def grant_rows(
    conn: Connection,
    tenant_id: str,
    supplier_ids: Iterable[int],
    *,
    source: str,
    by: str | None,
    at: datetime,
    chunk: int = 500,
) -> set[int]:
    """`grant` for many suppliers of one tenant inside a Core transaction (a batch's):
    those without consent and not opted out now consent, each with its event; the ones
    that changed are returned. As `grant` from a source that is not `admin`, an opt-out
    is never lifted (the UPDATE's condition decides, so a stop arriving meanwhile wins).
    """
    s = _SUPPLIERS.c
    ids = sorted(set(supplier_ids))
    changed: set[int] = set()
    for start in range(0, len(ids), chunk):
        result = conn.execute(
            update(_SUPPLIERS)
            .where(
                s.id.in_(ids[start : start + chunk]),
                s.tenant_id == tenant_id,
                s.opted_out_at.is_(None),
                s.opted_in.is_(False),
            )
            .values(**granted_columns(source=source, by=by, at=at))
            .returning(s.id)
        )
        changed.update(int(row[0]) for row in result)
    if changed:
        conn.execute(
            insert(_EVENTS),
            [
                grant_event(tenant_id, supplier_id, source=source, by=by, at=at)
                for supplier_id in sorted(changed)
            ],
        )
    return changed


def granted_columns(*, source: str, by: str | None, at: datetime) -> dict[str, Any]:
    """The supplier columns `grant_rows` sets when consent is granted: a supplier
    inserted with them (and its `grant_event`) is stored as one inserted without
    consent and then granted it by `grant_rows`."""
    return {
        "opted_in": True,
        "opted_in_at": at,
        "consent_source": source[:32],
        "consent_by": (by or "")[:MAX_BY] or None,
        "updated_at": at,
    }


def grant_event(
    tenant_id: str, supplier_id: int, *, source: str, by: str | None, at: datetime
) -> dict[str, Any]:
    """The consent event (`consent_events` values) `grant_rows` records for a grant."""
    return {
        "tenant_id": tenant_id,
        "supplier_id": supplier_id,
        "action": GRANTED,
        "source": source[:32],
        "by": (by or "")[:MAX_BY] or None,
        "evidence": None,
        "at": at,
    }


def history(
    engine: Engine, tenant_id: str, supplier_id: int, *, limit: int = 100
) -> list[ConsentEventView]:
    """The supplier's consent changes, the latest recorded first (at most `limit`)."""
    with Session(engine) as session:
        rows = session.exec(
            select(ConsentEvent)
            .where(
                col(ConsentEvent.tenant_id) == tenant_id,
                col(ConsentEvent.supplier_id) == int(supplier_id),
            )
            .order_by(col(ConsentEvent.id).desc())  # as recorded: the latest change first
            .limit(max(1, min(limit, 1000)))
        ).all()
        return [ConsentEventView(r.action, r.source, r.by, r.evidence, r.at) for r in rows]


def _event(
    supplier: Supplier,
    action: str,
    source: str,
    by: str | None,
    at: datetime,
    evidence: str | None,
) -> ConsentEvent:
    assert supplier.id is not None
    return ConsentEvent(
        tenant_id=supplier.tenant_id,
        supplier_id=supplier.id,
        action=action,
        source=source[:32],
        by=(by or "")[:MAX_BY] or None,
        evidence=(evidence or "")[:MAX_EVIDENCE] or None,
        at=at,
    )
