"""Consent in CSV batches: a `consent` column (yes/no) per row, or the buyer's
confirmation for the whole file, checked before anything is queued.

A row is *confirmed* when its consent cell says yes, or the cell is empty (or the file
has no such column) and the buyer confirmed consent for the whole batch. A cell saying
no refuses the row ("the file says the supplier did not agree"); anything else that is
not yes or no refuses it too, with the value shown. Confirmed rows record consent
(source `csv`, by the buyer) when the batch starts; `core.consent.refusal_for` decides
the rest, so an opted-out supplier is refused whatever the file says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from core.consent.policy import NO_CONSENT, ConsentHolder, refusal_for
from core.consent.record import grant
from core.consent.stopwords import fold
from core.consent.tenant import allows_unrecorded
from core.db import by_unique_key
from core.i18n import _
from core.models.suppliers import Supplier

#: Header names (folded) read as the consent column.
CONSENT_HEADERS = (
    "consent",
    "whatsapp consent",
    "consentimiento",
    "consentimento",
    "opt in",
    "opted in",
)
YES = frozenset({"yes", "y", "si", "s", "sim", "true", "1", "x", "ok", "opt in", "opted in"})
NO = frozenset({"no", "n", "nao", "false", "0", "opt out", "opted out"})
_IN_CHUNK = 500
_S = Supplier.__table__  # type: ignore[attr-defined]
_SHOWN = 20


class _Row(Protocol):
    @property
    def row_number(self) -> int: ...
    @property
    def phone_e164(self) -> str | None: ...
    @property
    def ok(self) -> bool: ...


def consent_column(headers: Sequence[str]) -> str | None:
    """The file's consent column (by name, case and accents ignored), if it has one."""
    for header in headers:
        if fold(header).replace("_", " ") in CONSENT_HEADERS:
            return header
    return None


def read_consent(cell: str | None) -> bool | None:
    """True (yes), False (no) or None (empty); ValueError for anything else.

    The cell is read whole after trimming and folding case and accents: "YES ", "Sí"
    and "sim" are yes; "=1" or "maybe" are neither.
    """
    raw = (cell or "").strip()
    if not raw:
        return None
    word = fold(raw) if not raw.startswith(("=", "+", "-", "@")) else raw
    if word in YES:
        return True
    if word in NO:
        return False
    raise ValueError(_("Consent {value} is not yes or no").format(value=repr(raw[:_SHOWN])))


@dataclass(frozen=True, slots=True)
class _Consent:
    """What the consent rule reads of a supplier (`ConsentHolder`), read in bulk."""

    name: str
    opted_in: bool
    opted_out_at: datetime | None
    opt_out_source: str | None


def suppliers_at(
    session: Session, tenant_id: str, phones: Iterable[str]
) -> dict[str, ConsentHolder]:
    """What the consent rule reads of the tenant's suppliers at these numbers, in a few
    `IN (...)` queries: their consent columns, not whole ORM objects (a file of 100,000
    rows may find as many suppliers)."""
    unique = sorted(set(phones))
    found: dict[str, ConsentHolder] = {}
    for start in range(0, len(unique), _IN_CHUNK):
        for phone, name, opted_in, opted_out_at, source in session.execute(
            by_unique_key(
                session,
                [_S.c.phone_e164, _S.c.name, _S.c.opted_in, _S.c.opted_out_at, _S.c.opt_out_source],
                _S.c.tenant_id == tenant_id,
                _S.c.phone_e164,
                unique[start : start + _IN_CHUNK],
            )
        ):
            found[phone] = _Consent(name, opted_in, opted_out_at, source)
    return found


def check_rows(
    session: Session,
    tenant_id: str,
    rows: Sequence[_Row],
    cells: Sequence[Mapping[str, str]],
    headers: Sequence[str],
    *,
    batch_confirmed: bool,
) -> tuple[dict[int, bool], dict[int, str]]:
    """Each valid row's consent: (row number -> confirmed, row number -> refusal reason).

    Writes nothing: a supplier the batch would add is judged as one without consent,
    confirmed or not by its row.
    """
    column = consent_column(headers)
    suppliers = suppliers_at(session, tenant_id, [r.phone_e164 for r in rows if r.phone_e164])
    confirmed: dict[int, bool] = {}
    refused: dict[int, str] = {}
    allowed: bool | None = None  # the tenant's setting, read once when a row needs it
    for row, raw in zip(rows, cells, strict=True):
        if not row.ok or row.phone_e164 is None:
            continue
        try:
            said = read_consent(raw.get(column, "")) if column else None
        except ValueError as exc:
            refused[row.row_number] = str(exc)
            continue
        if said is False:
            refused[row.row_number] = _(
                "Not sent: the file's consent column says the supplier did not agree"
            )
            continue
        confirmed[row.row_number] = said is True or batch_confirmed
        if allowed is None and not confirmed[row.row_number]:
            allowed = allows_unrecorded(session, tenant_id)
        refusal = refusal_for(
            session,
            tenant_id,
            suppliers.get(row.phone_e164),
            confirming=confirmed[row.row_number],
            unrecorded_allowed=allowed,
        )
        if refusal is not None:
            # A CSV row is confirmed by its file or the batch tick, not the send page's.
            refused[row.row_number] = (
                _(
                    "Not sent: no recorded consent to receive WhatsApp messages. Put yes in "
                    "the file's consent column for this row, or tick that every supplier in "
                    "this file agreed."
                )
                if refusal.code == NO_CONSENT
                else refusal.reason
            )
    return confirmed, refused


def record_confirmed(
    session: Session,
    suppliers: Mapping[str, Supplier],
    rows: Sequence[_Row],
    confirmed: Mapping[int, bool],
    by: str | None,
) -> None:
    """Record consent (source `csv`) for the suppliers of the confirmed rows."""
    for row in rows:
        phone = row.phone_e164
        if row.ok and phone is not None and phone in suppliers and confirmed.get(row.row_number):
            grant(session, suppliers[phone], source="csv", by=by)
