"""How a supplier is named wherever a person picks or filters by one.

Two suppliers may share a name (two branches of one company, a typo in an ERP), so a
name alone cannot tell them apart: every picker and filter shows the supplier's phone
beside its name, grouped for reading, and its ERP reference as well when the list
holds another supplier of the same name. One helper, so every page says it alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from core.phones import InvalidPhoneNumber, display_phone

__all__ = ["LabelledSupplier", "supplier_label", "supplier_labels"]

SEPARATOR = " · "


class LabelledSupplier(Protocol):
    """What a label is made of: a Supplier, a picker's row, any object with these."""

    @property
    def id(self) -> int | None: ...

    @property
    def name(self) -> str: ...

    @property
    def phone_e164(self) -> str | None: ...

    @property
    def external_ref(self) -> str | None: ...


def supplier_label(
    name: str, phone_e164: str | None, external_ref: str | None = None, *, with_ref: bool = True
) -> str:
    """The name, the phone as people read it and the ERP reference (when `with_ref` and
    the supplier has one): "Acme S.L. · +34 612 34 56 78 · ERP ACME-7".

    The phone is shown whole: the people picking suppliers already see and type their
    numbers, and a masked one could leave two branches looking alike. A stored value
    that is not E.164 is shown as stored, never dropped.
    """
    parts = [name.strip() or "?"]
    if phone_e164:
        try:
            parts.append(display_phone(phone_e164))
        except InvalidPhoneNumber:
            parts.append(phone_e164)
    ref = (external_ref or "").strip()
    if with_ref and ref:
        parts.append(f"ERP {ref}")
    return SEPARATOR.join(parts)


def supplier_labels(suppliers: Iterable[LabelledSupplier]) -> dict[int, str]:
    """Labels for a picker's options by supplier id: name and phone, plus the ERP
    reference for suppliers whose name another one in the list shares (compared without
    case), so that every option reads differently."""
    rows = list(suppliers)
    counts: dict[str, int] = {}
    for row in rows:
        key = row.name.strip().casefold()
        counts[key] = counts.get(key, 0) + 1
    return {
        row.id or 0: supplier_label(
            row.name,
            row.phone_e164,
            row.external_ref,
            with_ref=counts[row.name.strip().casefold()] > 1,
        )
        for row in rows
    }
